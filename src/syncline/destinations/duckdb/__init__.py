"""The DuckDB destination: `destination` (the file, state and fence tables), `loader` (staging
and the one-transaction commit), `types` (column types and identifiers)."""
