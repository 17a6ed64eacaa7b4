"""PostgreSQL types: catalog types to canonical types, and result columns to canonical Arrow arrays."""

from __future__ import annotations

import datetime as dt
import json
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from syncline.records import bytea_hex, converter_for, list_converter, parse_interval
from syncline.schema import (
    BINARY,
    BOOLEAN,
    DATE,
    FLOAT64,
    INT32,
    INT64,
    INTERVAL,
    JSON,
    MAX_DECIMAL_PRECISION,
    STRING,
    TIME,
    TIMESTAMP,
    TIMESTAMPTZ,
    UUID,
    Column,
    DataType,
    StreamSchema,
)
from syncline.sources.base import CURSOR_NAMES
from syncline.sources.postgres.json_lists import parsed_lists
from syncline.stream import BadRecord

_ORDERABLE = {"timestamp", "timestamptz", "date", "int32", "int64", "decimal"}

_BY_NAME: dict[str, DataType] = {
    "int2": INT32, "int4": INT32, "int8": INT64,
    "float4": FLOAT64, "float8": FLOAT64,
    "bool": BOOLEAN,
    "text": STRING, "varchar": STRING, "bpchar": STRING, "char": STRING, "name": STRING,
    "citext": STRING, "uuid": UUID, "interval": INTERVAL,
    "date": DATE, "time": TIME, "timestamp": TIMESTAMP, "timestamptz": TIMESTAMPTZ,
    "json": JSON, "jsonb": JSON,
    "bytea": BINARY,
}
_AS_TEXT_NOTES = {
    "timetz": "time with time zone: carried as text (no canonical type keeps its offset)",
}
#: numeric without precision and scale (a view's sum()): 29 digits before the point and 9
#: after; a value with more is quarantined, never rounded
UNBOUNDED_NUMERIC = DataType("decimal", MAX_DECIMAL_PRECISION, 9)
#: what earlier versions carried as text: a table holding them so keeps them until rebuilt
_WAS_TEXT = frozenset({UUID, INTERVAL, UNBOUNDED_NUMERIC})


def formerly(dtype: DataType) -> DataType | None:
    """The type earlier versions gave a column now mapped to `dtype`, when it differs: arrays
    were json."""
    if dtype.kind == "list":
        return JSON
    return STRING if dtype in _WAS_TEXT else None


@dataclass(frozen=True)
class PgType:
    """A column's type after domains are resolved to their base type."""

    name: str  # pg_type.typname of the base type
    typtype: str  # b base, e enum, c composite, r range, m multirange, p pseudo
    category: str  # pg_type.typcategory; 'A' for arrays
    typmod: int  # the modifier of the column or of the innermost domain that sets one
    element: PgType | None = None  # an array's element type
    dims: int = 0  # an array's declared dimensions (0 where the catalog does not say: views)


def map_pg_type(t: PgType, declared: str) -> tuple[DataType, str | None]:
    """Canonical type of a PostgreSQL type, and a note when values are carried differently."""
    if t.category == "A":  # read with to_json(): a JSON array of the element values
        if t.element is None or t.dims > 1:
            return JSON, None  # declared with more dimensions than a list has: nested JSON arrays
        element, note = map_pg_type(t.element, declared.removesuffix("[]"))
        return DataType("list", element=element), note and f"elements: {note}"
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
        return UNBOUNDED_NUMERIC, (f"{declared} without precision and scale: loaded as "
                                   f"{UNBOUNDED_NUMERIC}; a value with more digits is quarantined")
    precision = ((typmod - 4) >> 16) & 0xFFFF
    scale = (((typmod - 4) & 0x7FF) ^ 1024) - 1024  # an 11-bit signed field since PostgreSQL 15
    if scale < 0:  # numeric(5,-2) holds integers with up to 7 digits
        precision, scale = precision - scale, 0
    precision = max(precision, scale)  # numeric(3,5) holds values below 0.001
    if precision > MAX_DECIMAL_PRECISION:
        return STRING, f"{declared} is wider than decimal(38): carried as text"
    return DataType("decimal", precision, scale), None


#: Types PostgreSQL has no max() or ordering of values for (besides arrays and ranges): such a
#: column cannot be a cursor.
_UNORDERED = {"uuid", "json", "jsonb", "boolean", "bytea", "xml", "point", "line", "lseg", "box",
              "path", "polygon", "circle", "tsvector", "tsquery", "bit", "bit varying", "txid_snapshot",
              "pg_snapshot", "macaddr", "macaddr8", "aclitem"}


def orderable(column: Column) -> bool:
    """Whether PostgreSQL can find the largest of the column's values (see `_UNORDERED`)."""
    native = (column.native_type or "").lower()
    if native.endswith("]") or native.endswith("range") or column.type.kind in ("json", "binary"):
        return False
    return re.sub(r"\(.*\)$", "", native).strip() not in _UNORDERED


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


# -- result columns to Arrow ---------------------------------------------------------------

#: Result type OIDs whose binary values the ADBC driver reads into the canonical Arrow type of
#: a kind, or into one cast to it without loss (int2 into int16). A domain reports its base
#: type's OID. real (700) is read as text: widening a float32 would change 0.1 to 0.100000001.
NATIVE_OIDS: dict[str, frozenset[int]] = {
    "int32": frozenset({21, 23}), "int64": frozenset({20, 21, 23}), "float64": frozenset({701}),
    "boolean": frozenset({16}), "string": frozenset({19, 25, 1042, 1043}), "binary": frozenset({17}),
    "date": frozenset({1082}), "timestamp": frozenset({1114}), "timestamptz": frozenset({1184}),
    "json": frozenset({114, 3802}),  # json and jsonb arrive as their text, jsonb's version byte gone
}
#: Of those, the types whose Arrow value is exactly PostgreSQL's text of it (as int or str).
EXACT_OIDS = frozenset({20, 21, 23, 25, 1043})
#: Built-in types whose cast to text is not their output function: bool gives 'true', bpchar
#: trims its padding, inet shows the netmask. Types from FIRST_USER_OID on may define such casts too.
TEXT_CAST_DIFFERS = frozenset({16, 18, 19, 650, 869, 1042})
FIRST_USER_OID = 16384
#: (result type OID, kind): SQL true where a value has no canonical form, so the row's text
#: is sent along for its BadRecord. The bounds are Python's: years 1 to 9999.
SUSPECT_SQL: dict[tuple[int, str], str] = {
    (1082, "date"): "NOT ({c} BETWEEN DATE '0001-01-01' AND DATE '9999-12-31')",
    (1114, "timestamp"): "NOT ({c} BETWEEN TIMESTAMP '0001-01-01 00:00:00' "
                         "AND TIMESTAMP '9999-12-31 23:59:59.999999')",
    (1184, "timestamptz"): "NOT ({c} BETWEEN TIMESTAMPTZ '0001-01-01 00:00:00+00' "
                           "AND TIMESTAMPTZ '9999-12-31 23:59:59.999999+00')",
    (1083, "time"): "{c} > TIME '23:59:59.999999'",
    (1700, "decimal"): "{c} = 'NaN'",
}
# The same bounds on the driver's values (days or microseconds since 1970). The driver adds
# its epoch shift to infinity unchecked: +-infinity arrive far below the lower bound.
_RANGE: dict[str, tuple[pa.DataType, int, int]] = {
    "date": (pa.int32(), -719_162, 2_932_896),
    "timestamp": (pa.int64(), -62_135_596_800_000_000, 253_402_300_799_999_999),
    "timestamptz": (pa.int64(), -62_135_596_800_000_000, 253_402_300_799_999_999),
}


def arrow_to_batch(table: pa.Table, stream: StreamSchema, native: Sequence[bool],
                   row_text: Callable[[list[int]], list[str | None]] | None
                   ) -> tuple[pa.RecordBatch, list[BadRecord]]:
    """Columns read by the ADBC driver (in stream column order) to a batch of the canonical schema.

    Where ``native`` is true the driver's Arrow values are cast (int16 to int32, or nothing
    to do); dates and timestamps outside years 1 to 9999 make their row bad. The other
    columns are PostgreSQL's text, converted as ``text_to_batch`` does. ``row_text`` gives,
    for bad rows by their index, a JSON array of the text of every column (None where the
    server did not foresee the row): a BadRecord holds exactly what a text read would have held.
    """
    arrow_schema = stream.arrow_schema()
    arrays: list[pa.Array] = []
    bad_rows: dict[int, str | Column] = {}
    for i, col in enumerate(stream.columns):
        values = table.column(i).combine_chunks()
        target = arrow_schema.field(i).type
        if native[i]:
            if isinstance(values, pa.ExtensionArray):  # the driver's arrow.json
                values = values.storage
            _out_of_range(values, col, bad_rows)
            arrays.append(values.cast(target))
        else:
            arrays.append(_convert(values, col, target, bad_rows))
    bad: list[BadRecord] = []
    if bad_rows:
        names = stream.column_names
        rows = sorted(bad_rows)
        texts = row_text(rows) if row_text is not None else [None] * len(rows)
        for i, text in zip(rows, texts, strict=True):
            reason = bad_rows[i]
            record = dict(zip(names, json.loads(text))) if text is not None else \
                _record_of(table, names, i)
            if isinstance(reason, Column):
                reason = _no_form(reason, record.get(reason.name))
            bad.append(BadRecord(record=record, error=reason))
        keep = pa.array([i for i in range(table.num_rows) if i not in bad_rows], type=pa.int64())
        arrays = [a.take(keep) for a in arrays]
    return pa.RecordBatch.from_arrays(arrays, schema=arrow_schema), bad


def _out_of_range(values: pa.Array, col: Column, bad_rows: dict[int, str | Column]) -> None:
    bounds = _RANGE.get(col.type.kind)
    if bounds is None or values.null_count == len(values):
        return
    raw = values.view(bounds[0])
    low, high = pc.min_max(raw).values()
    if low.as_py() >= bounds[1] and high.as_py() <= bounds[2]:
        return
    outside = pc.or_(pc.less(raw, bounds[1]), pc.greater(raw, bounds[2]))
    for i in pc.indices_nonzero(pc.fill_null(outside, False)).to_pylist():
        bad_rows.setdefault(i, col)  # the reason is told from the value's text


def _no_form(col: Column, text: Any) -> str:
    convert = per_value(col.type)
    try:
        convert(text)
    except (ValueError, TypeError, ArithmeticError) as exc:
        return f"column {col.name}: {text!r} has no {col.type} form ({exc})"
    return f"column {col.name}: {text!r} has no {col.type} form"


def _record_of(table: pa.Table, names: list[str], row: int) -> dict[str, Any]:
    """A bad row the server did not foresee: its values as read, in text where they convert."""
    record: dict[str, Any] = {}
    for j, name in enumerate(names):
        try:
            value = table.column(j)[row].as_py()
        except (ValueError, OverflowError):
            value = None
        record[name] = value if value is None or isinstance(value, str) else str(value)
    return record


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


_BOOL_TEXT = pa.array(["t", "f"])


def _convert(values: pa.Array, col: Column, target: pa.DataType, bad_rows: dict[int, Any]) -> pa.Array:
    kind = col.type.kind
    if kind in ("string", "json", "uuid"):
        return values  # uuid's output is canonical; json/jsonb text is valid JSON already: the server checked it on input
    if kind == "boolean" and pc.all(pc.is_in(values.drop_null(), value_set=_BOOL_TEXT)).as_py() is not False:
        return pc.equal(values, "t")  # PostgreSQL's own boolean text; else (a declared type) 0/1
    if col.type.element is not None:
        parsed = parsed_lists(values, col.type, target)
        if parsed is not None:
            return parsed
    if kind not in ("binary", "time", "boolean"):
        try:
            return values.cast(target)
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            pass
    convert = per_value(col.type)
    out: list[Any] = []
    for i, v in enumerate(values.to_pylist()):
        try:
            out.append(None if v is None else convert(v))
        except (ValueError, TypeError, ArithmeticError) as exc:
            bad_rows.setdefault(i, f"column {col.name}: {v!r} has no {col.type} form ({exc})")
            out.append(None)
    return pa.array(out, type=target)


_PER_VALUE: dict[str, Callable[[str], Any]] = {
    "binary": bytea_hex,
    "time": dt.time.fromisoformat,  # 24:00:00 is valid in PostgreSQL only: a bad record
    "interval": parse_interval,  # IntervalStyle iso_8601 (the session's), kept part by part
    "date": dt.date.fromisoformat,  # the whole text: '2000-01-01 BC' must not pass as AD
}


def per_value(t: DataType) -> Callable[[Any], Any]:
    """The conversion of one value of PostgreSQL's text (a list's: its to_json() text)."""
    if t.element is not None:
        return list_converter(t, per_value(t.element))
    return _PER_VALUE.get(t.kind) or converter_for(t)
