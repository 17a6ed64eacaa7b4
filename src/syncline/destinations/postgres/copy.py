"""What a PostgreSQL table can hold, and how a batch (CSV) and bad records travel to it by COPY."""

from __future__ import annotations

import datetime as dt
import decimal
import json
import math
from collections.abc import Iterable, Sequence
from typing import Any

import psycopg
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
from psycopg import sql

from syncline.destinations.base import QUARANTINE_TABLE, LoadTarget
from syncline.destinations.postgres.binary import SIGNATURE, TRAILER, row_encoder
from syncline.schema import Column
from syncline.stream import BadRecord

COPY_PIECE_ROWS = 16_384  # rows encoded and sent at a time
_CSV = pacsv.WriteOptions(include_header=False, quoting_style="needed")
# jsonb refuses the \u0000 escape (an escaped backslash before "u0000" is fine)
_JSON_NUL = r"(^|[^\\])(\\\\)*\\u0000"


def set_apart(batch: pa.RecordBatch, columns: Sequence[Column], keys: Sequence[str]
              ) -> tuple[pa.RecordBatch, list[BadRecord]]:
    """The rows PostgreSQL can store, and the others as bad records with the reason: a NUL in
    text, a \\u0000 in jsonb, a NULL in one of `keys` (the key of a merge)."""
    reasons: list[tuple[pa.Array, str]] = []
    for col in columns:
        values = batch.column(col.name)
        kind = col.type.kind
        if col.type.element is not None and col.type.element.kind in ("string", "json"):
            # the rows of the elements that hold a NUL
            parents = pc.list_parent_indices(values)
            hits = pc.fill_null(pc.match_substring(pc.list_flatten(values), "\x00"), False)
            rows = pc.unique(pc.filter(parents, hits))
            reasons.append((pc.is_in(pa.array(range(len(values)), pa.int64()), value_set=rows.cast(pa.int64())),
                            f"column {col.name}: PostgreSQL text cannot hold the NUL character"))
        if kind in ("string", "json"):
            reasons.append((pc.match_substring(values, "\x00"),
                            f"column {col.name}: PostgreSQL text cannot hold the NUL character"))
        if kind == "json":
            reasons.append((pc.match_substring_regex(values, _JSON_NUL),
                            f"column {col.name}: PostgreSQL jsonb cannot hold \\u0000"))
    for key in keys:
        reasons.append((pc.is_null(batch.column(key)),
                        f"primary key column {key} is NULL: the row cannot be merged"))
    mask: pa.Array | None = None
    for hit, _ in reasons:
        hit = pc.fill_null(hit, False)
        mask = hit if mask is None else pc.or_(mask, hit)
    if mask is None or not pc.any(mask).as_py():
        return batch, []
    bad = []
    for i in pc.indices_nonzero(mask).to_pylist():
        reason = next(text for hit, text in reasons if hit[i].as_py())
        bad.append(BadRecord(record=batch.slice(i, 1).to_pylist()[0], error=reason))
    return batch.filter(pc.invert(mask)), bad


def iso_interval(v: pa.MonthDayNano) -> str:
    """An interval as ISO 8601 text PostgreSQL reads part by part (P14M3DT4.5S)."""
    whole, nanos = divmod(abs(v.nanoseconds), 1_000_000_000)
    seconds = f"{'-' if v.nanoseconds < 0 else ''}{whole}.{nanos:09d}".rstrip("0").rstrip(".")
    return f"P{v.months}M{v.days}DT{seconds}S"


def array_text(values: list[Any]) -> str:
    """A list as PostgreSQL's array input text: {1,NULL,"a \\"b\\""}."""
    return "{" + ",".join("NULL" if v is None else _element(v) for v in values) + "}"


def _element(v: Any) -> str:
    if isinstance(v, bool):
        return "t" if v else "f"
    if isinstance(v, (int, decimal.Decimal)):
        return str(v)
    if isinstance(v, float):
        return "NaN" if math.isnan(v) else repr(v).replace("inf", "Infinity")
    if isinstance(v, pa.MonthDayNano):
        text = iso_interval(v)
    elif isinstance(v, bytes):
        text = "\\x" + v.hex()
    elif isinstance(v, (dt.date, dt.time)):
        text = v.isoformat()
    else:
        text = str(v)
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def csv_bytes(batch: pa.RecordBatch) -> bytes:
    """A batch as CSV for COPY: NULL unquoted-empty, '' quoted, bytea as \\x hex."""
    columns = []
    for field, values in zip(batch.schema, batch.columns):
        if pa.types.is_binary(field.type) or pa.types.is_large_binary(field.type):
            values = pa.array([None if v is None else "\\x" + v.hex() for v in values.to_pylist()],
                              type=pa.string())
        elif pa.types.is_list(field.type):
            values = pa.array([None if v is None else array_text(v) for v in values.to_pylist()],
                              type=pa.string())
        elif pa.types.is_interval(field.type):
            values = pa.array([None if v is None else iso_interval(v) for v in values.to_pylist()],
                              type=pa.string())
        elif pa.types.is_timestamp(field.type) and field.type.tz is not None:
            # Arrow formats zoned timestamps through the time zone database, 15x slower;
            # the UTC wall time reads back exactly because the session's time zone is UTC
            values = values.cast(pa.timestamp(field.type.unit))
        columns.append(values)
    out = pa.BufferOutputStream()
    pacsv.write_csv(pa.RecordBatch.from_arrays(columns, names=batch.schema.names), out,
                    write_options=_CSV)
    return bytes(out.getvalue().to_pybytes())


def copy_batches(con: psycopg.Connection[Any], table: sql.Composable, names: Sequence[str],
                 schema: pa.Schema | None, batches: Iterable[pa.RecordBatch],
                 types: Sequence[str] | None = None) -> int:
    """COPY ``batches`` (each of ``schema``, if given) into columns ``names`` of ``table``, a
    piece at a time: in the binary format where each column has an exact encoding for its type
    (``types``, as `server_types` gives them; read from the catalog if not given), as CSV
    otherwise. Returns how many rows the server took."""
    encode = schema and row_encoder(schema, types if types is not None else server_types(con, table, names))
    statement = sql.SQL("COPY {} ({}) FROM STDIN (FORMAT {})").format(
        table, sql.SQL(", ").join(map(sql.Identifier, names)), sql.SQL("binary" if encode else "csv"))
    with con.cursor() as cur:
        with cur.copy(statement) as copy:
            if encode:
                copy.write(SIGNATURE)
            for batch in batches:
                for start in range(0, batch.num_rows, COPY_PIECE_ROWS):
                    piece = batch.slice(start, COPY_PIECE_ROWS)
                    copy.write(encode(piece) if encode else csv_bytes(piece))
            if encode:
                copy.write(TRAILER)
        return cur.rowcount


def server_types(con: psycopg.Connection[Any], table: sql.Composable, names: Sequence[str]) -> list[str]:
    """The type of each of ``names`` in ``table`` as `format_type` spells it without modifiers
    (`numeric`, `timestamp with time zone`); '' for a column not found."""
    rows = con.execute("SELECT attname, format_type(atttypid, NULL) FROM pg_catalog.pg_attribute "
                       "WHERE attrelid = %s::regclass AND attnum > 0 AND NOT attisdropped",
                       [table.as_string(con)]).fetchall()
    found = dict(rows)
    return [found.get(n, "") for n in names]


def copy_quarantine(con: psycopg.Connection[Any], target: LoadTarget, bad: list[BadRecord]) -> None:
    """The stream's bad records into the quarantine table, by COPY."""
    if not bad:
        return
    now = dt.datetime.now(dt.UTC)
    statement = sql.SQL("COPY {} (run_id, stream, record, error, quarantined_at) FROM STDIN").format(
        sql.Identifier(target.schema, QUARANTINE_TABLE))
    with con.cursor() as cur, cur.copy(statement) as copy:
        for b in bad:
            copy.write_row((target.run_id, target.stream.name,
                            json.dumps(b.record, default=str, ensure_ascii=False),
                            b.error.replace("\x00", "\\x00"), now))
