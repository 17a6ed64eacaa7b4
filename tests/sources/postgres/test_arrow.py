"""PostgreSQL's binary reader (ADBC) against a real server: the same values, bad records and
checkpoints as PostgreSQL's own text gives, batches cut across the driver's, driver errors."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from typing import Any

import psycopg
import pyarrow as pa
import pytest

from syncline.errors import ConfigurationError, TransientError
from syncline.sources.base import SourceContext
from syncline.sources.postgres import arrow as postgres_arrow
from syncline.sources.postgres.source import PostgresConfig, PostgresSource
from syncline.sources.postgres.types import text_to_batch
from syncline.stream import BadRecord, Checkpoint, ReadRequest

from services import HOST, postgres_schema

CONNINFO = f"host={HOST} port=5432 user=postgres dbname=test"


def pg(statement: str, params: Any = None) -> list[tuple[Any, ...]]:
    """One statement in the session the source pins (UTC, ISO dates, ISO 8601 intervals, hex bytea)."""
    with psycopg.connect(CONNINFO, autocommit=True) as conn:
        conn.execute("SET TIME ZONE 'UTC'; SET DateStyle = 'ISO, YMD'; SET IntervalStyle = 'iso_8601';"
                     " SET extra_float_digits = 3; SET bytea_output = 'hex'")
        cur = conn.execute(statement, params)
        return cur.fetchall() if cur.description else []


@pytest.fixture(scope="module")
def schema() -> Iterator[str]:
    with postgres_schema("syncline_pga") as name:
        yield name


def source(schema: str, table: str, **config: Any) -> PostgresSource:
    cfg = PostgresConfig.model_validate({"type": "postgres", "host": HOST, "user": "postgres",
                                         "database": "test", "tables": [f"{schema}.{table}"], **config})
    return PostgresSource("pg", cfg, SourceContext(root="."))


def read_all(src: PostgresSource, **request: Any) -> list[Any]:
    [stream] = src.discover()
    return list(src.read(ReadRequest(stream=stream, **request)))


# -- the same outcome as PostgreSQL's text --------------------------------------------------

ODD_DDL = """
CREATE TYPE {s}.feeling AS ENUM ('meh', 'fine');
CREATE TABLE {s}.odd (
  id integer PRIMARY KEY, born date, seen timestamp(3), changed timestamptz, clock time, price numeric(8,2),
  doc jsonb, flag boolean, code char(3), addr inet, approx real, raw bytea, uid uuid, mood {s}.feeling,
  span interval, tags text[]
)"""
ODD_ROWS = [
    "(1, '2024-02-29', '2024-03-01 12:34:56.789', '2024-03-01 12:00:00.000001+05', '23:59:59.999999', 9.5,"
    " '{\"b\": [1, \"ü\"], \"a\": null}', true, 'ab', '10.0.0.1/32', 0.1, '\\x00ff', "
    " 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11', 'fine', '1 day 2 hours', '{x,NULL,\"y,z\"}')",
    "(2, 'infinity', NULL, NULL, NULL, 1, NULL, false, NULL, NULL, NULL, NULL, NULL, 'meh', NULL, '{}')",
    "(3, '2000-01-01 BC', '0001-01-01 00:00:00', '0001-01-01 00:00:00+00', '00:00:00', NULL, 'null', NULL,"
    " '', '::1', '-Infinity', '\\x', NULL, NULL, '-1 second', NULL)",
    "(4, '10000-01-01', '-infinity', '2024-01-01 00:00:00+00', '24:00:00', 'NaN', '[]', true, 'xyz',"
    " NULL, 'NaN', NULL, NULL, NULL, NULL, NULL)",
    "(5, '9999-12-31', '9999-12-31 23:59:59.999', 'infinity', '12:00:00', 'NaN', '{}', NULL, NULL, NULL,"
    " 3.25, NULL, NULL, NULL, NULL, NULL)",
    "(6, '0001-01-01', '0044-03-15 12:00:00 BC', '2024-06-01 00:00:00+00', '24:00:00', 2.5, NULL, NULL, NULL,"
    " NULL, NULL, NULL, NULL, NULL, NULL, NULL)",
    "(7, NULL, NULL, '10000-01-01 00:00:00+00', NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL,"
    " NULL, NULL)",
    "(8, '2026-01-01', '2026-01-01 00:00:00', '2026-01-01 00:00:00+00', '01:02:03', -0.5, '\"s\"', false,"
    " 'c', '192.168.0.0/16', 1e30, '\\xdeadbeef', '00000000-0000-0000-0000-000000000000', 'meh', 'P1Y',"
    " '{\"\"}')",
]
# PostgreSQL's output text of each column, as a text read (COPY) carries it
TEXT = """SELECT id::text, born::text, seen::text, changed::text, clock::text, price::text,
  to_json(doc)::text, CASE WHEN flag IS NOT NULL THEN format('%s', flag) END,
  CASE WHEN code IS NOT NULL THEN format('%s', code) END, CASE WHEN addr IS NOT NULL THEN format('%s', addr) END,
  approx::text, raw::text, uid::text, CASE WHEN mood IS NOT NULL THEN format('%s', mood) END, span::text,
  to_json(tags)::text FROM {s}.odd ORDER BY id"""


def test_values_and_bad_records_are_exactly_those_of_postgresql_text(schema: str) -> None:
    pg(ODD_DDL.format(s=schema))
    pg(f"INSERT INTO {schema}.odd VALUES {', '.join(ODD_ROWS)}")
    src = source(schema, "odd")
    [stream] = src.discover()
    items = list(src.read(ReadRequest(stream=stream, mode="full_refresh", primary_key=("id",),
                                      batch_size=3)))
    got_bad = [(i.record, i.error) for i in items if isinstance(i, BadRecord)]
    got_rows = [r for b in items if isinstance(b, pa.RecordBatch) for r in b.to_pylist()]

    texts = pg(TEXT.format(s=schema))
    table = pa.table({c.name: pa.array([r[j] for r in texts], pa.string())
                      for j, c in enumerate(stream.columns)})
    want, want_bad = text_to_batch(table, stream)
    assert got_bad == [(b.record, b.error) for b in want_bad]
    assert got_rows == want.to_pylist()
    # what that means, spelled out for a few of them
    assert [(b[0]["id"], b[1].split(":")[0]) for b in got_bad] == [
        ("2", "column born"), ("3", "column born"), ("4", "column born"), ("5", "column changed"),
        ("6", "column seen"), ("7", "column changed")]
    assert got_bad[0] == ({**got_bad[0][0], "born": "infinity", "mood": "meh", "flag": "f"},
                          "column born: 'infinity' has no date form (Invalid isoformat string: 'infinity')")
    first = got_rows[0]
    assert first["approx"] == 0.1 and first["code"] == "ab " and first["addr"] == "10.0.0.1"
    assert first["span"] == pa.MonthDayNano([0, 1, 7_200_000_000_000]) and first["uid"] == \
        "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11" and first["tags"] == ["x", None, "y,z"]
    assert [r["id"] for r in got_rows] == [1, 8]


# -- batches and checkpoints ----------------------------------------------------------------

def test_checkpoints_over_many_driver_batches_are_the_servers_text_of_each_batchs_last_row(
    schema: str
) -> None:
    # ~100-byte rows: the driver's batches (about 1 MiB at this batch size) hold some 9,000
    # rows each, so batches of 997 are cut across the driver's several times
    pg(f"CREATE TABLE {schema}.many (b text, a integer, at timestamptz NOT NULL, pad text, "
       "PRIMARY KEY (b, a))")
    pg(f"INSERT INTO {schema}.many SELECT 'k' || (i % 7), i, TIMESTAMPTZ '2026-01-01 00:00:00+00' "
       f"+ (i / 3) * interval '10 microseconds', repeat('x', 80) FROM generate_series(1, 30000) i")
    src = source(schema, "many")
    bs = 997

    def batches_and_marks(mode: str, cursor: str | None) -> tuple[list[int], list[list[Any]], list[int]]:
        # sizes: the rows each checkpoint covers (the batches before it may be several pieces)
        sizes, marks, order, since = [], [], [], 0
        for item in read_all(src, mode=mode, cursor=cursor, primary_key=("b", "a"), batch_size=bs):
            if isinstance(item, pa.RecordBatch):
                since += item.num_rows
                order += item.column("a").to_pylist()
            elif isinstance(item, Checkpoint):
                v = item.value
                marks.append(v["after"] if mode == "full_refresh" else [v["cursor"], *v["key"]])
                sizes.append(since)
                since = 0
        assert since == 0  # no row after the last checkpoint
        return sizes, marks, order

    sizes, marks, order = batches_and_marks("incremental", "at")
    rows = pg(f"SELECT at::text, b, a FROM {schema}.many ORDER BY at, b, a")
    ends = [min(len(rows), k) - 1 for k in range(bs, len(rows) + bs, bs)]
    assert sizes == [bs] * 30 + [90]
    assert marks == [list(rows[i]) for i in ends]
    assert marks[0][0] == "2026-01-01 00:00:00.00332+00"  # PostgreSQL's text: trailing zeros trimmed
    assert order == [r[2] for r in rows]

    # a table is read in physical order: each mark is the ctid of its batch's last row
    sizes, marks, order = batches_and_marks("full_refresh", None)
    rows = pg(f"SELECT ctid::text AS tid, a FROM {schema}.many ORDER BY ctid")
    assert sizes == [bs] * 30 + [90]
    assert marks == [[rows[i][0]] for i in ends]
    assert order == [r[1] for r in rows]
    assert order != sorted(order, key=lambda a: (f"k{a % 7}", a))  # not the key's order

    # a view has no ctid: it is read in key order, each mark the key of the batch's last row
    pg(f"CREATE VIEW {schema}.many_v AS SELECT * FROM {schema}.many")
    src = source(schema, "many_v", include_views=True)
    sizes, marks, order = batches_and_marks("full_refresh", None)
    rows = pg(f"SELECT b, a FROM {schema}.many ORDER BY b, a")
    assert sizes == [bs] * 30 + [90]
    assert marks == [list(rows[i]) for i in ends]
    assert order == [r[1] for r in rows]


def test_a_keyless_incremental_read_marks_no_checkpoint_inside_a_tie_across_driver_batches(
    schema: str
) -> None:
    pg(f"CREATE TABLE {schema}.ties (n integer, at timestamp NOT NULL, pad text)")
    pg(f"INSERT INTO {schema}.ties SELECT i, TIMESTAMP '2026-01-01' + ((i - 1) / 1000) * interval '1 s', "
       f"repeat('y', 100) FROM generate_series(1, 20000) i")  # runs of 1,000 equal cursor values
    items = read_all(source(schema, "ties"), mode="incremental", cursor="at", batch_size=250)
    seen, marked = 0, []
    for item in items:
        if isinstance(item, pa.RecordBatch):
            seen += item.num_rows
        elif isinstance(item, Checkpoint):
            marked.append((seen, item.value["cursor"]))
    assert seen == 20000
    # a mark only where a batch's last row ends a run of its cursor value: after every 4th batch
    assert marked == [(n, f"2026-01-01 00:00:{n // 1000 - 1:02d}") for n in range(1000, 20001, 1000)]


# -- errors ---------------------------------------------------------------------------------

@pytest.mark.parametrize(("driver_conninfo", "error", "says"), [
    (lambda pw: f"host={HOST} port=1 user=postgres dbname=test password={pw} connect_timeout=3",
     TransientError, "`host:` and `port:`"),
    (lambda pw: f"postgresql://postgres:{pw}@[::1/test", ConfigurationError, "in URI"),
    (lambda pw: f"host={HOST} port=5432 user=nobody_{secrets.token_hex(3)} dbname=test password={pw}",
     ConfigurationError, "`user:` and `password:`"),
], ids=["refused", "malformed-uri-echoing-the-password", "unknown-role"])
def test_a_connection_error_of_the_driver_is_classified_and_never_shows_the_password(
    schema: str, monkeypatch: pytest.MonkeyPatch, driver_conninfo: Any, error: type[Exception], says: str
) -> None:
    pg(f"CREATE TABLE IF NOT EXISTS {schema}.small (id integer PRIMARY KEY)")
    password = f"pw-{secrets.token_hex(8)}"
    # the metadata connection (psycopg) works; only the driver's connection fails
    monkeypatch.setattr(postgres_arrow, "conninfo", lambda kw: driver_conninfo(password))
    with pytest.raises(error) as info:
        read_all(source(schema, "small", password=password), mode="full_refresh", primary_key=("id",))
    text = str(info.value)
    assert says in text and "cannot connect" in text
    assert password not in text and password not in repr(info.value.args)


def test_the_driver_connects_with_the_sources_settings_and_password(schema: str) -> None:
    pg(f"CREATE TABLE IF NOT EXISTS {schema}.small (id integer PRIMARY KEY)")
    src = source(schema, "small", password="p@ss w'rd", connect_timeout=7)
    info = psycopg.conninfo.conninfo_to_dict(postgres_arrow.conninfo(src._conninfo()))
    assert info["password"] == "p@ss w'rd" and info["connect_timeout"] == "7"
    assert info["application_name"] == "syncline" and info["dbname"] == "test"
    dsn = source(schema, "small", host=None, user=None, database=None,
                 dsn=f"postgresql://postgres@{HOST}:5432/test?application_name=other", password="pw")
    info = psycopg.conninfo.conninfo_to_dict(postgres_arrow.conninfo(dsn._conninfo()))
    assert info["application_name"] == "syncline" and info["password"] == "pw"
    assert info["host"] == HOST and info["dbname"] == "test"
