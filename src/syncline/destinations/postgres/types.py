"""PostgreSQL's column types for canonical types and back."""

from __future__ import annotations

import re

import psycopg
from psycopg import sql
from psycopg.rows import TupleRow

from syncline.schema import FLOAT64, JSON, STRING, DataType

PgConnection = psycopg.Connection[TupleRow]

_TO_PG = {
    "boolean": "BOOLEAN", "int32": "INTEGER", "int64": "BIGINT", "float64": "DOUBLE PRECISION",
    "string": "TEXT", "binary": "BYTEA", "date": "DATE", "time": "TIME", "timestamp": "TIMESTAMP",
    "timestamptz": "TIMESTAMPTZ", "json": "JSONB", "uuid": "UUID", "interval": "INTERVAL",
}
# information_schema.columns.data_type spellings; anything unlisted (arrays, enums...) is
# carried as text, which is what COPY's text input accepts for it.
_FROM_PG = {
    "boolean": "boolean", "smallint": "int32", "integer": "int32", "bigint": "int64",
    "real": "float64", "double precision": "float64", "text": "string",
    "character varying": "string", "character": "string", "bytea": "binary", "date": "date",
    "time without time zone": "time", "time with time zone": "time",
    "timestamp without time zone": "timestamp", "timestamp with time zone": "timestamptz",
    "json": "json", "jsonb": "json", "uuid": "uuid", "interval": "interval",
}


def pg_type(t: DataType) -> sql.Composable:
    """The column type Syncline creates for a canonical type."""
    if t.element is not None:
        return pg_type(t.element) + sql.SQL("[]")
    if t.kind == "decimal":
        return sql.SQL("NUMERIC({}, {})").format(sql.Literal(t.precision), sql.Literal(t.scale))
    return sql.SQL(_TO_PG[t.kind])


def canonical_from_pg(data_type: str, precision: int | None, scale: int | None,
                      array: str | None = None) -> DataType:
    """The canonical type of an `information_schema.columns` row; an ARRAY's by its
    `format_type` text (`numeric(10,2)[]`)."""
    if data_type == "ARRAY" and array is not None:
        return _canonical_array(array)
    if data_type == "numeric":
        if precision is None or precision > 38:
            # unconstrained numeric holds any number: above every decimal, like float64
            return FLOAT64
        return DataType("decimal", precision, scale or 0)
    kind = _FROM_PG.get(data_type)
    return DataType.parse(kind) if kind else STRING


_NUMERIC = re.compile(r"numeric\((\d+),(\d+)\)")


def _canonical_array(text: str) -> DataType:
    element = text[:-2]
    if element.endswith("]"):
        return JSON  # more than one dimension declared
    m = _NUMERIC.fullmatch(element)
    if m:
        return DataType("list", element=canonical_from_pg("numeric", int(m[1]), int(m[2])))
    return DataType("list", element=canonical_from_pg(re.sub(r"\(\d+\)", "", element), None, None))


def widen_using(col: sql.Identifier, old: DataType, new: DataType) -> sql.Composable:
    """The USING expression of a widening ALTER COLUMN TYPE."""
    if new.kind == "timestamptz" and old.kind in ("date", "timestamp"):
        # naive values are UTC by definition, whatever the session's time zone
        return sql.SQL("{}::timestamp AT TIME ZONE 'UTC'").format(col)
    return sql.SQL("{}::{}").format(col, pg_type(new))
