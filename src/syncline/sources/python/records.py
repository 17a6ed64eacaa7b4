"""A custom source's records and Arrow data as the stream's batches: conversion, bad records, inferred schemas."""

from __future__ import annotations

import datetime as dt
import decimal
from collections.abc import Iterator
from typing import Any

import pyarrow as pa

from syncline.records import fast_array, rows_to_batch
from syncline.schema import (
    BINARY,
    DATE,
    FLOAT64,
    MAX_DECIMAL_PRECISION,
    STRING,
    TIME,
    TIMESTAMP,
    TIMESTAMPTZ,
    Column,
    DataType,
    StreamSchema,
    widen,
)
from syncline.sdk import Stream
from syncline.sources.rest.extract import prepare
from syncline.sources.rest.infer import build_schema, kind_of
from syncline.stream import BadRecord, StreamItem


def records_to_items(records: list[dict[str, Any]], schema: StreamSchema, *,
                     json_text: bool = False) -> Iterator[StreamItem]:
    """Dict records as one Arrow batch of the stream's schema; misfits as bad records.

    A dict's values are JSON values (a str in a JSON column is a JSON string); rows of an
    Arrow table (``json_text``) carry JSON columns as text, which must parse.
    """
    if not records:
        return
    names = set(schema.column_names)
    rows: list[list[Any]] = []
    for record in records:
        unknown = [k for k in record if k not in names]
        if unknown:
            yield BadRecord(record, f"field(s) {', '.join(map(str, unknown))} not in the stream's columns "
                                    f"({', '.join(schema.column_names)})")
            continue
        rows.append([_text_or_prepared(record.get(c.name), c.type) if json_text
                     else prepare(record.get(c.name), c.type) for c in schema.columns])
    batch, bad = rows_to_batch(rows, schema)
    yield from bad
    if batch.num_rows:
        yield batch


def arrow_to_items(data: pa.RecordBatch | pa.Table, schema: StreamSchema,
                   batch_size: int) -> Iterator[StreamItem]:
    """Arrow data cast to the stream's schema in batches of at most ``batch_size`` rows."""
    expected = schema.arrow_schema()
    table = data if isinstance(data, pa.Table) else pa.Table.from_batches([data])
    conformed: pa.Table | None = None
    if set(table.column_names) <= set(schema.column_names):
        try:
            conformed = pa.Table.from_arrays([_conform(table, c, f) for c, f in zip(schema.columns, expected)],
                                             schema=expected)
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError, pa.ArrowTypeError, ValueError):
            conformed = None  # some value does not fit: the row-by-row path finds which
    if conformed is None:
        for start in range(0, len(table), batch_size):
            yield from records_to_items(table.slice(start, batch_size).to_pylist(), schema, json_text=True)
        return
    for batch in conformed.combine_chunks().to_batches(max_chunksize=batch_size):
        if batch.num_rows:
            yield batch


def _text_or_prepared(value: Any, t: DataType) -> Any:
    return value if t.kind == "json" and isinstance(value, str) else prepare(value, t)


def _conform(table: pa.Table, column: Column, target: pa.Field) -> pa.Array | pa.ChunkedArray:
    if column.name not in table.column_names:
        return pa.nulls(len(table), target.type)
    values = table[column.name]
    if column.type.kind == "json":  # text must parse as JSON, or the load would fail later
        return fast_array(column.type, values.to_pylist(), target.type)
    return values.cast(target.type)


# -- inference -------------------------------------------------------------------------


def python_kind(value: Any) -> DataType | None:
    """Canonical type of a Python value that JSON has no type for; None for JSON values."""
    if isinstance(value, dt.datetime):
        return TIMESTAMPTZ if value.tzinfo is not None else TIMESTAMP
    if isinstance(value, dt.date):
        return DATE
    if isinstance(value, dt.time):
        return TIME
    if isinstance(value, decimal.Decimal):
        exponent = value.as_tuple().exponent
        scale = -exponent if isinstance(exponent, int) and exponent < 0 else 0
        # the widest precision: a sample cannot tell how large later values grow
        return FLOAT64 if scale > MAX_DECIMAL_PRECISION or not value.is_finite() \
            else DataType("decimal", MAX_DECIMAL_PRECISION, scale)
    if isinstance(value, (bytes, bytearray, memoryview)):
        return BINARY
    return None


def infer_schema(stream: Stream, records: list[dict[str, Any]]) -> StreamSchema:
    """The stream's schema from sample records: JSON values as the REST engine infers them,
    Python values (datetime, Decimal, bytes, ...) by their own type."""
    python_fields = {k for r in records for k, v in r.items() if python_kind(v) is not None}
    extra: dict[str, DataType | None] = {}
    for name in python_fields:
        for record in records:
            value = record.get(name)
            t = python_kind(value) or kind_of(value)
            old = extra.get(name)
            extra[name] = t if old is None else old if t is None else widen(old, t) or STRING
    if python_fields:  # left to ``extra``; the REST inference would call them JSON
        records = [{k: None if k in python_fields else v for k, v in r.items()} for r in records]
    return build_schema(stream.name, records, primary_key=list(stream.primary_key), cursor=stream.cursor,
                        declared={}, extra=extra)
