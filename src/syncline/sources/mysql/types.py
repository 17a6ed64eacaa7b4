"""MySQL/MariaDB catalog and values: discovery, type mapping, select expressions, checkpoint values.

Zero dates: MySQL accepts '0000-00-00' (and '2024-00-15') in DATE, DATETIME and
TIMESTAMP columns unless sql_mode forbids it; no calendar holds such a day. In a
nullable column it arrives as NULL (MySQL's own convention for "no date", and what
Connector/J's zeroDateTimeBehavior=convertToNull does); in a NOT NULL column the row
goes to quarantine as a bad record naming the column, because NULL there would
contradict the source's own schema.
"""

from __future__ import annotations

import datetime as dt
import decimal
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import pyarrow as pa

from syncline.records import converter_for, fast_array
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
from syncline.sources.base import CURSOR_NAMES
from syncline.stream import BadRecord

SMALL_INTS = {"tinyint", "smallint", "mediumint"}
TEXT_TYPES = {"char", "varchar", "tinytext", "text", "mediumtext", "longtext", "enum", "set"}
BINARY_TYPES = {"binary", "varbinary", "tinyblob", "blob", "mediumblob", "longblob"}
SPATIAL_TYPES = {
    "geometry", "point", "linestring", "polygon", "multipoint", "multilinestring",
    "multipolygon", "geometrycollection", "geomcollection",
}


@dataclass(frozen=True)
class NativeColumn:
    """One row of information_schema.COLUMNS, plus what discovery learned beside it."""

    name: str
    data_type: str
    column_type: str
    nullable: bool
    precision: int | None = None
    scale: int | None = None
    is_json: bool = False  # MariaDB's JSON is LONGTEXT with CHECK (json_valid(col))
    exceeds_day: bool = False  # TIME values below 0 or from 24:00 on exist


def native_base(column_type: str | None) -> str:
    """'bigint(20) unsigned' -> 'bigint'."""
    m = re.match(r"[a-z]+", (column_type or "").strip().lower())
    return m.group(0) if m else ""


def map_mysql_type(col: NativeColumn) -> tuple[DataType, str | None]:
    """Canonical type of a MySQL/MariaDB column, and a note when the mapping needs one."""
    base = col.data_type.lower()
    ctype = col.column_type.lower()
    unsigned = "unsigned" in ctype
    if base == "tinyint" and ctype.startswith("tinyint(1)"):
        # MySQL's BOOL is TINYINT(1), but the column holds -128..127: as boolean, 2 would be
        # loaded as true and verify would call it a match
        return INT32, ("TINYINT(1) read as an integer (it may hold more than 0 and 1); declare "
                       "`fields: {column: boolean}` on the stream to load it as boolean, values "
                       "other than 0 and 1 then go to quarantine")
    if base in SMALL_INTS:
        return INT32, None
    if base in ("int", "integer"):
        return (INT64 if unsigned else INT32), None
    if base == "bigint":
        return (DataType("decimal", 20, 0) if unsigned else INT64), None
    if base in ("decimal", "numeric"):
        p, s = col.precision or 10, col.scale or 0
        if p > MAX_DECIMAL_PRECISION:
            return STRING, f"{ctype} is beyond decimal({MAX_DECIMAL_PRECISION}): carried as text"
        return DataType("decimal", p, s), None
    if base in ("float", "double", "real"):
        return FLOAT64, None
    if base == "bit":
        width = col.precision or 1
        if width == 1:
            return BOOLEAN, None
        if width == 64:  # 2**64 - 1 does not fit int64
            return DataType("decimal", 20, 0), "bit(64) carried as decimal(20,0)"
        return INT64, None
    if base == "json" or (col.is_json and base in TEXT_TYPES):
        return JSON, None
    if base in TEXT_TYPES:
        return STRING, None
    if base in BINARY_TYPES:
        return BINARY, None
    if base == "date":
        return DATE, None
    if base == "datetime":
        return TIMESTAMP, None
    if base == "timestamp":
        return TIMESTAMPTZ, None
    if base == "time":
        if col.exceeds_day:
            return STRING, "TIME values outside 00:00:00-23:59:59 exist: carried as text"
        return TIME, None
    if base == "year":
        return INT32, None
    if base in SPATIAL_TYPES:
        return STRING, f"type {base} carried as WKT text"
    return STRING, f"type {ctype} has no canonical equivalent: carried as text"


def q(name: str) -> str:
    """A quoted identifier, safe in SQL that pymysql %-formats with parameters."""
    return "`" + name.replace("`", "``").replace("%", "%%") + "`"


def select_expr(col: Column) -> str:
    """How a column is selected so its text is the canonical type's text."""
    base, kind, c = native_base(col.native_type), col.type.kind, q(col.name)
    if base == "bit":
        return f"CAST({c} AS UNSIGNED)"
    if base in SPATIAL_TYPES:
        return f"ST_AsText({c})"
    if kind == "string" and base not in TEXT_TYPES:
        return f"CAST({c} AS CHAR)"  # TIME past a day, decimal(>38), UUID, INET6...
    return c


def row_checksum(stream: StreamSchema) -> str:
    """A row's CRC32 over every column's text and which of them are NULL (CONCAT_WS skips
    NULLs): summed over rows, a change to any row changes the sum (but for 1 in 2^32)."""
    cols = [q(c.name) for c in stream.columns]
    nulls = ", ".join(f"ISNULL({c})" for c in cols)
    return f"CRC32(CONCAT_WS(CHAR(31), {', '.join(cols)}, CONCAT({nulls})))"


def position_expr(col: Column) -> str:
    """How a cursor or key column is selected: as itself, to be bound back as itself."""
    return f"CAST({q(col.name)} AS UNSIGNED)" if native_base(col.native_type) == "bit" else q(col.name)


# -- values ------------------------------------------------------------------------------
# Rows are read as text (no per-value conversion in the driver, half its cost) and each
# column is parsed by one vectorised Arrow cast; a column Arrow refuses is parsed value
# by value, where zero dates and TIMEs beyond a day get their rules.

_ARROW_ERRORS = (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError, ValueError,
                 TypeError, OverflowError)
_TIME = re.compile(r"(-?)(\d+):(\d\d):(\d\d)(?:\.(\d{1,6}))?")


def text_to_batch(rows: Sequence[Sequence[Any]], stream: StreamSchema
                  ) -> tuple[pa.RecordBatch, list[BadRecord]]:
    """An Arrow batch of the stream from rows of MySQL text (bytes for binary columns)."""
    schema = stream.arrow_schema()
    columns = list(zip(*rows)) if rows else [() for _ in stream.columns]
    bad_rows: dict[int, dict[str, str]] = {}  # row -> column -> why
    arrays = [_column(col, values, schema.field(col.name).type, bad_rows)
              for col, values in zip(stream.columns, columns)]
    bad: list[BadRecord] = []
    if bad_rows:
        keep = pa.array([i for i in range(len(rows)) if i not in bad_rows], type=pa.int64())
        for i, why in sorted(bad_rows.items()):
            # converted values where they converted; the text MySQL sent where they did not
            record = {c.name: rows[i][j] if c.name in why else arrays[j][i].as_py()
                      for j, c in enumerate(stream.columns)}
            bad.append(BadRecord(record, "; ".join(f"column {c}: {e}" for c, e in why.items())))
        arrays = [a.take(keep) for a in arrays]
    return pa.RecordBatch.from_arrays(arrays, schema=schema), bad


def _column(col: Column, values: Sequence[Any], arrow_type: pa.DataType,
            bad_rows: dict[int, dict[str, str]]) -> pa.Array:
    kind = col.type.kind
    try:
        if kind in ("string", "binary"):
            return pa.array(values, type=arrow_type)
        if kind == "json":
            return fast_array(col.type, values, arrow_type)
        if kind == "timestamptz":
            return pa.array(values, type=pa.string()).cast(pa.timestamp("us")).cast(arrow_type)
        if kind != "time":  # Arrow has no cast from text to time
            return pa.array(values, type=pa.string()).cast(arrow_type)
    except _ARROW_ERRORS:
        pass
    parse, convert = _parser(col), converter_for(col.type)
    out: list[Any] = []
    for i, v in enumerate(values):
        try:
            out.append(None if v is None else convert(parse(v)))
        except (ValueError, TypeError, ArithmeticError, UnicodeDecodeError) as exc:
            bad_rows.setdefault(i, {})[col.name] = str(exc)
            out.append(None)
    return pa.array(out, type=arrow_type)


def _parser(col: Column) -> Callable[[Any], Any]:
    if col.type.kind == "time":
        return _time_of_day
    parse_date = {"date": dt.date.fromisoformat, "datetime": dt.datetime.fromisoformat,
                  "timestamp": dt.datetime.fromisoformat}.get(native_base(col.native_type))
    if parse_date is None:
        return lambda v: v
    date_parser = parse_date

    def parse(v: Any) -> Any:
        try:
            return date_parser(v)
        except ValueError:
            if col.nullable:
                return None  # a zero date: see the module docstring
            raise ValueError(f"zero or partial date {v!r} has no calendar equivalent and the "
                             "column is NOT NULL; fix the value at the source") from None

    return parse


def _time_of_day(v: Any) -> dt.time:
    m = _TIME.fullmatch(str(v))
    if not m or m.group(1) or int(m.group(2)) >= 24:
        raise ValueError(f"TIME {v} is not a time of day; run `syncline discover` so the "
                         "column is carried as text")
    return dt.time(int(m.group(2)), int(m.group(3)), int(m.group(4)),
                   int((m.group(5) or "0").ljust(6, "0")))


# -- checkpoint values -------------------------------------------------------------------

_INTEGERS = SMALL_INTS | {"int", "integer", "bigint", "year", "bit"}


def encode_position(v: Any, native_type: str | None) -> Any:
    """A cursor or key value, read as text, for the checkpoint: exactly as MySQL wrote it.

    Integers are kept as JSON numbers; DATETIME(6) text keeps its microseconds.
    """
    if isinstance(v, (bytes, bytearray)):
        return bytes(v).hex()
    if isinstance(v, str) and native_base(native_type) in _INTEGERS:
        return int(v)
    return v


def decode_position(v: Any, native_type: str | None) -> Any:
    """A stored position back to the value to bind, so MySQL compares it in the column's type.

    MySQL compares a decimal with text as doubles (digits lost) and a binary key with
    text as characters: each is given back its own Python type (integers are JSON numbers).
    """
    if not isinstance(v, str):
        return v
    base = native_base(native_type)
    try:
        if base in ("datetime", "timestamp"):
            return dt.datetime.fromisoformat(v)
        if base == "date":
            return dt.date.fromisoformat(v)
        if base in ("decimal", "numeric"):
            return decimal.Decimal(v)
        if base in ("float", "double", "real"):
            return float(v)
        if base in BINARY_TYPES:
            return bytes.fromhex(v)
    except (ValueError, decimal.InvalidOperation):
        return v  # a zero date is kept and bound as the text MySQL gave
    return v


# -- discovery ---------------------------------------------------------------------------


def discover_tables(con: Any, database: str, tables: list[str]) -> list[StreamSchema]:
    """Stream schemas of ``tables`` from information_schema, in a handful of queries."""
    wanted = set(tables)
    with con.cursor() as cur:
        cur.execute(
            "SELECT TABLE_NAME, COLUMN_NAME, DATA_TYPE, COLUMN_TYPE, IS_NULLABLE, "
            "NUMERIC_PRECISION, NUMERIC_SCALE, EXTRA FROM information_schema.COLUMNS "
            "WHERE TABLE_SCHEMA = %s ORDER BY TABLE_NAME, ORDINAL_POSITION", [database])
        columns: dict[str, list[tuple[Any, ...]]] = {}
        for row in cur.fetchall():
            if row[0] in wanted:
                columns.setdefault(str(row[0]), []).append(row)
        cur.execute(
            "SELECT TABLE_NAME, INDEX_NAME, COLUMN_NAME FROM information_schema.STATISTICS "
            "WHERE TABLE_SCHEMA = %s AND NON_UNIQUE = 0 ORDER BY TABLE_NAME, INDEX_NAME <> 'PRIMARY', "
            "INDEX_NAME, SEQ_IN_INDEX", [database])
        unique: dict[str, dict[str, list[str]]] = {}
        for table, index, column in cur.fetchall():
            unique.setdefault(str(table), {}).setdefault(str(index), []).append(str(column))
        json_columns = _mariadb_json_columns(cur, database)
        streams = []
        for table in tables:
            native = []
            for _t, name, data_type, column_type, nullable, precision, scale, _x in columns.get(table, []):
                base = str(data_type).lower()
                native.append(NativeColumn(
                    name=str(name), data_type=base, column_type=str(column_type),
                    nullable=nullable == "YES", precision=precision, scale=scale,
                    is_json=(table, str(name)) in json_columns,
                    exceeds_day=base == "time" and _time_exceeds_day(cur, database, table, str(name)),
                ))
            on_update = [str(r[1]) for r in columns.get(table, []) if "on update" in str(r[7]).lower()]
            streams.append(_describe(database, table, native, unique.get(table, {}), on_update))
    return streams


def _mariadb_json_columns(cur: Any, database: str) -> set[tuple[str, str]]:
    """MariaDB's JSON is an alias of LONGTEXT with a column CHECK (json_valid(`col`))."""
    cur.execute("SELECT VERSION()", [])
    row = cur.fetchone()
    if not row or "mariadb" not in str(row[0]).lower():
        return set()  # MySQL reports JSON as its own type
    cur.execute("SELECT TABLE_NAME, CHECK_CLAUSE FROM information_schema.CHECK_CONSTRAINTS "
                "WHERE CONSTRAINT_SCHEMA = %s", [database])
    found = set()
    for table, clause in cur.fetchall():
        m = re.fullmatch(r"\s*json_valid\(\s*`((?:[^`]|``)+)`\s*\)\s*", str(clause), re.I)
        if m:
            found.add((str(table), m.group(1).replace("``", "`")))
    return found


def _time_exceeds_day(cur: Any, database: str, table: str, column: str) -> bool:
    # MySQL TIME spans -838:59:59..838:59:59; only values inside one day are a time of day
    c = q(column)
    cur.execute(f"SELECT 1 FROM {q(database)}.{q(table)} WHERE {c} < '00:00:00' "
                f"OR {c} >= '24:00:00' LIMIT 1", [])
    return cur.fetchone() is not None


def _describe(database: str, table: str, native: list[NativeColumn],
              unique: dict[str, list[str]], on_update: list[str]) -> StreamSchema:
    columns, notes = [], []
    for n in native:
        dtype, note = map_mysql_type(n)
        if note:
            notes.append(f"{n.name}: {note}")
        columns.append(Column(n.name, dtype, nullable=n.nullable, native_type=n.column_type))
    nullable = {c.name for c in columns if c.nullable}
    key: list[str] = []
    for index, parts in unique.items():
        # a unique key over NOT NULL columns identifies rows as well as a primary key
        if any(col in nullable for col in parts):
            continue
        key = parts
        if index != "PRIMARY":
            notes.append(f"no primary key: unique key {index} ({', '.join(key)}) is used as the key")
        break
    temporal = [c.name for c in columns if c.type.kind in ("timestamp", "timestamptz")]
    cursors = [c for c in on_update if c in temporal]
    cursors += [c.name for c in columns if c.name.lower() in CURSOR_NAMES and c.name not in cursors]
    cursors += [c for c in temporal if c not in cursors]
    return StreamSchema(
        name=f"{database}.{table}", columns=tuple(columns), primary_key=tuple(key),
        cursor_candidates=tuple(cursors), notes=tuple(notes),
    )
