"""The MySQL/MariaDB source: `source` (the connector), `read` (a table in a snapshot), `types`
(the type mapping), `horizon` (late commits), `errors`, `cdc` (MariaDB's binlog)."""
