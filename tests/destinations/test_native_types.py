"""PostgreSQL's uuid, interval and unconstrained numeric in the destination's own types, on every
destination: a table loaded as text by an earlier mapping keeps its text (no contract error on
upgrade) until `sync --full-refresh` rebuilds it, which is reported as a schema change."""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal

import psycopg
import pytest

from services import HOST, postgres_schema
from warehouse import DSN, Warehouse

NATIVE = {
    "duckdb": {"uid": "UUID", "span": "INTERVAL", "total": "DECIMAL(38,9)"},
    "postgres": {"uid": "uuid", "span": "interval", "total": "numeric"},
}
AS_TEXT = {"duckdb": "VARCHAR", "postgres": "text"}


def pg(statement: str) -> list[tuple[object, ...]]:
    with psycopg.connect(DSN, autocommit=True) as con:
        con.execute("SET IntervalStyle = 'iso_8601'")
        cur = con.execute(statement)  # type: ignore[call-overload]
        return list(cur.fetchall()) if cur.description else []


@pytest.fixture
def source(wh: Warehouse) -> Iterator[str]:
    """A PostgreSQL source table of uuid, interval and numeric columns, as connection c's stream."""
    with postgres_schema("syncline_native") as name:
        pg(f"CREATE TABLE {name}.orders (id integer PRIMARY KEY, uid uuid, span interval, total numeric, "
           "updated_at timestamptz NOT NULL)")
        pg(f"INSERT INTO {name}.orders VALUES (1, 'A0EEBC99-9C0B-4EF8-BB6D-6BB9BD380A11', "
           "'1 year 2 mons -3 days 04:05:06.5', 12345678901234567890123456789.123456789, "
           "'2026-01-01 00:00:00+00'), (2, NULL, '-1 hours', 0.25, '2026-01-01 00:00:01+00')")
        wh.source_config = {"type": "postgres", "host": HOST, "port": 5432, "user": "postgres",
                            "database": "test", "schemas": [name]}
        yield f"{name}.orders"


def stream(name: str, **extra: object) -> dict[str, object]:
    return {name: {"mode": "incremental", "cursor": "updated_at", "table": "orders", **extra}}


def test_a_table_loaded_as_text_keeps_it_until_a_full_refresh_rebuilds_it_natively(
        wh: Warehouse, source: str) -> None:
    # the mapping of earlier versions: uuid, interval and unconstrained numeric as text
    wh.streams(stream(source, fields={"uid": "string", "span": "string", "total": "string"}))
    assert wh.sync()[0] == 0
    wh.streams(stream(source))  # this version's mapping
    pg(f"INSERT INTO {source} VALUES (3, gen_random_uuid(), '2 days', 1.5, '2026-01-02 00:00:00+00')")
    code, out = wh.sync()
    assert code == 0 and "contract" not in out, out
    types = wh.column_types("orders")
    assert {c: types[c] for c in NATIVE[wh.kind]} == dict.fromkeys(NATIVE[wh.kind], AS_TEXT[wh.kind])
    assert wh.query("SELECT span, total FROM {s}.orders WHERE id = 3") == [("P2D", "1.5")]
    assert not wh.last_changes()

    pg(f"DELETE FROM {source} WHERE id = 2")  # kept by the rebuild, marked deleted
    code, out = wh.sync("--full-refresh")
    assert code == 0, out
    types = wh.column_types("orders")
    assert {c: types[c] for c in NATIVE[wh.kind]} == NATIVE[wh.kind]
    changes = wh.last_changes()
    assert sorted(c.split(" (")[0] for c in changes) == [
        "column span rebuilt as interval", "column total rebuilt as decimal(38,9)",
        "column uid rebuilt as uuid"], changes
    # the values, exactly: the uuid in canonical text, the interval part by part, every digit
    epoch = "epoch_us" if wh.kind == "duckdb" else "1000000 * extract(epoch from "
    closing = "" if wh.kind == "duckdb" else ")"
    got = wh.query(f"SELECT id, uid::text, {epoch}(span - date_trunc('day', span)){closing}, "
                   "date_part('year', span), date_part('month', span), date_part('day', span), total "
                   "FROM {s}.orders ORDER BY id")
    want = pg(f"SELECT id, uid::text, 1000000 * extract(epoch from span - date_trunc('day', span)), "
              "date_part('year', span), date_part('month', span), date_part('day', span), total "
              f"FROM {source} ORDER BY id")
    # as after any change of a column's type, the rebuild keeps a row gone from the source marked
    # deleted with the columns whose type did not change
    assert got.pop(1) == (2, None, None, None, None, None, None)
    assert wh.query("SELECT _syncline_deleted FROM {s}.orders WHERE id = 2") == [(True,)]
    assert [tuple(map(_plain, r)) for r in got] == [tuple(map(_plain, r)) for r in want]
    assert got[0][1] == "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11"
    assert got[0][2:6] == (14_706_500_000, 1, 2, -3)
    assert got[0][6] == Decimal("12345678901234567890123456789.123456789")


def _plain(v: object) -> object:
    """Numbers compared by value, whatever type each side's driver gives them."""
    return Decimal(str(v)) if isinstance(v, (int, float, Decimal)) else v
