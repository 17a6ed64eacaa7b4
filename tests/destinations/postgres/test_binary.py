"""The binary COPY stores exactly what the CSV COPY stores, type by type; a pair of types it has
no exact encoding for goes as CSV; a value beyond the server's range fails as it does in text."""

from __future__ import annotations

import datetime as dt
import random
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import psycopg
import pyarrow as pa
import pytest
from psycopg import sql

from syncline.destinations.postgres import copy
from syncline.destinations.postgres.binary import row_encoder
from syncline.destinations.postgres.copy import copy_batches, server_types

from services import postgres_schema

DSN = "host=127.0.0.1 port=5432 user=postgres dbname=test"
UTC = dt.UTC
PARIS = dt.timezone(dt.timedelta(hours=1))

ENCODED: list[tuple[pa.DataType, str, list[Any]]] = [
    (pa.int64(), "bigint", [0, -1, 2**63 - 1, -(2**63), None]),
    (pa.int32(), "integer", [7, -(2**31), 2**31 - 1, None]),
    (pa.int16(), "smallint", [-(2**15), 2**15 - 1, None]),
    (pa.int32(), "bigint", [2**31 - 1, -5, None]),
    (pa.bool_(), "boolean", [True, False, None]),
    (pa.float64(), "double precision",
     [0.1, -0.0, float("inf"), float("-inf"), float("nan"), 1e308, 5e-324, None]),
    (pa.float32(), "real", [1.5, 3.4e38, -1e-30, None]),
    (pa.string(), "text", ["", "a", "é漢字🙂", 'tab\tnew\nline\r\\ "q" ,', None]),
    (pa.large_string(), "text", ["large", "", None]),
    (pa.string(), "character varying(10)", ["short", "", None]),
    (pa.string(), "character(5)", ["ab", "abcde", None]),
    (pa.string(), "json", ['{"b": 2,  "a": 1}', "[1, 2]", "null", None]),
    (pa.string(), "jsonb", ['{"b": 2, "a": 1}', '"x"', "null", '{"é": [1.50, true]}', None]),
    (pa.binary(), "bytea", [b"", b"\x00\xff\\x", None]),
    (pa.decimal128(12, 2), "numeric(12,2)",
     [Decimal("0"), Decimal("-0.01"), Decimal("9999999999.99"), Decimal("-9999999999.99"),
      Decimal("123.40"), Decimal("10000"), None]),
    (pa.decimal128(18, 0), "numeric", [Decimal(10**18 - 1), Decimal(-(10**18 - 1)), Decimal(0), None]),
    (pa.decimal128(18, 18), "numeric",
     [Decimal("0.123456789012345678"), Decimal("-0.000000000000000001"), None]),
    (pa.decimal128(10, 5), "numeric(6,2)", [Decimal("1.23456"), Decimal("-1.23556"), None]),
    (pa.decimal128(3, 1), "numeric", [Decimal("99.9"), Decimal("-0.5"), None]),
    (pa.timestamp("us"), "timestamp without time zone",
     [dt.datetime(2026, 1, 1, 0, 0, 0, 500000), dt.datetime(1, 1, 1), dt.datetime(9999, 12, 31, 23, 59, 59, 999999),
      dt.datetime(1999, 12, 31, 23, 59, 59, 999999), dt.datetime(1970, 1, 1), None]),
    (pa.timestamp("us", tz="UTC"), "timestamp with time zone",
     [dt.datetime(2026, 3, 1, 12, 0, tzinfo=UTC), dt.datetime(1, 1, 1, tzinfo=UTC), None]),
    (pa.timestamp("us", tz="+01:00"), "timestamp with time zone", [dt.datetime(2026, 3, 1, 12, 0, tzinfo=PARIS)]),
    (pa.timestamp("us"), "timestamp with time zone", [dt.datetime(2026, 3, 1, 12, 0, 0, 1), None]),
    (pa.timestamp("us", tz="UTC"), "timestamp without time zone", [dt.datetime(2026, 3, 1, 12, 0, tzinfo=UTC)]),
    (pa.date32(), "date", [dt.date(1, 1, 1), dt.date(2000, 1, 1), dt.date(1999, 12, 31), dt.date(9999, 12, 31), None]),
    (pa.time64("us"), "time without time zone", [dt.time(0), dt.time(23, 59, 59, 999999), None]),
    (pa.null(), "text", [None, None]),
]

AS_CSV: list[tuple[pa.DataType, str, list[Any]]] = [
    (pa.int64(), "integer", [1, None]),  # fits here, but not every int64 would
    (pa.float64(), "real", [0.1, None]),
    (pa.float32(), "double precision", [0.1, None]),
    (pa.string(), "uuid", ["6ecd8c99-4036-403d-bf84-cf8400f67836", None]),
    (pa.timestamp("ns"), "timestamp without time zone", [dt.datetime(2026, 1, 1, 0, 0, 0, 1), None]),
    (pa.decimal128(20, 2), "numeric", [Decimal("123456789012345678.90"), None]),
    (pa.list_(pa.int32()), "integer[]", [[1, None, 3], None]),
    (pa.month_day_nano_interval(), "interval", [pa.MonthDayNano([1, 2, 3_000]), None]),
]


@pytest.fixture
def pg() -> Iterator[tuple[psycopg.Connection[Any], str]]:
    with postgres_schema("syncline_binary") as schema, psycopg.connect(DSN, autocommit=True) as con:
        con.execute("SET TimeZone = 'UTC'")
        yield con, schema


def load(con: psycopg.Connection[Any], schema: str, name: str, column: str, batch: pa.RecordBatch,
         binary: bool) -> list[str | None]:
    table = sql.Identifier(schema, name)
    con.execute(sql.SQL("CREATE TABLE {} (i bigint, v {})").format(table, sql.SQL(column)))
    copied = copy_batches(con, table, ["i", "v"], batch.schema if binary else None, [batch])
    assert copied == batch.num_rows
    return [r[0] for r in con.execute(sql.SQL("SELECT v::text FROM {} ORDER BY i").format(table))]


def batch_of(arrow: pa.DataType, values: list[Any]) -> pa.RecordBatch:
    return pa.record_batch([pa.array(range(len(values)), pa.int64()), pa.array(values, arrow)], names=["i", "v"])


@pytest.mark.parametrize(("arrow", "column", "values"), ENCODED, ids=[f"{a}-{c}" for a, c, _ in ENCODED])
def test_each_encoded_pair_stores_what_csv_stores(pg: tuple[psycopg.Connection[Any], str], arrow: pa.DataType,
                                                  column: str, values: list[Any],
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    con, schema = pg
    monkeypatch.setattr(copy, "COPY_PIECE_ROWS", 2)  # pieces that start inside the batch
    batch = batch_of(arrow, values)
    as_binary = load(con, schema, "b", column, batch, binary=True)
    assert row_encoder(batch.schema, server_types(con, sql.Identifier(schema, "b"), ["i", "v"])) is not None
    assert as_binary == load(con, schema, "c", column, batch, binary=False)
    assert sum(v is None for v in as_binary) == sum(v is None for v in values)


@pytest.mark.parametrize(("arrow", "column", "values"), AS_CSV, ids=[f"{a}-{c}" for a, c, _ in AS_CSV])
def test_a_pair_without_an_exact_encoding_goes_as_csv(pg: tuple[psycopg.Connection[Any], str], arrow: pa.DataType,
                                                      column: str, values: list[Any]) -> None:
    con, schema = pg
    batch = batch_of(arrow, values)
    con.execute(sql.SQL("CREATE TABLE {} (i bigint, v {})").format(sql.Identifier(schema, "x"), sql.SQL(column)))
    assert row_encoder(batch.schema, server_types(con, sql.Identifier(schema, "x"), ["i", "v"])) is None
    assert load(con, schema, "b", column, batch, binary=True) == load(con, schema, "c", column, batch, binary=False)


def test_random_decimals_of_every_precision_and_scale(pg: tuple[psycopg.Connection[Any], str]) -> None:
    con, schema = pg
    rng = random.Random(39)
    for precision in (1, 2, 4, 5, 8, 9, 12, 17, 18):
        for scale in sorted({0, 1, precision // 2, precision - 1, precision} - {-1}):
            values = [Decimal(rng.randrange(-(10**precision) + 1, 10**precision)).scaleb(-scale) for _ in range(60)]
            values += [Decimal(0).scaleb(-scale), Decimal(10**precision - 1).scaleb(-scale), None]
            batch = batch_of(pa.decimal128(precision, scale), values)
            name = f"d{precision}_{scale}"
            stored = load(con, schema, name, f"numeric({precision},{scale})", batch, binary=True)
            assert stored == [None if v is None else f"{v:f}" for v in values], name


@pytest.mark.parametrize(("arrow", "column", "value"), [
    (pa.timestamp("us"), "timestamp without time zone", -(2**63) + 1),
    (pa.timestamp("us", tz="UTC"), "timestamp with time zone", -300_000_000_000_000_000),
    (pa.date32(), "date", -(2**31)),
    (pa.date32(), "date", -(2**31) + 10_957),  # the server's -infinity, were it shifted blindly
    (pa.date32(), "date", -(2**31) + 10_956),  # and its infinity, were it wrapped
    (pa.timestamp("us"), "timestamp without time zone", -(2**63) + 946_684_800_000_000),
    (pa.date32(), "date", 2**31 - 1),
])
def test_a_value_beyond_the_servers_range_fails_and_is_not_stored_as_another(
        pg: tuple[psycopg.Connection[Any], str], arrow: pa.DataType, column: str, value: int) -> None:
    con, schema = pg
    storage = pa.int32() if pa.types.is_date32(arrow) else pa.int64()
    batch = pa.record_batch([pa.array([1], pa.int64()), pa.array([value], storage).view(arrow)], names=["i", "v"])
    with pytest.raises(psycopg.errors.DatetimeFieldOverflow):
        load(con, schema, "b", column, batch, binary=True)
