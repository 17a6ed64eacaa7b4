"""The PostgreSQL source: `source` (the connector), `read` (the SELECT), `arrow` (the driver's
batches), `types` (the type mapping), `resume` (fingerprints), `horizon` (late commits), `cdc`."""
