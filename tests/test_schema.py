"""The canonical type system: text, Arrow and DuckDB forms, the widening lattice, and values
that travel Python → Arrow (``rows_to_batch``) → DuckDB and back unchanged."""

from __future__ import annotations

import datetime as dt
import json
import math
import re
from collections.abc import Callable, Iterator
from decimal import Decimal
from typing import Any

import duckdb
import pyarrow as pa
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from syncline.destinations.duckdb.types import canonical_from_duckdb, duckdb_type
from syncline.destinations.postgres.copy import iso_interval
from syncline.records import parse_interval, rows_to_batch
from syncline.schema import (
    BINARY,
    BOOLEAN,
    DATE,
    FLOAT64,
    INT32,
    INT64,
    INTERVAL,
    JSON,
    STRING,
    TIME,
    TIMESTAMP,
    TIMESTAMPTZ,
    UUID,
    Column,
    DataType,
    StreamSchema,
    diff_columns,
    from_arrow,
    widen,
)
from syncline.sources.sqlite import map_sqlite_type

UTC = dt.UTC
SETTINGS = settings(max_examples=60, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])

SIMPLE_KINDS = ["boolean", "int32", "int64", "float64", "string", "binary", "date", "time",
                "timestamp", "timestamptz", "json", "uuid", "interval"]


def dec(p: int, s: int) -> DataType:
    return DataType("decimal", p, s)


@st.composite
def decimal_types(draw: st.DrawFn) -> DataType:
    precision = draw(st.integers(1, 38))
    return dec(precision, draw(st.integers(0, precision)))


scalar_types = st.one_of(st.sampled_from([DataType(k) for k in SIMPLE_KINDS]), decimal_types())  # type: ignore[arg-type]
# a list of any scalar but interval, whose Python value DuckDB counts in days (see the round trip)
data_types = st.one_of(scalar_types, scalar_types.filter(lambda t: t.kind != "interval").map(
    lambda t: DataType("list", element=t)))


@pytest.fixture(scope="module")
def con() -> Iterator[duckdb.DuckDBPyConnection]:
    c = duckdb.connect()
    c.execute("SET TimeZone = 'UTC'")  # as DuckDBDestination does
    yield c
    c.close()


# -- one type, three spellings ----------------------------------------------------------


@SETTINGS
@given(data_types)
def test_text_form_round_trips(t: DataType) -> None:
    assert DataType.parse(str(t)) == t


@SETTINGS
@given(data_types)
def test_arrow_form_round_trips_including_json_metadata(t: DataType) -> None:
    f = Column("c", t).arrow_field()
    assert from_arrow(f.type, f.metadata) == t
    # through a whole schema (what files and SDK sources hand over) as well
    schema = StreamSchema("s", (Column("c", t),)).arrow_schema()
    assert from_arrow(schema.field("c").type, schema.field("c").metadata) == t


@SETTINGS
@given(t=data_types)
def test_duckdb_form_round_trips_through_a_real_table(t: DataType, con: duckdb.DuckDBPyConnection) -> None:
    assert canonical_from_duckdb(duckdb_type(t)) == t
    # what DuckDBDestination.table_columns reads back from information_schema
    con.execute(f"CREATE OR REPLACE TABLE typed (c {duckdb_type(t)})")
    (reported,) = con.execute(
        "SELECT data_type FROM information_schema.columns WHERE table_name = 'typed'"
    ).fetchone()  # type: ignore[misc]
    assert canonical_from_duckdb(reported) == t


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("DECIMAL(10, 2)", dec(10, 2)),
        (" Int64 ", INT64),
        ("TIMESTAMPTZ", TIMESTAMPTZ),
    ],
    ids=["decimal-with-space-and-caps", "padded-mixed-case", "upper-case"],
)
def test_parse_accepts_loose_spelling(text: str, expected: DataType) -> None:
    assert DataType.parse(text) == expected


@pytest.mark.parametrize(
    "text",
    ["varchar", "decimal(39,0)", "decimal(5,6)", "decimal(0,0)", "int"],
    ids=["native-name", "precision-too-big", "scale-above-precision", "zero-precision", "abbreviation"],
)
def test_parse_rejects_what_is_not_a_canonical_type(text: str) -> None:
    with pytest.raises(ValueError):
        DataType.parse(text)


@pytest.mark.parametrize(
    ("arrow_type", "expected"),
    [
        (pa.int8(), INT32),
        (pa.int16(), INT32),
        (pa.uint16(), INT32),
        (pa.uint32(), INT64),
        (pa.uint64(), dec(20, 0)),
        (pa.float32(), FLOAT64),
        (pa.large_string(), STRING),
        (pa.dictionary(pa.int32(), pa.string()), STRING),
        (pa.large_binary(), BINARY),
        (pa.binary(16), BINARY),
        (pa.date64(), DATE),
        (pa.time32("s"), TIME),
        (pa.timestamp("ns"), TIMESTAMP),
        (pa.timestamp("ms", tz="Europe/Paris"), TIMESTAMPTZ),
        (pa.decimal256(40, 2), STRING),
        (pa.list_(pa.int64()), JSON),
        (pa.struct([("a", pa.int64())]), JSON),
        (pa.null(), STRING),
    ],
    ids=lambda v: str(v),
)
def test_from_arrow_maps_every_value_into_a_type_that_holds_it(arrow_type: pa.DataType, expected: DataType) -> None:
    assert from_arrow(arrow_type) == expected


def test_uint64_maximum_fits_its_canonical_decimal() -> None:
    t = from_arrow(pa.uint64())
    batch, bad = rows_to_batch([(2**64 - 1,)], StreamSchema("s", (Column("u", t),)))
    assert bad == [] and batch.column(0).to_pylist() == [Decimal(2**64 - 1)]


# -- the widening lattice ---------------------------------------------------------------

NUMERIC = st.one_of(st.sampled_from([INT32, INT64, FLOAT64]), decimal_types())
TEMPORAL = st.sampled_from([DATE, TIMESTAMP, TIMESTAMPTZ])
TEXTUAL = st.one_of(st.sampled_from([INT32, INT64, FLOAT64, STRING, JSON, TIME, BINARY]), decimal_types())
FAMILIES = st.sampled_from([NUMERIC, TEMPORAL, TEXTUAL])


@st.composite
def compatible_pairs(draw: st.DrawFn) -> tuple[DataType, DataType]:
    family = draw(FAMILIES)
    return draw(family), draw(family)


@SETTINGS
@given(data_types, data_types)
def test_widen_is_commutative(a: DataType, b: DataType) -> None:
    assert widen(a, b) == widen(b, a)


@SETTINGS
@given(data_types)
def test_widen_is_idempotent(a: DataType) -> None:
    assert widen(a, a) == a


@SETTINGS
@given(data_types, data_types)
def test_widen_result_is_an_upper_bound_that_never_moves_down(a: DataType, b: DataType) -> None:
    r = widen(a, b)
    assume(r is not None)
    assert r is not None
    assert widen(r, a) == r
    assert widen(r, b) == r


@SETTINGS
@given(data_types, data_types, data_types)
def test_widen_order_of_arrival_does_not_matter(a: DataType, b: DataType, c: DataType) -> None:
    """Three batches with different types end in the same column type whatever their order."""
    ab, bc = widen(a, b), widen(b, c)
    assume(ab is not None and bc is not None)
    assert ab is not None and bc is not None
    assert widen(ab, c) == widen(a, bc)


@SETTINGS
@given(compatible_pairs())
def test_types_of_one_family_always_reconcile(pair: tuple[DataType, DataType]) -> None:
    assert widen(*pair) is not None


@pytest.mark.parametrize(
    ("a", "b", "expected"),
    [
        (INT32, INT64, INT64),
        (INT64, dec(10, 2), dec(21, 2)),
        (INT32, dec(5, 2), dec(12, 2)),
        (dec(10, 2), dec(12, 4), dec(12, 4)),
        (dec(10, 0), dec(4, 3), dec(13, 3)),
        (dec(38, 0), dec(10, 2), FLOAT64),
        (INT64, dec(30, 20), FLOAT64),
        (INT64, FLOAT64, FLOAT64),
        (dec(10, 2), FLOAT64, FLOAT64),
        (DATE, TIMESTAMP, TIMESTAMP),
        (DATE, TIMESTAMPTZ, TIMESTAMPTZ),
        (TIMESTAMP, TIMESTAMPTZ, TIMESTAMPTZ),
        (INT64, STRING, STRING),
        (TIME, STRING, STRING),
        (JSON, STRING, STRING),
        (BINARY, STRING, STRING),
        (TIME, JSON, STRING),
        (FLOAT64, BINARY, STRING),
        (UUID, STRING, STRING),
    ],
    ids=lambda v: str(v),
)
def test_widen_known_pairs(a: DataType, b: DataType, expected: DataType) -> None:
    assert widen(a, b) == expected


@pytest.mark.parametrize(
    ("a", "b"),
    [
        (TIMESTAMP, BOOLEAN),
        (BOOLEAN, INT32),
        (BOOLEAN, STRING),
        (DATE, STRING),
        (TIMESTAMP, STRING),
        (TIMESTAMPTZ, INT64),
        (DATE, TIME),
        (JSON, DATE),
        (BINARY, TIMESTAMPTZ),
        (dec(10, 2), BOOLEAN),
        (INTERVAL, STRING),
        (INTERVAL, TIME),
    ],
    ids=lambda v: str(v),
)
def test_widen_refuses_pairs_without_a_faithful_common_type(a: DataType, b: DataType) -> None:
    assert widen(a, b) is None
    changes = diff_columns({"c": a}, [Column("c", b)])
    assert [(ch.action, ch.result) for ch in changes] == [("incompatible", None)]
    assert f"column c changed {a} -> {b}, which cannot widen" == changes[0].describe()


@pytest.mark.parametrize(
    ("existing", "incoming", "expected"),
    [
        ({"a": INT64}, [Column("a", INT64)], []),
        ({"a": INT64}, [Column("a", INT64), Column("b", DATE)], [("b", "add", DATE)]),
        ({"a": INT32}, [Column("a", INT64)], [("a", "widen", INT64)]),
        ({"a": INT64}, [Column("a", INT32)], [("a", "keep", INT64)]),
        ({"a": dec(10, 2)}, [Column("a", INT64)], [("a", "widen", dec(21, 2))]),
        ({"a": TIMESTAMP}, [Column("a", BOOLEAN)], [("a", "incompatible", None)]),
    ],
    ids=["unchanged", "new-column", "widened", "narrower-kept", "int-into-decimal", "incompatible"],
)
def test_diff_columns(existing: dict[str, DataType], incoming: list[Column],
                      expected: list[tuple[str, str, DataType | None]]) -> None:
    assert [(c.column, c.action, c.result) for c in diff_columns(existing, incoming)] == expected


# -- values -----------------------------------------------------------------------------

UNICODE = st.characters(exclude_categories=["Cs"])  # any code point but lone surrogates
MIN_AWARE = dt.datetime(2, 1, 1)
MAX_AWARE = dt.datetime(9998, 12, 31)
fixed_offsets = st.builds(
    dt.timezone, st.integers(-23 * 60 - 59, 23 * 60 + 59).map(lambda m: dt.timedelta(minutes=m))
)
aware_datetimes = st.datetimes(MIN_AWARE, MAX_AWARE, timezones=st.one_of(fixed_offsets, st.timezones()))
json_scalars = st.one_of(
    st.none(), st.booleans(), st.integers(-(2**53), 2**53),
    st.floats(allow_nan=False, allow_infinity=False), st.text(UNICODE),
)
json_values = st.recursive(
    json_scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=12,
)
json_objects = st.dictionaries(st.text(UNICODE, max_size=8), json_values,
                               max_size=5)


def values_of(t: DataType) -> st.SearchStrategy[Any]:
    """Python values a source may hand over for a column of type ``t``."""
    k = t.kind
    if k == "boolean":
        return st.booleans()
    if k == "int32":
        return st.integers(-(2**31), 2**31 - 1)
    if k == "int64":
        return st.integers(-(2**63), 2**63 - 1)
    if k == "decimal":
        assert t.precision is not None and t.scale is not None
        p, s = t.precision, t.scale
        return st.integers(-(10**p - 1), 10**p - 1).map(lambda n: Decimal(f"{n}E-{s}"))
    if k == "float64":
        return st.floats(allow_nan=False)
    if k == "string":
        return st.text(UNICODE)  # NUL included
    if k == "binary":
        return st.binary()
    if k == "date":
        return st.dates()
    if k == "time":
        return st.times()
    if k == "timestamp":
        return st.one_of(st.datetimes(), aware_datetimes)
    if k == "timestamptz":
        return st.one_of(aware_datetimes, st.datetimes(MIN_AWARE, MAX_AWARE))
    if k == "json":
        return st.one_of(json_objects, json_objects.map(lambda o: json.dumps(o, ensure_ascii=False)))
    if k == "list":
        assert t.element is not None
        return st.lists(st.one_of(st.none(), values_of(t.element)), max_size=4)
    if k == "uuid":  # any case, as text or an object: always stored in canonical text
        return st.one_of(st.uuids(), st.uuids().map(lambda u: str(u).upper()))
    if k == "interval":  # PostgreSQL's ranges: int32 months and days, microseconds
        return st.builds(lambda m, d, us: pa.MonthDayNano([m, d, us * 1000]),
                         st.integers(-(2**31), 2**31 - 1), st.integers(-(2**31), 2**31 - 1),
                         st.integers(-(2**63 // 1000), (2**63 - 1) // 1000))
    raise AssertionError(k)


def canonical(t: DataType, v: Any) -> Any:
    """The value a destination column of type ``t`` must hold for source value ``v``."""
    if v is None:
        return None
    if t.element is not None:
        return [canonical(t.element, x) for x in v]
    if t.kind == "timestamp" and v.tzinfo is not None:
        return v.astimezone(UTC).replace(tzinfo=None)
    if t.kind == "timestamptz":
        return v.replace(tzinfo=UTC) if v.tzinfo is None else v.astimezone(UTC)
    if t.kind == "json":
        return json.loads(v) if isinstance(v, str) else v
    if t.kind == "uuid":
        return str(v).lower()
    return v


def readback(t: DataType, got: Any) -> Any:
    if got is None:
        return None
    if t.element is not None:
        return [readback(t.element, x) for x in got]
    if t.kind == "json":
        return json.loads(got)
    if t.kind == "timestamptz":
        assert got.utcoffset() == dt.timedelta(0)
        return got.astimezone(UTC)
    if t.kind == "uuid":
        return str(got)
    return got


def load(con: duckdb.DuckDBPyConnection, table: str, t: DataType, values: list[Any],
         *, into: DataType | None = None, first_id: int = 0) -> None:
    """rows_to_batch, then the destination's own load: CAST the staged Arrow batch into the
    column type (``into``, when the column has been widened beyond the stream's type)."""
    schema = StreamSchema("s", (Column("i", INT64), Column("x", t)))
    batch, bad = rows_to_batch([(first_id + i, v) for i, v in enumerate(values)], schema)
    assert bad == [], [b.error for b in bad]
    assert batch.num_rows == len(values)
    con.register("staged", pa.Table.from_batches([batch]))
    try:
        con.execute(f"INSERT INTO {table} SELECT i, CAST(x AS {duckdb_type(into or t)}) FROM staged")
    finally:
        con.unregister("staged")


@st.composite
def typed_values(draw: st.DrawFn) -> tuple[DataType, list[Any]]:
    t = draw(data_types)
    return t, draw(st.lists(st.one_of(st.none(), values_of(t)), min_size=1, max_size=8))


@SETTINGS
@given(tv=typed_values())
def test_values_round_trip_python_arrow_duckdb(tv: tuple[DataType, list[Any]], con: duckdb.DuckDBPyConnection) -> None:
    t, values = tv
    con.execute(f"CREATE OR REPLACE TABLE rt (i BIGINT, x {duckdb_type(t)})")
    load(con, "rt", t, values)
    # intervals through Arrow: DuckDB's Python values count a month as 30 days
    got = [readback(t, v) for v in con.sql("SELECT x FROM rt ORDER BY i").to_arrow_table()
           .column(0).to_pylist()] if t.kind == "interval" else \
        [readback(t, r[0]) for r in con.execute("SELECT x FROM rt ORDER BY i").fetchall()]
    assert got == [canonical(t, v) for v in values]


def text_form(t: DataType, v: Any, draw: st.DrawFn) -> Any:
    """The same value as SQLite hands it over: text, 0/1 integers, REAL for decimals."""
    k = t.kind
    if k in ("date", "time"):
        return v.isoformat()
    if k in ("timestamp", "timestamptz"):
        text = v.isoformat(sep=draw(st.sampled_from([" ", "T"])), timespec="microseconds")
        return text[:-6] + "Z" if text.endswith("+00:00") and draw(st.booleans()) else text
    if k == "boolean":
        return int(v)
    if k == "decimal":
        if len(v.as_tuple().digits) <= 15 and draw(st.booleans()):
            return float(v)
        return str(v)
    if k == "json" and not isinstance(v, str):
        return json.dumps(v)
    return v


@st.composite
def text_and_native(draw: st.DrawFn) -> tuple[DataType, list[Any], list[Any]]:
    t = draw(st.one_of(st.sampled_from([BOOLEAN, DATE, TIME, TIMESTAMP, TIMESTAMPTZ, JSON]), decimal_types()))
    native = draw(st.lists(values_of(t), min_size=1, max_size=6))
    return t, native, [text_form(t, v, draw) for v in native]


@SETTINGS
@given(text_and_native())
def test_text_forms_from_sqlite_give_the_same_values_as_native_python(
    case: tuple[DataType, list[Any], list[Any]],
) -> None:
    t, native, text = case
    schema = StreamSchema("s", (Column("x", t),))
    from_native, bad_native = rows_to_batch([(v,) for v in native], schema)
    from_text, bad_text = rows_to_batch([(v,) for v in text], schema)
    assert bad_native == [] and bad_text == [], [b.error for b in bad_native + bad_text]
    if t.kind == "json":  # the text is kept as the source wrote it; its meaning must agree
        assert [json.loads(x) for x in from_text.column(0).to_pylist()] == \
               [json.loads(x) for x in from_native.column(0).to_pylist()]
    else:
        assert from_text.column(0).to_pylist() == from_native.column(0).to_pylist()


def _blob_from_duckdb_text(text: str) -> bytes:
    return re.sub(rb"\\x([0-9A-Fa-f]{2})", lambda m: bytes([int(m[1], 16)]), text.encode("ascii"))


def holds(r: DataType, src: DataType, v: Any, got: Any) -> bool:
    """Does ``got`` (read from a column of widened type ``r``) faithfully hold ``v`` of ``src``?"""
    if v is None:
        return got is None
    want = canonical(src, v)
    if r == src:
        return bool(readback(r, got) == want)
    if r.kind in ("int32", "int64", "decimal"):
        return bool(got == want)
    if r.kind == "float64":
        return math.isclose(got, float(want), rel_tol=1e-15) or got == float(want)
    if r.kind == "timestamp":
        return bool(got == (want if isinstance(want, dt.datetime) else dt.datetime.combine(want, dt.time())))
    if r.kind == "timestamptz":
        if not isinstance(want, dt.datetime):
            want = dt.datetime.combine(want, dt.time(), tzinfo=UTC)
        elif want.tzinfo is None:
            want = want.replace(tzinfo=UTC)
        return bool(got == want)
    assert r.kind == "string", r
    return bool(FROM_TEXT[src.kind](got) == want)


# How each type's value is read back from the text DuckDB casts it to (blobs: \xNN escapes).
FROM_TEXT: dict[str, Callable[[str], Any]] = {
    "int32": int, "int64": int, "decimal": Decimal, "float64": float, "string": str,
    "json": json.loads, "time": dt.time.fromisoformat, "binary": _blob_from_duckdb_text,
}


@SETTINGS
@given(data=st.data())
def test_widening_a_destination_column_keeps_old_and_new_values(data: st.DataObject,
                                                                con: duckdb.DuckDBPyConnection) -> None:
    """What the loader does on a widening change: ALTER the column to widen(old, new), whose
    existing values DuckDB casts, then CAST the incoming batch (still of the new type) into it."""
    old, new = data.draw(compatible_pairs(), label="old, new")
    r = widen(old, new)
    assert r is not None
    old_values = data.draw(st.lists(st.one_of(st.none(), values_of(old)), min_size=1, max_size=4), label="old")
    new_values = data.draw(st.lists(st.one_of(st.none(), values_of(new)), min_size=1, max_size=4), label="new")
    con.execute(f"CREATE OR REPLACE TABLE w (i BIGINT, x {duckdb_type(old)})")
    load(con, "w", old, old_values)
    if r != old:
        con.execute(f"ALTER TABLE w ALTER COLUMN x TYPE {duckdb_type(r)}")
    load(con, "w", new, new_values, into=r, first_id=1000)
    rows = con.execute("SELECT i, x FROM w ORDER BY i").fetchall()
    olds = [x for i, x in rows if i < 1000]
    news = [x for i, x in rows if i >= 1000]
    assert len(olds) == len(old_values) and len(news) == len(new_values)
    for v, got in zip(old_values, olds):
        assert holds(r, old, v, got), (old, r, v, got)
    for v, got in zip(new_values, news):
        assert holds(r, new, v, got), (new, r, v, got)


@pytest.mark.parametrize(
    ("t", "value"),
    [
        (dec(10, 2), Decimal("1.234")),
        (dec(10, 2), "1.234"),
        (dec(10, 2), 1.234),
        (dec(5, 2), Decimal("999.995")),
        (dec(5, 2), Decimal("1000")),
        (dec(5, 2), "NaN"),
        (INT32, 2**31),
        (INT64, 2**63),
        (INT64, "12abc"),
        (BOOLEAN, 2),
        (BOOLEAN, "maybe"),
        (DATE, "2020-02-30"),
        (TIMESTAMP, "yesterday"),
        (TIME, "25:00"),
        (JSON, "{not json"),
        (FLOAT64, "x1"),
    ],
    ids=["decimal-extra-places", "decimal-text-extra-places", "decimal-float-extra-places",
         "decimal-rounds-past-precision", "decimal-too-big", "decimal-nan", "int32-overflow",
         "int64-overflow", "int-garbage", "boolean-2", "boolean-text", "impossible-date",
         "timestamp-words", "time-out-of-range", "broken-json", "float-garbage"],
)
def test_unrepresentable_value_is_set_apart_never_changed(t: DataType, value: Any) -> None:
    """A value the column cannot hold exactly becomes a bad record with a reason; the other
    rows of the batch still load (never rounded, never a crash of the whole batch)."""
    schema = StreamSchema("s", (Column("i", INT64), Column("x", t)))
    batch, bad = rows_to_batch([(1, None), (2, value), (3, None)], schema)
    assert batch.column(0).to_pylist() == [1, 3]
    assert len(bad) == 1
    assert bad[0].record == {"i": 2, "x": value}
    assert bad[0].error.startswith("column x: ")


def test_large_decimals_survive_the_careful_path() -> None:
    """One bad value sends the whole column through per-value conversion; valid 38-digit
    decimals in the same batch must still load exactly."""
    t = dec(38, 10)
    big = "1234567890123456789012345678.1234567890"
    schema = StreamSchema("s", (Column("x", t),))
    batch, bad = rows_to_batch([(big,), ("oops",), (10**27,)], schema)
    assert [b.record["x"] for b in bad] == ["oops"]
    assert batch.column(0).to_pylist() == [Decimal(big), Decimal(10**27)]


# -- SQLite declared types ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("declared", "expected", "noted"),
    [
        ("INTEGER", INT64, False),
        ("INT", INT64, False),
        ("BIGINT", INT64, False),
        ("UNSIGNED BIG INT", INT64, False),
        ("tinyint", INT64, False),
        ("BOOLEAN", BOOLEAN, False),
        ("BOOL", BOOLEAN, False),
        ("TEXT", STRING, False),
        ("VARCHAR(255)", STRING, False),
        ("NVARCHAR(100)", STRING, False),
        ("CHARACTER(20)", STRING, False),
        ("CLOB", STRING, False),
        ("UUID", STRING, False),
        ("BLOB", BINARY, False),
        ("REAL", FLOAT64, False),
        ("DOUBLE", FLOAT64, False),
        ("DOUBLE PRECISION", FLOAT64, False),
        ("FLOAT", FLOAT64, False),
        ("DECIMAL(10,2)", dec(10, 2), False),
        ("decimal(10, 2)", dec(10, 2), False),
        ("NUMERIC(12)", dec(12, 0), False),
        ("DECIMAL(38,38)", dec(38, 38), False),
        ("DECIMAL(40,2)", STRING, True),
        ("NUMERIC", FLOAT64, True),
        ("DECIMAL", FLOAT64, True),
        ("DATE", DATE, False),
        ("TIME", TIME, False),
        ("DATETIME", TIMESTAMP, False),
        ("TIMESTAMP", TIMESTAMP, False),
        ("TIMESTAMP WITHOUT TIME ZONE", TIMESTAMP, False),
        ("TIMESTAMPTZ", TIMESTAMPTZ, False),
        ("TIMESTAMP WITH TIME ZONE", TIMESTAMPTZ, False),
        ("JSON", JSON, False),
        ("JSONB", JSON, False),
        ("", STRING, True),
        ("MONEY", STRING, True),
    ],
    ids=lambda v: (v or "no-type") if isinstance(v, str) else None,
)
def test_map_sqlite_type(declared: str, expected: DataType, noted: bool) -> None:
    dtype, note = map_sqlite_type(declared)
    assert dtype == expected
    assert (note is not None) == noted
    if note:
        assert (declared or "no declared type") in note


@SETTINGS
@given(small=st.sampled_from([INT32, INT64]), d=decimal_types())
def test_integer_extremes_fit_the_decimal_they_widen_to(small: DataType, d: DataType,
                                                         con: duckdb.DuckDBPyConnection) -> None:
    r = widen(small, d)
    assert r is not None
    assume(r.kind == "decimal")
    bits = 32 if small == INT32 else 64
    extremes = [-(2 ** (bits - 1)), 2 ** (bits - 1) - 1]
    got = [x for (x,) in con.execute(
        f"SELECT CAST(CAST(v AS {duckdb_type(small)}) AS {duckdb_type(r)}) FROM unnest(?) AS t(v)",
        [extremes]).fetchall()]
    assert got == extremes


@SETTINGS
@given(values_of(DataType("interval")))
def test_interval_text_round_trips_part_by_part(v: pa.MonthDayNano) -> None:
    # the ISO 8601 text the PostgreSQL destination writes is the text its source reads
    assert parse_interval(iso_interval(v)) == v


@pytest.mark.parametrize("text", ["P", "PT", "1 day", "P1.5D", "PT9223372037S", "infinity"])
def test_interval_text_without_an_exact_value_is_refused(text: str) -> None:
    with pytest.raises(ValueError, match="interval"):
        parse_interval(text)
