"""PostgreSQL types: catalog types to canonical types, and COPY text columns to Arrow arrays."""

from __future__ import annotations

import datetime as dt
import selectors
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import psycopg
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
from psycopg import pq

from syncline.records import converter_for
from syncline.schema import (
    BINARY,
    BOOLEAN,
    DATE,
    FLOAT64,
    INT32,
    INT64,
    JSON,
    MAX_DECIMAL_PRECISION,
    STRING,
    TIME,
    TIMESTAMP,
    TIMESTAMPTZ,
    Column,
    DataType,
    StreamSchema,
)
from syncline.stream import BadRecord

CURSOR_NAMES = (
    "updated_at", "modified_at", "last_modified", "last_modified_at", "updated", "modified",
    "changed_at", "last_updated", "last_updated_at", "updated_on", "modified_on",
)
_ORDERABLE = {"timestamp", "timestamptz", "date", "int32", "int64", "decimal"}

_BY_NAME: dict[str, DataType] = {
    "int2": INT32, "int4": INT32, "int8": INT64,
    "float4": FLOAT64, "float8": FLOAT64,
    "bool": BOOLEAN,
    "text": STRING, "varchar": STRING, "bpchar": STRING, "char": STRING, "name": STRING,
    "citext": STRING, "uuid": STRING,
    "date": DATE, "time": TIME, "timestamp": TIMESTAMP, "timestamptz": TIMESTAMPTZ,
    "json": JSON, "jsonb": JSON,
    "bytea": BINARY,
}
_AS_TEXT_NOTES = {
    "timetz": "time with time zone: carried as text (no canonical type keeps its offset)",
    "interval": "interval: carried as ISO 8601 text (e.g. P1DT2H)",
}


@dataclass(frozen=True)
class PgType:
    """A column's type after domains are resolved to their base type."""

    name: str  # pg_type.typname of the base type
    typtype: str  # b base, e enum, c composite, r range, m multirange, p pseudo
    category: str  # pg_type.typcategory; 'A' for arrays
    typmod: int  # the modifier of the column or of the innermost domain that sets one


def map_pg_type(t: PgType, declared: str) -> tuple[DataType, str | None]:
    """Canonical type of a PostgreSQL type, and a note when values are carried differently."""
    if t.category == "A":
        return JSON, None  # exported with to_json(): nested JSON arrays of the element values
    if t.typtype == "e":
        return STRING, None
    if t.name == "numeric":
        return _numeric(t.typmod, declared)
    if t.typtype == "b" and t.name in _BY_NAME:
        return _BY_NAME[t.name], None
    if t.name in _AS_TEXT_NOTES:
        return STRING, _AS_TEXT_NOTES[t.name]
    return STRING, f"{declared}: carried as text"


def _numeric(typmod: int, declared: str) -> tuple[DataType, str | None]:
    if typmod < 4:
        return STRING, f"{declared} without precision and scale: carried as text (its scale is unknown)"
    precision = ((typmod - 4) >> 16) & 0xFFFF
    scale = (((typmod - 4) & 0x7FF) ^ 1024) - 1024  # an 11-bit signed field since PostgreSQL 15
    if scale < 0:  # numeric(5,-2) holds integers with up to 7 digits
        precision, scale = precision - scale, 0
    precision = max(precision, scale)  # numeric(3,5) holds values below 0.001
    if precision > MAX_DECIMAL_PRECISION:
        return STRING, f"{declared} is wider than decimal(38): carried as text"
    return DataType("decimal", precision, scale), None


def cursor_candidates(columns: Sequence[Column], serial: set[str]) -> tuple[str, ...]:
    """Columns fit to be an incremental cursor, likeliest first.

    Named change stamps first, then other timestamps, then bigint identity/serial
    columns (these only see inserts, never updates).
    """
    named = [c.name for c in columns if c.name.lower() in CURSOR_NAMES and c.type.kind in _ORDERABLE]
    stamps = [c.name for c in columns if c.type.kind in ("timestamp", "timestamptz")
              and c.name not in named]
    serials = [c.name for c in columns if c.name in serial and c.type.kind == "int64"
               and c.name not in named]
    return (*named, *stamps, *serials)


# -- COPY text to Arrow ---------------------------------------------------------------------

def copy_rows(copy: psycopg.Copy) -> Iterator[memoryview]:
    """The rows of a COPY ... TO STDOUT, one buffer per row, read straight from libpq.

    COPY TO sends one CopyData message per row; `Copy.read()` spends several Python calls
    on each (a generator and a wait loop per row), the largest client cost of a read. Here
    each row buffered by libpq costs one C call; only when none is buffered does the loop
    wait on the socket (releasing the GIL). At the end the final result is read and
    an error in it (a cancelled or failed query) raised as psycopg does; `Copy`'s exit then
    has nothing left to do.
    """
    pgconn = copy.connection.pgconn
    get = pgconn.get_copy_data
    # a selector, not select(): a socket's descriptor may be above select()'s limit of 1024
    with selectors.DefaultSelector() as sel:
        sel.register(pgconn.socket, selectors.EVENT_READ)
        while True:
            nbytes, data = get(1)  # 1: never block; 0 when no whole row is buffered yet
            if nbytes > 0:
                yield data
            elif nbytes == 0:
                sel.select()
                pgconn.consume_input()
            else:  # -1: the COPY is over; its final result follows
                break
        while pgconn.is_busy():
            sel.select()
            pgconn.consume_input()
    failed = None
    while (result := pgconn.get_result()) is not None:
        if result.status != pq.ExecStatus.COMMAND_OK and failed is None:
            failed = psycopg.errors.error_from_result(result, encoding=copy.connection.info.encoding)
    if failed is not None:
        raise failed


def parse_csv(rows: Sequence[Any], width: int) -> pa.Table:
    """COPY ... (FORMAT csv) rows (one buffer per row) to a table of text columns.

    PostgreSQL writes NULL as an unquoted empty field and '' as a quoted one; every
    other text (including 'NULL' and 'NaN') is kept as written.
    """
    names = [f"c{i}" for i in range(width)]
    data = b"".join(rows)
    return pacsv.read_csv(
        pa.py_buffer(data),
        # one block: a block must hold whole rows, and one row can be large (a big jsonb)
        read_options=pacsv.ReadOptions(column_names=names, block_size=max(1 << 20, len(data) + 1)),
        parse_options=pacsv.ParseOptions(newlines_in_values=True),
        convert_options=pacsv.ConvertOptions(
            column_types={n: pa.string() for n in names}, null_values=[""],
            strings_can_be_null=True, quoted_strings_can_be_null=False,
        ),
    )


def text_to_batch(text: pa.Table, stream: StreamSchema) -> tuple[pa.RecordBatch, list[BadRecord]]:
    """Text columns (in stream column order) to a batch of the stream's canonical schema.

    Arrow's vectorised casts first; a column Arrow refuses is converted value by value,
    and a row holding a value with no canonical form ('infinity', a BC date, a numeric
    NaN) is set apart as a BadRecord holding PostgreSQL's own text of the row.
    """
    arrow_schema = stream.arrow_schema()
    arrays: list[pa.Array] = []
    bad_rows: dict[int, str] = {}
    for i, col in enumerate(stream.columns):
        values = text.column(i).combine_chunks()
        target = arrow_schema.field(i).type
        arrays.append(_convert(values, col, target, bad_rows))
    bad: list[BadRecord] = []
    if bad_rows:
        keep = pa.array([i for i in range(text.num_rows) if i not in bad_rows], type=pa.int64())
        arrays = [a.take(keep) for a in arrays]
        names = stream.column_names
        for i, reason in sorted(bad_rows.items()):
            record = {n: text.column(j)[i].as_py() for j, n in enumerate(names)}
            bad.append(BadRecord(record=record, error=reason))
    return pa.RecordBatch.from_arrays(arrays, schema=arrow_schema), bad


def _convert(values: pa.Array, col: Column, target: pa.DataType, bad_rows: dict[int, str]) -> pa.Array:
    kind = col.type.kind
    if kind in ("string", "json"):
        return values  # json/jsonb text is valid JSON already: the server checked it on input
    if kind == "boolean":
        return pc.equal(values, "t")
    if kind not in ("binary", "time"):
        try:
            return values.cast(target)
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            pass
    convert = _PER_VALUE.get(kind) or converter_for(col.type)
    out: list[Any] = []
    for i, v in enumerate(values.to_pylist()):
        try:
            out.append(None if v is None else convert(v))
        except (ValueError, TypeError, ArithmeticError) as exc:
            bad_rows.setdefault(i, f"column {col.name}: {v!r} has no {col.type} form ({exc})")
            out.append(None)
    return pa.array(out, type=target)


def _hex(v: str) -> bytes:
    if not v.startswith("\\x"):
        raise ValueError("bytea not in hex output format")
    return bytes.fromhex(v[2:])


_PER_VALUE: dict[str, Callable[[str], Any]] = {
    "binary": _hex,
    "time": dt.time.fromisoformat,  # 24:00:00 is valid in PostgreSQL only: a bad record
    "date": dt.date.fromisoformat,  # the whole text: '2000-01-01 BC' must not pass as AD
}
