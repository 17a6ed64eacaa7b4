"""The files source: `source` (CSV, JSON Lines and Parquet by file and offset), `config`."""
