"""PostgreSQL source against a real server: discovery, exact values end to end, cursors, errors."""

from __future__ import annotations

import datetime as dt
import json
import secrets
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import duckdb
import psycopg
import pyarrow as pa
import pytest
import yaml

from syncline.config import load_workspace
from syncline.errors import ConfigurationError, TransientError
from syncline.records import parse_interval
from syncline.sources.base import SourceContext
from syncline.sources.postgres.source import PostgresConfig, PostgresSource
from syncline.sources.registry import build_source
from syncline.stream import BadRecord, Checkpoint, ReadRequest

from services import HOST, POSTGRES_READER, postgres_reader, postgres_schema, require_postgres
from syncfixtures import dest_query, failpoints_on, run_sync

UTC = dt.UTC
CONNINFO = f"host={HOST} port=5432 user=postgres dbname=test"


def pg(statement: str, params: Any = None) -> list[tuple[Any, ...]]:
    """One statement on the test server (UTC, ISO 8601 intervals); its rows, if any."""
    with psycopg.connect(CONNINFO, autocommit=True) as conn:
        conn.execute("SET TIME ZONE 'UTC'")
        conn.execute("SET IntervalStyle = 'iso_8601'")
        cur = conn.execute(statement, params)
        return cur.fetchall() if cur.description else []


@pytest.fixture(scope="module")
def schema() -> Iterator[str]:
    """A uniquely named schema for this module, dropped with everything in it at the end."""
    with postgres_schema("syncline_pg") as name:
        postgres_reader(name)  # sources read as the documented read-only role
        yield name


def make_source(schema: str, **config: Any) -> PostgresSource:
    cfg = PostgresConfig.model_validate({"type": "postgres", "host": HOST, "user": POSTGRES_READER,
                                         "database": "test", "schemas": [schema], **config})
    return PostgresSource("pg", cfg, SourceContext(root="."))


def write_ws(root: Path, schema: str, streams: dict[str, Any], *, batch_size: int = 1000,
             max_attempts: int = 1, **config: Any) -> Path:
    where = {} if "dsn" in config else {"host": HOST, "port": 5432, "user": POSTGRES_READER,
                                        "database": "test"}
    src = {"type": "postgres", **where, "schemas": [schema], **config}
    doc = {
        "version": 1,
        "sources": {"src": src},
        "destinations": {"wh": {"type": "duckdb", "path": "wh.duckdb"}},
        "connections": {"c": {"source": "src", "destination": "wh", "destination_schema": "dst",
                              "batch_size": batch_size, "max_attempts": max_attempts,
                              "streams": streams}},
    }
    (root / "syncline.yaml").write_text(yaml.safe_dump(doc), encoding="utf-8")
    return root


# -- every type --------------------------------------------------------------------------

EVERY_TYPE_DDL = """
CREATE TYPE {s}.mood AS ENUM ('sad', 'ok', 'happy');
CREATE DOMAIN {s}.amount AS numeric(10,2) CHECK (VALUE >= 0);
CREATE DOMAIN {s}.big_amount AS {s}.amount;
CREATE TABLE {s}.every_type (
  id integer PRIMARY KEY, small smallint, big bigint, price numeric(12,2), wide numeric(38,10),
  loose numeric, huge numeric(50,4), ratio double precision, approx real, flag boolean,
  name text, code char(3), label varchar(20), nm name, born date, clock time(6), clock_tz timetz,
  seen timestamp(6), changed timestamptz, span interval, uid uuid, doc json, docb jsonb,
  ints integer[], grid text[][], raw bytea, mood {s}.mood, amount {s}.big_amount, addr inet,
  updated_at timestamptz NOT NULL
);
CREATE VIEW {s}.every_type_view AS SELECT id, name FROM {s}.every_type;
CREATE TABLE {s}.compound (b text, a integer, serial_id bigserial, ident bigint GENERATED ALWAYS
  AS IDENTITY, modified_at timestamp, PRIMARY KEY (b, a));
"""

EVERY_TYPE = {
    "id": "int32", "small": "int32", "big": "int64", "price": "decimal(12,2)",
    "wide": "decimal(38,10)", "loose": "decimal(38,9)", "huge": "string", "ratio": "float64",
    "approx": "float64", "flag": "boolean", "name": "string", "code": "string", "label": "string",
    "nm": "string", "born": "date", "clock": "time", "clock_tz": "string", "seen": "timestamp",
    "changed": "timestamptz", "span": "interval", "uid": "uuid", "doc": "json", "docb": "json",
    "ints": "list<int32>", "grid": "json", "raw": "binary", "mood": "string", "amount": "decimal(10,2)",
    "addr": "string", "updated_at": "timestamptz",
}
COLUMNS = ", ".join(EVERY_TYPE)

# Edge values first; `changed` is written at +05:00 and must arrive five hours earlier, in UTC.
EDGE_ROWS = [
    "(1, -32768, -9223372036854775808, 9999999999.99, 1234567890123456789012345678.0123456789,"
    " '12345678901234567890123456789.123456789', 12345678901234567890123456789012345678901234.5678,"
    " 0.1, 1.5, true, E'Zoë 東京 🎉 𝄞, \"q\" \\'s\\\\ line1\\nline2', 'ab', 'NULL', 'nm', '2024-02-29',"
    " '23:59:59.999999', '12:00:00+02', '2024-03-01 12:34:56.123456', '2024-03-01 12:00:00.000001+05',"
    " '1 year 2 mons 3 days 04:05:06.5', 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11',"
    " '{\"k\": [1, \"ü\", null], \"emoji\": \"🎉\", \"n\": 1.25}', '{\"b\": 1.50, \"a\": [true]}',"
    " '{1,NULL,3}', '{{a,\"b,c\"},{NULL,\"\"}}', '\\x00ff10', 'happy', 12.50, '10.0.0.1/32',"
    " '2026-01-01 00:00:00.000001+00')",
    "(2, NULL, NULL, NULL, NULL, NULL, NULL, 'NaN', '-Infinity', NULL, '', NULL, '', NULL, NULL,"
    " NULL, NULL, NULL, NULL, NULL, NULL, 'null', '[]', '{}', NULL, '', NULL, NULL, NULL,"
    " '2026-01-01 00:00:00+00')",
]
GENERATED_ROWS = """
INSERT INTO {s}.every_type ({cols})
SELECT i, i % 1000, i::bigint * 1000000007, i * 1.01, i / 7.0, i / 8.0, NULL, i / 3.0, i / 4.0, i % 2 = 0,
  'row ' || i || ' ü', 'x', 'l' || i, 'n', DATE '2000-01-01' + i, TIME '00:00:00.000001' + i * interval '1 s',
  NULL, TIMESTAMP '2025-01-01' + i * interval '1.000001 s', TIMESTAMPTZ '2025-06-01 00:00:00+00' + i * interval '1 min',
  i * interval '1 h', md5(i::text)::uuid, json_build_object('i', i), jsonb_build_object('v', i / 8.0),
  ARRAY[i, i + 1], ARRAY[ARRAY['a' || i]], decode(md5(i::text), 'hex'), 'ok', i / 100.0, '192.168.0.1',
  TIMESTAMPTZ '2026-01-01 00:00:00+00' + i * interval '1 s'
FROM generate_series(3, 300) i
"""
# Values a decimal(38,9) or an interval of nanoseconds cannot hold exactly: quarantined, never
# rounded (the last: a time part past 2^63 nanoseconds).
BEYOND_ROWS = {301: ("loose", "'NaN'"), 302: ("loose", "3.14159265358979323846264338327950288419716939937510"),
               303: ("loose", "1 / 3.0"), 304: ("span", "interval '3000000 hours'")}


@pytest.fixture(scope="module")
def every_type(schema: str) -> str:
    pg(EVERY_TYPE_DDL.format(s=schema))
    pg(f"INSERT INTO {schema}.every_type ({COLUMNS}) VALUES {', '.join(EDGE_ROWS)}")
    pg(GENERATED_ROWS.format(s=schema, cols=COLUMNS))
    for i, (col, value) in BEYOND_ROWS.items():
        pg(f"INSERT INTO {schema}.every_type (id, {col}, updated_at) VALUES ({i}, {value}, now())")
    return f"{schema}.every_type"


def test_discovery_maps_every_type_keys_cursors_and_notes(schema: str, every_type: str) -> None:
    streams = {s.name: s for s in make_source(schema).discover()}
    assert f"{schema}.every_type_view" not in streams  # views only with include_views: true
    s = streams[every_type]
    assert {c.name: str(c.type) for c in s.columns} == EVERY_TYPE
    assert s.column_names == list(EVERY_TYPE)  # ordinal order
    assert s.primary_key == ("id",)
    assert not s.column("id").nullable and s.column("small").nullable  # type: ignore[union-attr]
    assert s.column("amount").native_type == f"{schema}.big_amount"  # type: ignore[union-attr]
    assert s.cursor_candidates[:3] == ("updated_at", "seen", "changed")
    notes = "\n".join(s.notes)
    for col, text in [("loose", "without precision and scale: loaded as decimal(38,9)"),
                      ("huge", "decimal(38)"), ("clock_tz", "time with time zone"),
                      ("addr", "inet: carried as text")]:
        assert f"{col}: " in notes and text in notes, (col, notes)
    assert len(s.notes) == 4  # nothing else is carried in a lossy way
    # what earlier versions loaded them as: a table holding that keeps it until rebuilt
    formerly = {c.name: str(c.formerly) for c in s.columns if c.formerly is not None}
    assert formerly == {"loose": "string", "span": "string", "uid": "string", "ints": "json"}
    compound = streams[f"{schema}.compound"]
    assert compound.primary_key == ("b", "a")  # key order, not column order
    assert compound.cursor_candidates == ("modified_at", "serial_id", "ident")
    with_views = {s.name for s in make_source(schema, include_views=True).discover()}
    assert f"{schema}.every_type_view" in with_views


def _expected_every_type(schema: str) -> list[tuple[Any, ...]]:
    """The source's rows, read through psycopg's own adapters, as the warehouse must hold them."""
    rows = pg(
        "SELECT id, small, big, price, wide, loose, huge::text, ratio, approx, flag, name, code,"
        " label, nm::text, born, clock, clock_tz::text, seen, changed, span::text, uid::text, doc::text,"
        " docb::text, to_json(ints)::text, to_json(grid)::text, raw, mood::text, amount,"
        " CASE WHEN addr IS NOT NULL THEN format('%s', addr) END,"
        f" updated_at FROM {schema}.every_type WHERE id <= 300 ORDER BY id"
    )
    return [_json_columns(r) for r in rows]


# DuckDB's own columns as the source's text shows them: an interval part by part, a UUID as text
DUCKDB_COLUMNS = COLUMNS.replace("span,", "CASE WHEN span IS NOT NULL THEN to_json([datepart('year', span) * 12 + datepart('month', span), "
                                 "datepart('day', span), epoch_us(span) - epoch_us(date_trunc('day', span))])"
                                 "::VARCHAR END,").replace("uid,", "uid::VARCHAR,")


def _json_columns(row: tuple[Any, ...]) -> tuple[Any, ...]:
    """JSON text parsed, NaN made comparable (NaN != NaN would fail any row equality)."""
    return [json.loads(v) if i in (19, 21, 22, 23, 24) and isinstance(v, str) and v[:1] in "[{n"
            else "NaN" if isinstance(v, float) and v != v else v for i, v in enumerate(row)]


def _interval_parts(text: str | None) -> list[int] | None:
    if text is None:
        return None
    v = parse_interval(text)
    return [v.months, v.days, v.nanoseconds // 1000]


def test_full_refresh_into_duckdb_equals_the_source_row_by_row(
    tmp_path: Path, schema: str, every_type: str
) -> None:
    # a role whose defaults differ everywhere: the source must pin its own session settings
    odd_session = "-c TimeZone=Asia/Kolkata -c DateStyle=SQL,DMY -c IntervalStyle=postgres_verbose"
    write_ws(tmp_path, schema, {every_type: {"mode": "full_refresh", "write": "replace"}}, batch_size=64,
             dsn=f"{CONNINFO} options='{odd_session} -c extra_float_digits=-3 -c bytea_output=escape'")
    result = run_sync(tmp_path)
    assert result.status == "warning", result.error
    assert result.rows_read == 304 and result.rows_committed == 300
    quarantined = dict(dest_query(tmp_path, "SELECT json_extract(record, '$.id')::INT, error "
                                            "FROM dst._syncline_quarantine"))
    assert sorted(quarantined) == sorted(BEYOND_ROWS), quarantined
    assert "has more than 9 decimal places" in quarantined[303] and "span" in quarantined[304]
    got = [_json_columns(r) for r in dest_query(
        tmp_path, f"SELECT {DUCKDB_COLUMNS} FROM dst.every_type ORDER BY id")]
    expected = _expected_every_type(schema)
    for row in expected:  # the interval as [months, days, microseconds of the time part]
        row[19] = _interval_parts(row[19])
    assert got == expected
    first, second = got[0], got[1]
    assert first[3] == Decimal("9999999999.99") and first[4] == Decimal("1234567890123456789012345678.0123456789")
    assert first[10] == "Zoë 東京 🎉 𝄞, \"q\" 's\\ line1\nline2" and first[12] == "NULL"
    assert first[18] == dt.datetime(2024, 3, 1, 7, 0, 0, 1, tzinfo=UTC)
    assert first[17] == dt.datetime(2024, 3, 1, 12, 34, 56, 123456)
    assert first[19] == [14, 3, 14_706_500_000] and first[25] == b"\x00\xff\x10"
    assert first[5] == Decimal("12345678901234567890123456789.123456789")
    assert first[23] == [1, None, 3] and first[24] == [["a", "b,c"], [None, ""]]
    assert second[10] == "" and second[12] == "" and second[11] is None  # '' and NULL stay apart
    assert second[7] == "NaN" and second[8] == float("-inf") and second[5] is None
    types = dict(dest_query(tmp_path, "SELECT column_name, data_type FROM information_schema.columns "
                                      "WHERE table_schema = 'dst' AND table_name = 'every_type'"))
    assert {k: types[k] for k in ("id", "big", "price", "seen", "changed", "doc", "raw", "clock",
                                  "loose", "span", "uid", "ints", "grid")} == {
        "id": "INTEGER", "big": "BIGINT", "price": "DECIMAL(12,2)", "seen": "TIMESTAMP",
        "changed": "TIMESTAMP WITH TIME ZONE", "doc": "JSON", "raw": "BLOB", "clock": "TIME",
        "loose": "DECIMAL(38,9)", "span": "INTERVAL", "uid": "UUID", "ints": "INTEGER[]", "grid": "JSON"}


# -- incremental -------------------------------------------------------------------------

def make_items(schema: str, table: str, n: int, *, key: bool = True, tie: bool = False,
               nullable: bool = True) -> str:
    pg(f"CREATE TABLE {schema}.{table} (id integer {'PRIMARY KEY' if key else ''}, name text, "
       f"price numeric(10,2), updated_at timestamptz {'' if nullable else 'NOT NULL'})")
    insert_items(schema, table, range(1, n + 1), tie=tie)
    return f"{schema}.{table}"


def insert_items(schema: str, table: str, ids: range, *, tie: bool = False, version: int = 0) -> None:
    # cursor values a microsecond apart: any precision lost between runs loses or repeats rows
    pg(f"INSERT INTO {schema}.{table} SELECT i, 'v{version} ' || i, i * 1.25, TIMESTAMPTZ "
       f"'2026-01-01 00:00:00+00' + CASE WHEN %s THEN 0 ELSE i END * interval '1 microsecond' "
       f"+ %s * interval '1 day' FROM generate_series(%s::int, %s::int) i", [tie, version, ids.start, ids.stop - 1])


def source_items(schema: str, table: str) -> list[tuple[Any, ...]]:
    return pg(f"SELECT id, name, price, updated_at FROM {schema}.{table} ORDER BY id")


def dest_items(root: Path, table: str) -> list[tuple[Any, ...]]:
    return dest_query(root, f"SELECT id, name, price, updated_at FROM dst.{table} ORDER BY id")


def test_incremental_merge_brings_a_row_updated_twice_at_its_latest_version(
    tmp_path: Path, schema: str
) -> None:
    stream = make_items(schema, "twice", 100)
    write_ws(tmp_path, schema, {stream: {"mode": "incremental", "cursor": "updated_at"}}, batch_size=30)
    assert run_sync(tmp_path).rows_committed == 100
    for version in (1, 2):
        pg(f"UPDATE {stream} SET name = 'v{version} 7', updated_at = updated_at + %s * interval '1 day' "
           "WHERE id = 7", [version])
    pg(f"UPDATE {stream} SET name = 'v1 50', updated_at = '2026-06-01' WHERE id = 50")
    insert_items(schema, "twice", range(101, 103), version=3)
    second = run_sync(tmp_path)
    assert second.status == "succeeded", second.error
    assert second.rows_read == 4  # 2 updated + 2 new, nothing older
    assert dest_items(tmp_path, "twice") == source_items(schema, "twice")
    assert dest_query(tmp_path, "SELECT name FROM dst.twice WHERE id = 7") == [("v2 7",)]
    assert run_sync(tmp_path).rows_read == 0


def test_rows_sharing_one_cursor_value_across_batches_all_arrive_once(tmp_path: Path, schema: str) -> None:
    stream = make_items(schema, "ties", 50, tie=True, nullable=False)
    write_ws(tmp_path, schema, {stream: {"mode": "incremental", "write": "append", "cursor": "updated_at"}},
             batch_size=7)
    assert run_sync(tmp_path).rows_committed == 50
    insert_items(schema, "ties", range(51, 61), tie=True)  # committed later, at the same cursor value
    assert run_sync(tmp_path).rows_committed == 10
    assert dest_query(tmp_path, "SELECT count(*), count(DISTINCT id) FROM dst.ties") == [(60, 60)]


def test_a_keyless_table_with_a_declared_unique_column_resumes_inside_a_tie(
        tmp_path: Path, schema: str) -> None:
    stream = make_items(schema, "keyless", 30, key=False, tie=True, nullable=False)
    insert_items(schema, "keyless", range(31, 51))
    write_ws(tmp_path, schema, {stream: {"mode": "incremental", "write": "append", "cursor": "updated_at",
                                         "primary_key": ["id"]}},
             batch_size=7, max_attempts=2)
    with failpoints_on("after_staging:3=raise"):  # the retry resumes from the last checkpoint
        result = run_sync(tmp_path)
    assert result.status == "succeeded" and result.attempts == 2
    insert_items(schema, "keyless", range(51, 56), version=1)
    assert run_sync(tmp_path).rows_committed == 5
    assert dest_query(tmp_path, "SELECT count(*), count(DISTINCT id) FROM dst.keyless") == [(55, 55)]


def test_rows_with_a_null_cursor_arrive_on_every_merge_run(tmp_path: Path, schema: str) -> None:
    stream = make_items(schema, "nulls", 20)
    pg(f"UPDATE {stream} SET updated_at = NULL WHERE id % 3 = 0")
    write_ws(tmp_path, schema, {stream: {"mode": "incremental", "cursor": "updated_at"}}, batch_size=4)
    assert run_sync(tmp_path).rows_committed == 20
    insert_items(schema, "nulls", range(21, 23), version=1)
    pg(f"INSERT INTO {stream} VALUES (0, 'no stamp', 1, NULL)")  # inserted later, no cursor value
    pg(f"UPDATE {stream} SET name = 'changed', updated_at = NULL WHERE id = 1")
    # the 2 new rows, and every row whose cursor is NULL: 6 + 2 of them now
    assert run_sync(tmp_path).rows_committed == 2 + 8
    assert dest_items(tmp_path, "nulls") == source_items(schema, "nulls")


@pytest.mark.parametrize(("native", "values"), [
    ("timestamptz", ["2026-01-01 00:00:00.000001+00", "2026-01-01 00:00:00.000002+00"]),
    ("timestamp", ["2026-01-01 00:00:00.999998", "2026-01-01 00:00:00.999999"]),
    ("numeric(30,10)", ["12345678901234567890.0000000001", "12345678901234567890.0000000002"]),
    ("bigint", ["9223372036854775806", "9223372036854775807"]),
    ("date", ["2026-01-01", "2026-01-02"]),
], ids=["timestamptz-microseconds", "timestamp-microseconds", "numeric-beyond-double", "bigint-max",
        "date"])
def test_cursor_positions_keep_the_sources_precision(schema: str, native: str, values: list[str]) -> None:
    table = f"precision_{native.split('(')[0]}"
    pg(f"CREATE TABLE {schema}.{table} (id integer PRIMARY KEY, c {native} NOT NULL)")
    for i, v in enumerate(values * 2, start=1):  # two rows at each of two adjacent values
        pg(f"INSERT INTO {schema}.{table} VALUES (%s, %s)", [i, v])
    src = make_source(schema, tables=[f"{schema}.{table}"])
    [stream] = src.discover()
    seen: list[int] = []
    checkpoint: dict[str, Any] | None = None
    for _ in range(6):  # one row per read: each read resumes from the last checkpoint alone
        reader = src.read(ReadRequest(stream=stream, mode="incremental", cursor="c",
                                      primary_key=("id",), checkpoint=checkpoint, batch_size=1))
        for item in reader:
            if isinstance(item, pa.RecordBatch):
                seen += [r["id"] for r in item.to_pylist()]
            elif isinstance(item, Checkpoint):
                checkpoint = json.loads(json.dumps(item.value))  # stored by the engine as JSON
                break
        reader.close()
    assert sorted(seen) == [1, 2, 3, 4]
    assert seen == [1, 3, 2, 4]  # (cursor, key) order
    assert checkpoint is not None and str(checkpoint["cursor"]) == values[1]


@pytest.mark.parametrize(("lookback", "late_row_arrives"), [(None, False), ("5m", True)],
                         ids=["without-lookback", "with-lookback-5m"])
def test_lookback_catches_a_row_committed_late_with_an_older_cursor(
    tmp_path: Path, schema: str, lookback: str | None, late_row_arrives: bool
) -> None:
    table = f"late_{'on' if lookback else 'off'}"
    stream = make_items(schema, table, 10)
    extra = {"lookback": lookback} if lookback else {}
    write_ws(tmp_path, schema, {stream: {"mode": "incremental", "cursor": "updated_at"}}, **extra)
    assert run_sync(tmp_path).rows_committed == 10
    # a writer whose transaction began a minute before the last sync commits only now
    pg(f"INSERT INTO {stream} SELECT 11, 'late', 1, max(updated_at) - interval '1 minute' FROM {stream}")
    second = run_sync(tmp_path)
    assert second.status == "succeeded", second.error
    ids = [r[0] for r in dest_items(tmp_path, table)]
    assert (11 in ids) is late_row_arrives
    assert len(ids) == len(set(ids))  # rows read again are merged, never duplicated


def test_a_configured_key_that_repeats_in_a_read_is_refused_before_any_commit(
    tmp_path: Path, schema: str
) -> None:
    # a key the table does not enforce may come twice in one read: merged, a row would be lost
    stream = make_items(schema, "repeats", 10, key=False)
    insert_items(schema, "repeats", range(1, 4), version=1)  # ids 1-3 again, a day later
    write_ws(tmp_path, schema, {stream: {"mode": "incremental", "cursor": "updated_at",
                                         "primary_key": ["id"]}}, batch_size=4)
    first = run_sync(tmp_path)
    assert first.status == "failed" and first.error is not None
    assert first.error.failure_class == "data"
    assert "the primary key (id) is not unique: 3 key values come 6 times" in str(first.error)
    assert dest_query(tmp_path, "SELECT count(*) FROM dst.repeats") == [(0,)]  # nothing committed


def test_an_incremental_stream_read_again_from_the_start_merges_into_the_rows_it_has(
    tmp_path: Path, schema: str
) -> None:
    # the first load into an empty table only inserts; a table that has rows is merged into
    stream = make_items(schema, "again", 50)
    write_ws(tmp_path, schema, {stream: {"mode": "incremental", "cursor": "updated_at"}}, batch_size=20)
    assert run_sync(tmp_path).rows_committed == 50
    assert dest_items(tmp_path, "again") == source_items(schema, "again")
    pg(f"UPDATE {stream} SET name = 'changed' WHERE id <= 5")
    con = duckdb.connect(str(tmp_path / "wh.duckdb"))
    con.execute("DELETE FROM dst._syncline_state")  # as `syncline state c --reset` does
    con.close()
    again = run_sync(tmp_path)
    assert again.status == "succeeded", again.error
    assert again.rows_read == 50
    assert dest_items(tmp_path, "again") == source_items(schema, "again")  # 50 rows, none twice


def test_a_first_load_into_a_postgres_destination_inserts_and_a_second_read_merges(
    tmp_path: Path, schema: str
) -> None:
    # into an empty table the first read's rows go straight in; read again, they are merged
    stream = make_items(schema, "into_pg", 50)
    write_ws(tmp_path, schema, {stream: {"mode": "incremental", "cursor": "updated_at"}}, batch_size=20)
    doc = yaml.safe_load((tmp_path / "syncline.yaml").read_text())
    doc["destinations"]["wh"] = {"type": "postgres", "host": HOST, "port": 5432, "user": "postgres",
                                 "database": "test"}
    doc["connections"]["c"]["destination_schema"] = dst = f"{schema}_dst"
    (tmp_path / "syncline.yaml").write_text(yaml.safe_dump(doc))
    loaded = f"SELECT id, name, price, updated_at FROM {dst}.into_pg ORDER BY id"
    try:
        first = run_sync(tmp_path)
        assert first.status == "succeeded" and first.rows_committed == 50, first.error
        assert pg(loaded) == source_items(schema, "into_pg")
        pg(f"UPDATE {stream} SET name = 'changed' WHERE id <= 5")
        pg(f"DELETE FROM {dst}._syncline_state")  # as `syncline state c --reset` does
        again = run_sync(tmp_path)
        assert again.status == "succeeded", again.error
        assert again.rows_read == 50
        assert pg(loaded) == source_items(schema, "into_pg")  # 50 rows, none twice
    finally:
        pg(f'DROP SCHEMA IF EXISTS "{dst}" CASCADE')


def refresh_in_batches_of_20(root: Path, schema: str, table: str, **make: Any) -> str:
    """A 200-row table `table` and a workspace that rebuilds it in batches of 20."""
    stream = make_items(schema, table, 200, **make)
    write_ws(root, schema, {stream: {"mode": "full_refresh", "write": "replace"}}, batch_size=20)
    return stream


def fail_at_the_third_batch(root: Path) -> None:
    """A run that commits two batches (40 rows) and fails with the third."""
    with failpoints_on("after_staging:3=raise"):
        failed = run_sync(root)
    assert failed.status == "failed" and failed.error is not None


def test_a_failed_full_refresh_resumes_from_the_committed_key_or_starts_over_after_a_write(
    tmp_path: Path, schema: str
) -> None:
    stream = refresh_in_batches_of_20(tmp_path, schema, "resume")
    pg(f"ALTER TABLE {stream} SET (autovacuum_enabled = false)")  # an ANALYZE is a write too

    fail_at_the_third_batch(tmp_path)
    resumed = run_sync(tmp_path)  # nothing was written on the server meanwhile
    assert resumed.status == "succeeded", resumed.error
    assert resumed.rows_read == 160  # two batches of 20 were committed before the failure
    assert dest_items(tmp_path, "resume") == source_items(schema, "resume")

    fail_at_the_third_batch(tmp_path)
    pg(f"UPDATE {stream} SET name = 'changed' WHERE id <= 10")  # rows the failed run had copied
    restarted = run_sync(tmp_path)
    assert restarted.status == "succeeded", restarted.error
    assert restarted.rows_read == 200  # the build starts over: no row copied before the write
    assert dest_items(tmp_path, "resume") == source_items(schema, "resume")


def test_a_refresh_in_ctid_order_resumes_past_writes_to_rows_it_had_not_copied(
    tmp_path: Path, schema: str
) -> None:
    # a table is read in physical order: only the rows before the checkpoint must be as they were
    stream = refresh_in_batches_of_20(tmp_path, schema, "beyond")
    fail_at_the_third_batch(tmp_path)
    pg(f"UPDATE {stream} SET name = 'late' WHERE id > 150")  # rows the failed run had not copied
    pg(f"DELETE FROM {stream} WHERE id = 199")
    insert_items(schema, "beyond", range(201, 206))
    resumed = run_sync(tmp_path)
    assert resumed.status == "succeeded", resumed.error
    assert resumed.rows_read == 160 - 1 + 5  # the 40 rows committed are not read again
    assert dest_items(tmp_path, "beyond") == source_items(schema, "beyond")


def test_a_table_rewritten_after_a_failed_refresh_is_read_again_from_the_start(
    tmp_path: Path, schema: str
) -> None:
    # CLUSTER keeps every row, its xmin and the row count, but puts other rows at the ctids
    # the failed run had copied: only the table's new file tells
    stream = refresh_in_batches_of_20(tmp_path, schema, "rewritten")
    pg(f"CREATE INDEX rewritten_desc ON {stream} (id DESC)")
    fail_at_the_third_batch(tmp_path)
    pg(f"CLUSTER {stream} USING rewritten_desc")
    restarted = run_sync(tmp_path)
    assert restarted.status == "succeeded", restarted.error
    assert restarted.rows_read == 200  # started over
    assert dest_items(tmp_path, "rewritten") == source_items(schema, "rewritten")


def test_a_keyless_table_resumes_a_failed_refresh_by_ctid(tmp_path: Path, schema: str) -> None:
    refresh_in_batches_of_20(tmp_path, schema, "keyless_resume", key=False)
    fail_at_the_third_batch(tmp_path)
    resumed = run_sync(tmp_path)
    assert resumed.status == "succeeded", resumed.error
    assert resumed.rows_read == 160
    assert dest_items(tmp_path, "keyless_resume") == source_items(schema, "keyless_resume")


def test_a_failure_right_after_a_batch_is_read_is_transient_and_resumes_after_the_last_commit(
    tmp_path: Path, schema: str
) -> None:
    stream = make_items(schema, "read_fail", 200)
    write_ws(tmp_path, schema, {stream: {"mode": "full_refresh", "write": "replace"}}, batch_size=20)
    with failpoints_on("source_read:3=raise"):  # the third batch, read but not yet handed on
        failed = run_sync(tmp_path)
    assert failed.status == "failed"
    assert isinstance(failed.error, TransientError) and "failpoint source_read" in str(failed.error)
    write_ws(tmp_path, schema, {stream: {"mode": "full_refresh", "write": "replace"}}, batch_size=20,
             max_attempts=2)
    with failpoints_on("source_read:2=raise"):  # and with a second attempt, the engine retries
        resumed = run_sync(tmp_path)
    assert resumed.status == "succeeded", resumed.error
    assert resumed.attempts == 2
    assert resumed.rows_read == 140  # after the two committed batches, one more before the retry
    assert dest_items(tmp_path, "read_fail") == source_items(schema, "read_fail")


def test_a_keyless_view_refreshed_after_a_failure_holds_every_row_once(
    tmp_path: Path, schema: str, every_type: str
) -> None:
    view = f"{every_type}_view"
    write_ws(tmp_path, schema, {view: {"mode": "full_refresh"}}, batch_size=64, max_attempts=2,
             include_views=True)
    with failpoints_on("after_staging:3=raise"):
        result = run_sync(tmp_path)
    assert result.status == "succeeded" and result.attempts == 2
    assert result.streams[0].commits == 1  # no key to resume by: one commit at the end
    assert dest_query(tmp_path, "SELECT count(*), count(DISTINCT id) FROM dst.every_type_view") == [(304, 304)]


def test_a_connection_lost_mid_read_is_a_transient_error(schema: str) -> None:
    pg(f"CREATE TABLE {schema}.lost AS SELECT i AS id, repeat('x', 100) AS pad "
       "FROM generate_series(1, 200000) i")
    src = make_source(schema, tables=[f"{schema}.lost"])
    [stream] = src.discover()
    reader = src.read(ReadRequest(stream=stream, mode="full_refresh", batch_size=100))
    next(reader)
    killed = pg("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = "
                "'syncline' AND query LIKE %s", [f"COPY%{schema}%lost%"])
    assert killed == [(True,)]
    with pytest.raises(TransientError, match="retried automatically"):
        for _ in reader:
            pass


def test_unrepresentable_values_are_quarantined_and_huge_values_arrive_whole(schema: str) -> None:
    pg(f"CREATE TABLE {schema}.odd (id integer PRIMARY KEY, born date, price numeric(8,2), doc jsonb)")
    big = {"text": "x" * 6_000_000}  # one row larger than a CSV parsing block
    pg(f"INSERT INTO {schema}.odd VALUES (1, 'infinity', 1, NULL), (2, '2000-01-01 BC', 2, NULL), "
       "(3, '2024-01-01', 'NaN', NULL), (4, '2024-01-02', 4.5, %s)", [json.dumps(big)])
    src = make_source(schema, tables=[f"{schema}.odd"])
    [stream] = src.discover()
    items = list(src.read(ReadRequest(stream=stream, mode="full_refresh", primary_key=("id",))))
    bad = [i for i in items if isinstance(i, BadRecord)]
    rows = [r for b in items if isinstance(b, pa.RecordBatch) for r in b.to_pylist()]
    assert [(b.record["id"], b.error.split(":")[0]) for b in bad] == [
        ("1", "column born"), ("2", "column born"), ("3", "column price")]
    assert [r["id"] for r in rows] == [4] and json.loads(rows[0]["doc"]) == big


# -- errors ------------------------------------------------------------------------------

def _check_from_workspace(root: Path, source: dict[str, Any]) -> None:
    doc = {"version": 1, "sources": {"src": {"type": "postgres", **source}}}
    (root / "syncline.yaml").write_text(yaml.safe_dump(doc), encoding="utf-8")
    ws = load_workspace(root)
    build_source("src", ws.source("src"), str(root)).check()


@pytest.mark.parametrize(("source", "key"), [
    ({"host": HOST, "user": "nobody_{tag}", "password": "${{env:PG_TEST_PASSWORD}}", "database": "test"},
     "`user:` and `password:`"),
    ({"host": HOST, "user": "postgres", "password": "${{env:PG_TEST_PASSWORD}}", "database": "nodb_{tag}"},
     "`database:`"),
    ({"dsn": "postgresql://nobody_{tag}:{password}@" + HOST + ":5432/test"}, "`dsn:`"),
], ids=["unknown-user", "unknown-database", "dsn-with-password"])
def test_bad_credentials_or_database_name_the_key_and_never_the_password(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, source: dict[str, Any], key: str
) -> None:
    require_postgres()
    tag, password = secrets.token_hex(3), f"pw-{secrets.token_hex(8)}"
    monkeypatch.setenv("PG_TEST_PASSWORD", password)
    filled = {k: v.format(tag=tag, password=password) for k, v in source.items()}
    with pytest.raises(ConfigurationError) as info:
        _check_from_workspace(tmp_path, filled)
    text = str(info.value)
    assert key in text and "does not exist" in text
    assert password not in text and password not in repr(info.value.args)


def test_a_refused_connection_is_transient_and_names_host_and_port(tmp_path: Path) -> None:
    with pytest.raises(TransientError) as info:
        _check_from_workspace(tmp_path, {"host": HOST, "port": 1, "user": "postgres", "database": "test",
                                         "password": "hunter2-secret"})
    assert "`host:` and `port:`" in str(info.value) and "hunter2-secret" not in str(info.value)


@pytest.mark.parametrize(("source", "message"), [
    ({"dsn": "postgresql://postgres@localhost/test", "host": "localhost"}, "both `dsn:`"),
    ({"host": "localhost", "user": "postgres"}, "`database:`"),
    ({"host": "localhost", "user": "postgres", "database": "test", "tables": ["orders"]}, "schema.table"),
    ({"host": "localhost", "user": "postgres", "database": "test", "lookback": "5 minutes"}, "5m"),
    ({"dsn": "postgresql://u:pw-secret@[::1/test"}, "`dsn:`"),
], ids=["dsn-and-host", "no-database", "unqualified-table", "bad-lookback", "malformed-dsn"])
def test_config_mistakes_are_configuration_errors(tmp_path: Path, source: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigurationError, match=message) as info:
        _check_from_workspace(tmp_path, source)
    assert "pw-secret" not in str(info.value)


def test_a_table_dropped_after_discovery_points_at_syncline_discover(schema: str) -> None:
    stream_name = make_items(schema, "dropped", 3)
    src = make_source(schema, tables=[stream_name])
    [stream] = src.discover()
    pg(f"DROP TABLE {stream_name}")
    with pytest.raises(ConfigurationError, match="syncline discover"):
        list(src.read(ReadRequest(stream=stream, mode="full_refresh", primary_key=("id",))))
    with pytest.raises(ConfigurationError, match="not found"):
        src.check()  # a listed table that no longer exists
