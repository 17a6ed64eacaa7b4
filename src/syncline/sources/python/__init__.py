"""The python source: `source` (custom classes and installed connectors), `records` (their
records and Arrow data as the stream's batches)."""
