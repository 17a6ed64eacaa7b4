"""The Singer source: `source` (the connector), `process` (a tap's process and files),
`schema` (catalogs, JSON Schema types and the message stream)."""
