"""DuckDB's column types for canonical types and back, and quoted identifiers."""

from __future__ import annotations

import re

from syncline.schema import JSON, DataType

_TO_DUCKDB = {
    "boolean": "BOOLEAN", "int32": "INTEGER", "int64": "BIGINT", "float64": "DOUBLE",
    "string": "VARCHAR", "binary": "BLOB", "date": "DATE", "time": "TIME",
    "timestamp": "TIMESTAMP", "timestamptz": "TIMESTAMP WITH TIME ZONE", "json": "JSON",
    "uuid": "UUID", "interval": "INTERVAL",
}
_FROM_DUCKDB = {v: k for k, v in _TO_DUCKDB.items()} | {
    "TIMESTAMPTZ": "timestamptz", "TEXT": "string", "INT": "int32", "TINYINT": "int32",
    "SMALLINT": "int32", "HUGEINT": "decimal38", "FLOAT": "float64", "UBIGINT": "decimal20",
    "UINTEGER": "int64", "USMALLINT": "int32", "UTINYINT": "int32", "TIMESTAMP_NS": "timestamp",
    "TIMESTAMP_MS": "timestamp", "TIMESTAMP_S": "timestamp",
}
_DEC = re.compile(r"DECIMAL\((\d+),\s*(\d+)\)")


def duckdb_type(t: DataType) -> str:
    if t.element is not None:
        return duckdb_type(t.element) + "[]"
    if t.kind == "decimal":
        return f"DECIMAL({t.precision},{t.scale})"
    return _TO_DUCKDB[t.kind]


def canonical_from_duckdb(text: str) -> DataType:
    t = text.upper().strip()
    if t.endswith("[]"):
        element = canonical_from_duckdb(t[:-2])
        return JSON if element.kind == "list" else DataType("list", element=element)
    m = _DEC.fullmatch(t)
    if m:
        return DataType("decimal", int(m.group(1)), int(m.group(2)))
    kind = _FROM_DUCKDB.get(t, "string")
    if kind.startswith("decimal"):
        return DataType("decimal", int(kind[7:]), 0)
    return DataType.parse(kind)


def qi(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'
