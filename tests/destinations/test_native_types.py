"""PostgreSQL's uuid, interval and unconstrained numeric in the destination's own types, on every
destination: a table loaded as text by an earlier mapping keeps its text (no contract error on
upgrade) until `sync --full-refresh` rebuilds it, which is reported as a schema change."""

from __future__ import annotations

import json
from collections.abc import Iterator
from decimal import Decimal
from uuid import UUID

import psycopg
import pytest

from services import HOST, postgres_schema
from warehouse import DSN, Warehouse

NATIVE = {
    "duckdb": {"uid": "UUID", "span": "INTERVAL", "total": "DECIMAL(38,9)", "tags": "VARCHAR[]",
               "amounts": "DECIMAL(6,2)[]"},
    "postgres": {"uid": "uuid", "span": "interval", "total": "numeric", "tags": "ARRAY",
                 "amounts": "ARRAY"},
}
AS_TEXT = {"duckdb": "VARCHAR", "postgres": "text"}
AS_JSON = {"duckdb": "JSON", "postgres": "jsonb"}
#: text that PostgreSQL's array syntax must quote or escape, and NULLs
TAGS = r"""ARRAY['a,b', NULL, 'q"uote', 'back\slash', '{x}', '', 'NULL', ' pad ']"""


def pg(statement: str) -> list[tuple[object, ...]]:
    with psycopg.connect(DSN, autocommit=True) as con:
        con.execute("SET IntervalStyle = 'iso_8601'")
        cur = con.execute(statement)  # type: ignore[call-overload]
        return list(cur.fetchall()) if cur.description else []


@pytest.fixture
def source(wh: Warehouse) -> Iterator[str]:
    """A PostgreSQL source table of uuid, interval and numeric columns, as connection c's stream."""
    with postgres_schema("syncline_native") as name:
        pg(f"CREATE TABLE {name}.orders (id integer PRIMARY KEY, uid uuid, span interval NOT NULL, total numeric, "
           "tags text[], amounts numeric(6,2)[], updated_at timestamptz NOT NULL)")
        pg(f"INSERT INTO {name}.orders VALUES (1, 'A0EEBC99-9C0B-4EF8-BB6D-6BB9BD380A11', "
           f"'1 year 2 mons -3 days 04:05:06.5', 12345678901234567890123456789.123456789, {TAGS}, "
           "ARRAY[1.5, NULL, -2], '2026-01-01 00:00:00+00'), "
           "(2, NULL, '-1 hours', 0.25, '{}', NULL, '2026-01-01 00:00:01+00')")
        wh.source_config = {"type": "postgres", "host": HOST, "port": 5432, "user": "postgres",
                            "database": "test", "schemas": [name]}
        yield f"{name}.orders"


def stream(name: str, **extra: object) -> dict[str, object]:
    return {name: {"mode": "incremental", "cursor": "updated_at", "table": "orders", **extra}}


def test_a_table_loaded_as_text_keeps_it_until_a_full_refresh_rebuilds_it_natively(
        wh: Warehouse, source: str) -> None:
    # the mapping of earlier versions: uuid, interval and unconstrained numeric as text, arrays json
    wh.streams(stream(source, fields={"uid": "string", "span": "string", "total": "string",
                                      "tags": "json", "amounts": "json"}))
    assert wh.sync()[0] == 0
    wh.streams(stream(source))  # this version's mapping
    pg(f"INSERT INTO {source} VALUES (3, gen_random_uuid(), '2 days', 1.5, ARRAY['x'], ARRAY[0.5], "
       "'2026-01-02 00:00:00+00')")
    code, out = wh.sync()
    assert code == 0 and "contract" not in out, out
    types = wh.column_types("orders")
    assert {c: types[c] for c in NATIVE[wh.kind]} == {
        **dict.fromkeys(("uid", "span", "total"), AS_TEXT[wh.kind]),
        **dict.fromkeys(("tags", "amounts"), AS_JSON[wh.kind])}
    assert wh.query("SELECT span, total FROM {s}.orders WHERE id = 3") == [("P2D", "1.5")]
    assert not wh.last_changes()

    pg(f"DELETE FROM {source} WHERE id = 2")  # kept by the rebuild, marked deleted
    code, out = wh.sync("--full-refresh")
    assert code == 0, out
    types = wh.column_types("orders")
    assert {c: types[c] for c in NATIVE[wh.kind]} == NATIVE[wh.kind]
    changes = wh.last_changes()
    assert sorted(c.split(" (")[0] for c in changes) == [
        "column amounts rebuilt as list<decimal(6,2)>", "column span rebuilt as interval",
        "column tags rebuilt as list<string>", "column total rebuilt as decimal(38,9)",
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
    lists = wh.query("SELECT id, tags, amounts FROM {s}.orders WHERE id <> 2 ORDER BY id")
    assert lists == pg(f"SELECT id, tags, amounts FROM {source} ORDER BY id")
    assert lists[0][1] == ["a,b", None, 'q"uote', "back\\slash", "{x}", "", "NULL", " pad "]
    assert got[0][6] == Decimal("12345678901234567890123456789.123456789")


def _plain(v: object) -> object:
    """Numbers compared by value, whatever type each side's driver gives them."""
    return Decimal(str(v)) if isinstance(v, (int, float, Decimal)) else v


ARRAYS = """CREATE TABLE {t} (id integer PRIMARY KEY, stamps timestamptz[], days date[], flags boolean[],
  ratios double precision[], blobs bytea[], uids uuid[], docs jsonb[], spans interval[], moods text[],
  grid integer[][])"""
ARRAY_ROWS = """INSERT INTO {t} VALUES
  (1, ARRAY['2024-03-01 12:00:00.000001+05', NULL]::timestamptz[], ARRAY['2024-02-29'::date],
   ARRAY[true, NULL, false], ARRAY['NaN', '-Infinity', 0.1]::float8[], ARRAY['\\x00ff'::bytea, '\\x'],
   ARRAY[gen_random_uuid()], ARRAY['{"k": [1, "ü"]}'::jsonb, 'null'], ARRAY['1 mon -2 days 00:00:01.5'::interval],
   '{}', '{{1,2},{3,4}}'),
  (2, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, ARRAY[NULL]::text[], NULL)"""


def test_arrays_of_every_element_type_land_as_lists_with_their_values(wh: Warehouse) -> None:
    with postgres_schema("syncline_arrays") as name:
        table = f"{name}.arrays"
        pg(ARRAYS.replace("{t}", table))
        pg(ARRAY_ROWS.replace("{t}", table))
        wh.source_config = {"type": "postgres", "host": HOST, "port": 5432, "user": "postgres",
                            "database": "test", "schemas": [name]}
        wh.streams({table: {"mode": "full_refresh", "table": "arrays"}})
        code, out = wh.sync()
        assert code == 0, out
        columns = "id, stamps, days, flags, ratios, blobs, uids, docs, moods"
        got = wh.query(f"SELECT {columns} FROM {{s}}.arrays ORDER BY id")
        want = pg(f"SELECT {columns} FROM {table} ORDER BY id")
        # the same values, element by element (DuckDB hands JSON elements over as text)
        assert [_lists(r) for r in got] == [_lists(r) for r in want]
        # interval elements part by part, and a two-dimensional array as nested JSON arrays
        epoch = "epoch_us" if wh.kind == "duckdb" else "1000000 * extract(epoch from "
        closing = "" if wh.kind == "duckdb" else ")"
        parts = (f"date_part('month', spans[1]), date_part('day', spans[1]), "
                 f"{epoch}(spans[1] - date_trunc('day', spans[1])){closing}")
        assert [tuple(map(float, r)) for r in wh.query(f"SELECT {parts} FROM {{s}}.arrays WHERE id = 1")] \
            == [(1.0, -2.0, 1_500_000.0)]
        [(grid,)] = wh.query("SELECT grid FROM {s}.arrays WHERE id = 1")
        assert (json.loads(grid) if isinstance(grid, str) else grid) == [[1, 2], [3, 4]]
        assert wh.column_types("arrays")["grid"] == AS_JSON[wh.kind]


def _lists(row: tuple[object, ...]) -> tuple[object, ...]:
    def element(x: object) -> object:
        if isinstance(x, float) and x != x:
            return "NaN"  # NaN equals nothing, itself included
        return json.loads(x) if isinstance(x, str) and x[:1] in "{n" else str(x) if isinstance(x, UUID) else x
    return tuple([element(x) for x in v] if isinstance(v, list) else v for v in row)


def nullable(wh: Warehouse, table: str) -> dict[str, str]:
    return dict(wh.query("SELECT column_name, is_nullable FROM information_schema.columns "
                         f"WHERE table_schema = '{wh.schema}' AND table_name = '{table}'"))


def test_not_null_columns_stay_not_null_in_postgresql_until_the_source_lets_them_go(
        wh: Warehouse) -> None:
    with postgres_schema("syncline_notnull") as name:
        table = f"{name}.people"
        pg(f"CREATE TABLE {table} (id integer PRIMARY KEY, name text NOT NULL, code text NOT NULL, "
           "note text, updated_at timestamptz NOT NULL)")
        pg(f"INSERT INTO {table} VALUES (1, 'a', 'x', NULL, '2026-01-01 00:00:00+00')")
        wh.source_config = {"type": "postgres", "host": HOST, "port": 5432, "user": "postgres",
                            "database": "test", "schemas": [name]}
        wh.streams({table: {"mode": "incremental", "cursor": "updated_at", "table": "people"}})
        assert wh.sync()[0] == 0
        # PostgreSQL keeps the source's NOT NULL; DuckDB tables take NULL everywhere
        held = nullable(wh, "people")
        strict = "NO" if wh.kind == "postgres" else "YES"
        assert {c: held[c] for c in ("name", "code", "note", "updated_at")} == {
            "name": strict, "code": strict, "note": "YES", "updated_at": strict}
        # the source lets name be NULL and drops code: the next run loads NULL into both
        pg(f"ALTER TABLE {table} ALTER COLUMN name DROP NOT NULL; ALTER TABLE {table} DROP COLUMN code; "
           f"INSERT INTO {table} VALUES (2, NULL, 'n', '2026-01-02 00:00:00+00')")
        code, out = wh.sync()
        assert code == 0, out
        assert wh.query("SELECT id, name, code FROM {s}.people ORDER BY id") == [(1, "a", "x"), (2, None, None)]
        held = nullable(wh, "people")
        assert (held["name"], held["code"], held["updated_at"]) == ("YES", "YES", strict)
