"""The PostgreSQL destination: `destination` (the database, state and fence tables), `loader`
(COPY staging and the one-transaction commit), `types` (column types)."""
