"""Canonical column types, stream schemas, the widening lattice and schema diffs.

Every source maps its native types to these canonical types, every destination
maps them to its own; rows travel between them as Arrow batches whose schema is
``StreamSchema.arrow_schema()``.

The widening lattice (a destination column may only ever move up):

    boolean
    int32 ─► int64 ─► decimal(p, s) ─► float64 ─► string
    date ─► timestamp ─► timestamptz
    time, binary, json, uuid ─► string
    interval, list<T> (a one-dimensional array of any other type)

A uuid travels as its canonical text (lowercase, hyphenated) and an interval as Arrow's
month-day-nanosecond interval, so a month stays a month and a day a day.

Two types that share no upper bound here cannot be reconciled: that is a
contract error naming the column.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Literal

import pyarrow as pa

TypeKind = Literal[
    "boolean",
    "int32",
    "int64",
    "decimal",
    "float64",
    "string",
    "binary",
    "date",
    "time",
    "timestamp",
    "timestamptz",
    "json",
    "uuid",
    "interval",
    "list",
]

MAX_DECIMAL_PRECISION = 38
JSON_METADATA = {b"syncline.type": b"json"}
UUID_METADATA = {b"syncline.type": b"uuid"}
LIST_METADATA = {b"syncline.type": b"list"}


@dataclass(frozen=True, order=True)
class DataType:
    """A canonical type; ``precision``/``scale`` only for decimals, ``element`` only for lists."""

    kind: TypeKind
    precision: int | None = None
    scale: int | None = None
    element: DataType | None = None

    def __post_init__(self) -> None:
        if (self.kind == "list") != (self.element is not None):
            raise ValueError("a list, and only a list, has an element type")
        if self.element is not None and self.element.kind == "list":
            raise ValueError("a list of lists has no canonical type (use json)")
        if self.kind == "decimal":
            if self.precision is None or self.scale is None:
                raise ValueError("a decimal needs precision and scale")
            if not (1 <= self.precision <= MAX_DECIMAL_PRECISION and 0 <= self.scale <= self.precision):
                raise ValueError(f"decimal({self.precision},{self.scale}) is out of range")
        elif self.precision is not None or self.scale is not None:
            raise ValueError(f"{self.kind} takes no precision or scale")

    def __str__(self) -> str:
        if self.kind == "decimal":
            return f"decimal({self.precision},{self.scale})"
        if self.element is not None:
            return f"list<{self.element}>"
        return self.kind

    @staticmethod
    def parse(text: str) -> DataType:
        text = text.strip().lower()
        if text.startswith("list<") and text.endswith(">"):
            return DataType("list", element=DataType.parse(text[len("list<"):-1]))
        if text.startswith("decimal(") and text.endswith(")"):
            p, s = text[len("decimal(") : -1].split(",")
            return DataType("decimal", int(p), int(s))
        if text not in _KINDS:
            raise ValueError(f"unknown canonical type {text!r}")
        return DataType(text)  # type: ignore[arg-type]

    def to_arrow(self) -> pa.DataType:
        if self.element is not None:
            return pa.list_(Column("item", self.element).arrow_field())
        if self.kind == "decimal":
            assert self.precision is not None and self.scale is not None
            return pa.decimal128(self.precision, self.scale)
        return _TO_ARROW[self.kind]


_KINDS = {
    "boolean", "int32", "int64", "decimal", "float64", "string",
    "binary", "date", "time", "timestamp", "timestamptz", "json", "uuid", "interval",
}  # and list<T>, parsed apart

_TO_ARROW: dict[str, pa.DataType] = {
    "boolean": pa.bool_(),
    "int32": pa.int32(),
    "int64": pa.int64(),
    "float64": pa.float64(),
    "string": pa.string(),
    "binary": pa.binary(),
    "date": pa.date32(),
    "time": pa.time64("us"),
    "timestamp": pa.timestamp("us"),
    "timestamptz": pa.timestamp("us", tz="UTC"),
    "json": pa.string(),
    "uuid": pa.string(),
    "interval": pa.month_day_nano_interval(),
}

BOOLEAN = DataType("boolean")
INT32 = DataType("int32")
INT64 = DataType("int64")
FLOAT64 = DataType("float64")
STRING = DataType("string")
BINARY = DataType("binary")
DATE = DataType("date")
TIME = DataType("time")
TIMESTAMP = DataType("timestamp")
TIMESTAMPTZ = DataType("timestamptz")
JSON = DataType("json")
UUID = DataType("uuid")
INTERVAL = DataType("interval")


def from_arrow(arrow_type: pa.DataType, metadata: dict[bytes, bytes] | None = None) -> DataType:
    """The canonical type of an Arrow type (as produced by files and SDK sources)."""
    tagged = (metadata or {}).get(b"syncline.type")
    if tagged in (b"json", b"uuid"):
        return JSON if tagged == b"json" else UUID
    if tagged == b"list":  # lists from elsewhere (a Parquet file's) stay json
        item = arrow_type.value_field
        return DataType("list", element=from_arrow(item.type, item.metadata))
    t = arrow_type
    if pa.types.is_boolean(t):
        return BOOLEAN
    if pa.types.is_integer(t):
        if t.bit_width <= 16 or (pa.types.is_signed_integer(t) and t.bit_width == 32):
            return INT32
        if pa.types.is_unsigned_integer(t) and t.bit_width == 64:
            return DataType("decimal", 20, 0)
        return INT64
    if pa.types.is_floating(t):
        return FLOAT64
    if pa.types.is_decimal(t):
        if t.precision > MAX_DECIMAL_PRECISION:
            return STRING
        return DataType("decimal", t.precision, t.scale)
    if pa.types.is_string(t) or pa.types.is_large_string(t) or pa.types.is_string_view(t):
        return STRING
    if pa.types.is_binary(t) or pa.types.is_large_binary(t) or pa.types.is_fixed_size_binary(t):
        return BINARY
    if pa.types.is_date(t):
        return DATE
    if pa.types.is_time(t):
        return TIME
    if pa.types.is_timestamp(t):
        return TIMESTAMPTZ if t.tz else TIMESTAMP
    if pa.types.is_interval(t):
        return INTERVAL
    if pa.types.is_dictionary(t):
        return from_arrow(t.value_type)
    if pa.types.is_null(t):
        return STRING
    if pa.types.is_struct(t) or pa.types.is_list(t) or pa.types.is_large_list(t) or pa.types.is_map(t):
        return JSON
    return STRING


def declared_types(value: dict[str, str]) -> dict[str, str]:
    """A `fields:` mapping of column to canonical type text, each checked to parse."""
    for name, text in value.items():
        try:
            DataType.parse(text)
        except ValueError as exc:
            raise ValueError(f"field {name}: {exc}") from None
    return value


# -- widening --------------------------------------------------------------------------

_NUMERIC_RANK = {"int32": 0, "int64": 1, "decimal": 2, "float64": 3}
_TEMPORAL_RANK = {"date": 0, "timestamp": 1, "timestamptz": 2}
_INT_DIGITS = {"int32": 10, "int64": 19}


def widen(a: DataType, b: DataType) -> DataType | None:
    """The smallest type both ``a`` and ``b`` fit in, or None when there is none."""
    if a == b:
        return a
    if a.kind == "string" or b.kind == "string":
        other = b if a.kind == "string" else a
        return STRING if other.kind in _TO_TEXT else None
    if a.kind in _NUMERIC_RANK and b.kind in _NUMERIC_RANK:
        return _widen_numeric(a, b)
    if a.kind in _TEMPORAL_RANK and b.kind in _TEMPORAL_RANK:
        return a if _TEMPORAL_RANK[a.kind] >= _TEMPORAL_RANK[b.kind] else b
    if {a.kind, b.kind} <= _TO_TEXT:
        return STRING
    return None


# Types whose values have one faithful text form; boolean, date and timestamps do not
# silently become text: that change is almost always a source bug worth a contract error.
_TO_TEXT = {"int32", "int64", "decimal", "float64", "string", "json", "time", "binary", "uuid"}


def _widen_numeric(a: DataType, b: DataType) -> DataType:
    if a.kind == "float64" or b.kind == "float64":
        return FLOAT64
    if a.kind != "decimal" and b.kind != "decimal":
        return a if _NUMERIC_RANK[a.kind] >= _NUMERIC_RANK[b.kind] else b
    scale = max(_scale(a), _scale(b))
    int_digits = max(_int_digits(a), _int_digits(b))
    if int_digits + scale > MAX_DECIMAL_PRECISION:
        return FLOAT64
    return DataType("decimal", int_digits + scale, scale)


def _scale(t: DataType) -> int:
    return t.scale or 0


def _int_digits(t: DataType) -> int:
    if t.kind == "decimal":
        assert t.precision is not None
        return t.precision - _scale(t)
    return _INT_DIGITS[t.kind]


# -- schemas ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Column:
    name: str
    type: DataType
    nullable: bool = True
    native_type: str | None = None
    #: The type older versions of the source's mapping gave this column (a PostgreSQL uuid was
    #: text): a table holding it keeps it until a rebuild, which takes ``type``.
    formerly: DataType | None = field(default=None, compare=False)

    def arrow_field(self) -> pa.Field:
        meta = {"json": JSON_METADATA, "uuid": UUID_METADATA, "list": LIST_METADATA}.get(self.type.kind)
        return pa.field(self.name, self.type.to_arrow(), nullable=True, metadata=meta)


@dataclass(frozen=True)
class StreamSchema:
    """One stream of a source: its columns, primary key and cursor candidates."""

    name: str
    columns: tuple[Column, ...]
    primary_key: tuple[str, ...] = ()
    cursor_candidates: tuple[str, ...] = ()
    notes: tuple[str, ...] = field(default=(), compare=False)
    #: The source has nothing to describe the stream by now (an emptied drop folder): the
    #: engine takes the columns of the table already loaded, and refuses the stream when
    #: none is (``notes`` says why).
    placeholder: bool = field(default=False, compare=False)

    def column(self, name: str) -> Column | None:
        for c in self.columns:
            if c.name == name:
                return c
        return None

    @property
    def column_names(self) -> list[str]:
        return [c.name for c in self.columns]

    def arrow_schema(self) -> pa.Schema:
        return pa.schema([c.arrow_field() for c in self.columns])

    def keeping_loaded(self, existing: dict[str, DataType], but: tuple[str, ...] = (),
                       booleans: bool = True, rebuild: bool = False) -> StreamSchema:
        """This schema as a destination that already holds `existing` columns takes it.

        Text stays text: a column held as text is read as text, so the source's own text goes
        in verbatim (`66.00` stays `66.00`), never a number turned back into text. With
        `booleans`, an integer column held as boolean (loaded under an older mapping) is read
        as boolean, so a value other than 0 and 1 is quarantined instead of becoming true.
        A `rebuild` gives a column held as its `formerly` type its own type (`upgrades` says
        which). The columns in `but` keep their type.
        """
        def kept(c: Column) -> DataType:
            held = existing.get(c.name)
            if c.name in but or held is None or (rebuild and held == c.formerly):
                return c.type
            if held == c.formerly or (held == STRING and c.type.kind not in ("string", "json")):
                return held
            if booleans and held == BOOLEAN and c.type.kind in ("int32", "int64"):
                return BOOLEAN
            return c.type

        columns = tuple(replace(c, type=kept(c)) for c in self.columns)
        return self if columns == self.columns else replace(self, columns=columns)

    def upgrades(self, existing: dict[str, DataType]) -> list[str]:
        """The columns a rebuild gives a type other than the `formerly` one the table holds."""
        return [f"column {c.name} rebuilt as {c.type} (it was {c.formerly}, as older versions loaded "
                f"{c.native_type or 'it'})" for c in self.columns
                if c.formerly is not None and existing.get(c.name) == c.formerly != c.type]

    def to_json(self) -> dict[str, object]:
        return {
            "name": self.name,
            "columns": [
                {"name": c.name, "type": str(c.type), "nullable": c.nullable, "native_type": c.native_type}
                for c in self.columns
            ],
            "primary_key": list(self.primary_key),
            "cursor_candidates": list(self.cursor_candidates),
        }

    @staticmethod
    def from_json(data: dict[str, object]) -> StreamSchema:
        cols = data["columns"]
        assert isinstance(cols, list)
        return StreamSchema(
            name=str(data["name"]),
            columns=tuple(
                Column(c["name"], DataType.parse(c["type"]), bool(c.get("nullable", True)), c.get("native_type"))
                for c in cols
            ),
            primary_key=tuple(str(k) for k in _as_list(data.get("primary_key"))),
            cursor_candidates=tuple(str(k) for k in _as_list(data.get("cursor_candidates"))),
        )


def _as_list(value: object) -> list[object]:
    return list(value) if isinstance(value, (list, tuple)) else []


@dataclass(frozen=True)
class ColumnChange:
    """One difference between the schema a destination has and the one arriving."""

    column: str
    action: Literal["add", "widen", "keep", "incompatible"]
    old: DataType | None
    new: DataType
    result: DataType | None

    def describe(self) -> str:
        if self.action == "add":
            return f"new column {self.column} {self.new}"
        if self.action == "widen":
            return f"column {self.column} widened {self.old} -> {self.result}"
        if self.action == "incompatible":
            return f"column {self.column} changed {self.old} -> {self.new}, which cannot widen"
        return f"column {self.column} {self.new} fits {self.old}"


def diff_columns(existing: dict[str, DataType], incoming: list[Column]) -> list[ColumnChange]:
    """How a destination table with ``existing`` columns must change to take ``incoming``."""
    changes: list[ColumnChange] = []
    for col in incoming:
        old = existing.get(col.name)
        if old is None:
            changes.append(ColumnChange(col.name, "add", None, col.type, col.type))
            continue
        if old == col.type:
            continue
        result = widen(old, col.type)
        if result is None:
            changes.append(ColumnChange(col.name, "incompatible", old, col.type, None))
        elif result == old:
            changes.append(ColumnChange(col.name, "keep", old, col.type, old))
        else:
            changes.append(ColumnChange(col.name, "widen", old, col.type, result))
    return changes
