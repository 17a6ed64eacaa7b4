"""MySQL/MariaDB source against a real MariaDB: discovery, exact values end to end, cursors, errors."""

from __future__ import annotations

import datetime as dt
import json
import secrets
from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pyarrow as pa
import pymysql
import pytest
import yaml

from syncline.errors import ConfigurationError, SynclineError, TransientError
from syncline.sources.base import SourceContext
from syncline.sources.mysql import read as mysql_module
from syncline.sources.mysql.source import MysqlConfig, MysqlSource
from syncline.stream import BadRecord, Checkpoint, ReadRequest

from services import mariadb_reader, require_mariadb
from syncfixtures import dest_query, failpoints_on, run_sync

UTC = dt.UTC


@dataclass
class Db:
    """The module's scratch database on the test server."""

    name: str
    host: str
    port: int
    user: str
    con: Any

    def run(self, sql: str, params: Any = None) -> list[tuple[Any, ...]]:
        with self.con.cursor() as cur:
            cur.execute(sql, params)
            return list(cur.fetchall())

    def many(self, sql: str, rows: list[tuple[Any, ...]]) -> None:
        with self.con.cursor() as cur:
            cur.executemany(sql, rows)

    def config(self, **extra: Any) -> dict[str, Any]:
        return {"type": "mysql", "host": self.host, "port": self.port, "user": self.user,
                "database": self.name, **extra}

    @property
    def dsn(self) -> str:
        return f"mysql://{self.user}@{self.host}:{self.port}/{self.name}"

    def source(self, **extra: Any) -> MysqlSource:
        return MysqlSource("shop", MysqlConfig.model_validate(self.config(**extra)),
                           SourceContext(root="."))


@pytest.fixture(scope="module")
def db() -> Iterator[Db]:
    url = urlsplit(require_mariadb())
    con = pymysql.connect(host=url.hostname, port=url.port or 3306, user=url.username or "root",
                          password=url.password or "", charset="utf8mb4", autocommit=True)
    name = f"syncline_test_{secrets.token_hex(4)}"
    with con.cursor() as cur:
        cur.execute(f"CREATE DATABASE `{name}` CHARACTER SET utf8mb4")
        cur.execute(f"USE `{name}`")
        cur.execute("SET time_zone = '+00:00'")
    try:
        # sources read as the documented read-only user
        yield Db(name, url.hostname or "127.0.0.1", url.port or 3306, mariadb_reader(name), con)
    finally:
        with con.cursor() as cur:
            cur.execute(f"DROP DATABASE `{name}`")
        con.close()


def write_ws(root: Path, source: dict[str, Any], streams: dict[str, Any], *,
             batch_size: int = 1000, max_attempts: int = 1) -> None:
    doc = {
        "version": 1,
        "sources": {"src": source},
        "destinations": {"wh": {"type": "duckdb", "path": "wh.duckdb"}},
        "connections": {"c": {"source": "src", "destination": "wh", "destination_schema": "dst",
                              "batch_size": batch_size, "max_attempts": max_attempts,
                              "streams": streams}},
    }
    (root / "syncline.yaml").write_text(yaml.safe_dump(doc), encoding="utf-8")


def dest_rows(root: Path, table: str, columns: str) -> list[tuple[Any, ...]]:
    return dest_query(root, f"SELECT {columns} FROM dst.{table} ORDER BY id")


# -- every type --------------------------------------------------------------------------

EVERY_TYPE_DDL = """
CREATE TABLE every_type (
  id INT PRIMARY KEY, flag TINYINT(1), tiny TINYINT, small SMALLINT UNSIGNED, medium MEDIUMINT,
  regular INT, regular_u INT UNSIGNED, big BIGINT, big_u BIGINT UNSIGNED NOT NULL,
  price DECIMAL(12,2), wide DECIMAL(38,10), huge DECIMAL(50,4), ratio DOUBLE, approx FLOAT,
  bit1 BIT(1), bits BIT(12), code CHAR(3), name VARCHAR(100), body TEXT, mood ENUM('happy','sad'),
  tags SET('a','b','c'), born DATE, clock TIME(6), seen DATETIME(6), changed TIMESTAMP(6) NULL,
  yr YEAR, doc JSON, raw BLOB, hash BINARY(4), vb VARBINARY(8), addr INET6, spot GEOMETRY, bit64 BIT(64)
)"""

EVERY_TYPE = {
    "id": "int32", "flag": "int32", "tiny": "int32", "small": "int32", "medium": "int32",
    "regular": "int32", "regular_u": "int64", "big": "int64", "big_u": "decimal(20,0)",
    "price": "decimal(12,2)", "wide": "decimal(38,10)", "huge": "string", "ratio": "float64",
    "approx": "float64", "bit1": "boolean", "bits": "int64", "code": "string", "name": "string",
    "body": "string", "mood": "string", "tags": "string", "born": "date", "clock": "time",
    "seen": "timestamp", "changed": "timestamptz", "yr": "int32", "doc": "json", "raw": "binary",
    "hash": "binary", "vb": "binary", "addr": "string", "spot": "string",
    "bit64": "decimal(20,0)",
}
COLUMNS = ", ".join(EVERY_TYPE)
DOC = '{"k": [1, "ü", null], "emoji": "🎉", "n": 1.25}'

# (row as inserted, row as the destination must hold it); `changed` is written in a +05:00
# session, so the warehouse must hold it five hours earlier, in UTC
ROWS: list[tuple[tuple[Any, ...], tuple[Any, ...]]] = [
    (
        (1, 1, -128, 65535, -8388608, 2147483647, 4294967295, -9223372036854775808,
         18446744073709551615, Decimal("9999999999.99"),
         Decimal("1234567890123456789012345678.0123456789"),
         "12345678901234567890123456789012345678901234.5678", 1 / 3, 1.5, 1, 4095, "abc",
         "Zoë 東京 🎉 𝄞", "line1\nline2 \"q\" 's\\", "happy", "a,c", "2024-02-29",
         "23:59:59.999999", "2024-03-01 12:34:56.123456", "2024-03-01 12:00:00.000001", 2155,
         DOC, b"\x00\xff\x10", b"\x01\x02\x03\x04", b"", "2001:db8::1", "POINT(1 2)", 2**64 - 1),
        (1, 1, -128, 65535, -8388608, 2147483647, 4294967295, -9223372036854775808,
         Decimal("18446744073709551615"), Decimal("9999999999.99"),
         Decimal("1234567890123456789012345678.0123456789"),
         "12345678901234567890123456789012345678901234.5678", 1 / 3, 1.5, True, 4095, "abc",
         "Zoë 東京 🎉 𝄞", "line1\nline2 \"q\" 's\\", "happy", "a,c", dt.date(2024, 2, 29),
         dt.time(23, 59, 59, 999999), dt.datetime(2024, 3, 1, 12, 34, 56, 123456),
         dt.datetime(2024, 3, 1, 7, 0, 0, 1, tzinfo=UTC), 2155, json.loads(DOC),
         b"\x00\xff\x10", b"\x01\x02\x03\x04", b"", "2001:db8::1", "POINT(1 2)",
         Decimal(2**64 - 1)),
    ),
    (
        (2, *[None] * 7, 0, *[None] * 24),
        (2, *[None] * 7, Decimal(0), *[None] * 24),
    ),
    (
        (3, 2, 127, 0, 8388607, -2147483648, 0, 9223372036854775807, 0, Decimal("-0.01"),
         Decimal("-0.0000000001"), "-1.0000", -2.5e-300, -0.25, 0, 0, "", "", "", "sad", "",
         "1000-01-01", "00:00:00", "1000-01-01 00:00:00", "1970-01-01 05:00:01", 1901, "[]",
         b"", b"\x00\x00\x00\x00", b"\xff" * 8, "::", "LINESTRING(0 0,1 1)", 0),
        (3, 2, 127, 0, 8388607, -2147483648, 0, 9223372036854775807, Decimal(0),
         Decimal("-0.01"), Decimal("-0.0000000001"), "-1.0000", -2.5e-300, -0.25, False, 0, "",
         "", "", "sad", "", dt.date(1000, 1, 1), dt.time(0), dt.datetime(1000, 1, 1),
         dt.datetime(1970, 1, 1, 0, 0, 1, tzinfo=UTC), 1901, [], b"", b"\x00\x00\x00\x00",
         b"\xff" * 8, "::", "LINESTRING(0 0,1 1)", Decimal(0)),
    ),
]


@pytest.fixture(scope="module")
def every_type(db: Db) -> str:
    db.run(EVERY_TYPE_DDL)
    db.run("SET time_zone = '+05:00'")
    try:
        marks = ", ".join("ST_GeomFromText(%s)" if c == "spot" else "%s" for c in EVERY_TYPE)
        db.many(f"INSERT INTO every_type ({COLUMNS}) VALUES ({marks})", [r for r, _ in ROWS])
    finally:
        db.run("SET time_zone = '+00:00'")
    return f"{db.name}.every_type"


def test_discovery_maps_every_type_to_its_canonical_type(db: Db, every_type: str) -> None:
    db.run("CREATE TABLE long_hours (id INT PRIMARY KEY, spent TIME, at_day TIME)")
    db.run("INSERT INTO long_hours VALUES (1, '30:15:00', '08:00:00'), (2, '-01:00:00', NULL)")
    db.run("CREATE VIEW cheap AS SELECT id, price FROM every_type WHERE price < 10")
    db.run("CREATE TABLE legacy (alt INT NULL, code VARCHAR(10) NOT NULL, updated_at DATETIME, "
           "touched TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP ON UPDATE CURRENT_TIMESTAMP, "
           "UNIQUE KEY by_alt (alt), UNIQUE KEY by_code (code))")
    streams = {s.name: s for s in db.source().discover()}
    legacy = streams[f"{db.name}.legacy"]
    assert legacy.primary_key == ("code",)  # the unique key whose columns are NOT NULL
    assert "unique key by_code (code) is used as the key" in " ".join(legacy.notes)
    assert legacy.cursor_candidates == ("touched", "updated_at")  # ON UPDATE first
    stream = streams[every_type]
    assert {c.name: str(c.type) for c in stream.columns} == EVERY_TYPE
    assert stream.primary_key == ("id",)
    assert [c.name for c in stream.columns if not c.nullable] == ["id", "big_u"]
    notes = " ".join(stream.notes)
    assert "flag: TINYINT(1) read as an integer" in notes
    assert "huge: decimal(50,4) is beyond decimal(38)" in notes
    assert "addr: type inet6" in notes and "spot: type geometry carried as WKT" in notes
    hours = {c.name: str(c.type) for c in streams[f"{db.name}.long_hours"].columns}
    assert hours == {"id": "int32", "spent": "string", "at_day": "time"}
    assert f"{db.name}.cheap" not in streams  # views only with include_views
    views = {s.name: s for s in db.source(include_views=True, tables=["cheap"]).discover()}
    assert list(views) == [f"{db.name}.cheap"] and views[f"{db.name}.cheap"].primary_key == ()


def test_full_sync_into_duckdb_equals_the_source_row_by_row(
    db: Db, every_type: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    connect = pymysql.connect

    def far_east_server(**kwargs: Any) -> Any:  # a server whose default zone is not UTC
        return connect(**kwargs, init_command="SET time_zone = '+09:00'")

    monkeypatch.setattr(pymysql, "connect", far_east_server)
    write_ws(tmp_path, {"type": "mysql", "dsn": db.dsn, "tables": ["every_type"]},
             {every_type: {"mode": "full_refresh", "write": "replace"}}, batch_size=2)
    result = run_sync(tmp_path)
    assert result.status == "succeeded", result.error
    assert (result.rows_read, result.rows_committed, result.streams[0].expected) == (3, 3, 3)
    got = [
        tuple(json.loads(v) if name == "doc" and v is not None else
              v.astimezone(UTC) if name == "changed" and v is not None else v
              for name, v in zip(EVERY_TYPE, row))
        for row in dest_rows(tmp_path, "every_type", COLUMNS)
    ]
    assert got == [want for _, want in ROWS]


def test_text_time_and_tiny_bool_values_arrive_as_mysql_holds_them(db: Db, tmp_path: Path) -> None:
    db.run("CREATE TABLE quirks (id INT PRIMARY KEY, spent TIME(3), starts TIME(3), ok BOOL, "
           "`we``ird %s` INT)")  # identifiers are quoted, and %-safe for the driver
    db.run("INSERT INTO quirks VALUES (1, '-838:59:59.5', '08:30:00.25', -1, 7), "
           "(2, '30:00:00', '23:59:59.999', 0, 8), (3, NULL, NULL, NULL, NULL)")
    write_ws(tmp_path, db.config(tables=["quirks"]), {f"{db.name}.quirks": {"mode": "full_refresh"}})
    assert run_sync(tmp_path).status == "succeeded"
    assert dest_rows(tmp_path, "quirks", 'id, spent, starts, ok, "we`ird %s"') == [
        (1, "-838:59:59.500", dt.time(8, 30, 0, 250000), -1, 7),  # BOOL is TINYINT(1): -1 stays -1
        (2, "30:00:00.000", dt.time(23, 59, 59, 999000), 0, 8), (3, None, None, None, None)]


def test_zero_dates_are_null_when_nullable_and_quarantined_when_not(db: Db, tmp_path: Path) -> None:
    db.run("SET SESSION sql_mode = ''")
    db.run("CREATE TABLE zeros (id INT PRIMARY KEY, maybe DATE, must DATETIME NOT NULL)")
    db.run("INSERT INTO zeros VALUES (1, '0000-00-00', '2024-01-02 03:04:05'), "
           "(2, '2024-05-06', '0000-00-00 00:00:00'), (3, '2024-00-10', '2024-01-01')")
    db.run("SET SESSION sql_mode = DEFAULT")
    write_ws(tmp_path, db.config(tables=["zeros"]), {f"{db.name}.zeros": {"mode": "full_refresh"}})
    result = run_sync(tmp_path)
    assert result.status == "warning", result.error  # a quarantined row
    assert (result.rows_read, result.rows_committed, result.rows_quarantined) == (3, 2, 1)
    assert dest_rows(tmp_path, "zeros", "id, maybe, must") == [
        (1, None, dt.datetime(2024, 1, 2, 3, 4, 5)), (3, None, dt.datetime(2024, 1, 1))]
    [(record, error)] = dest_query(tmp_path, "SELECT record, error FROM dst._syncline_quarantine")
    assert json.loads(record)["id"] == 2
    assert "column must: zero or partial date '0000-00-00 00:00:00'" in error


# -- incremental -------------------------------------------------------------------------


def make_orders(db: Db, table: str, n: int, *, tie: bool = False) -> None:
    db.run(f"CREATE TABLE {table} (id BIGINT PRIMARY KEY, note VARCHAR(40), amount DECIMAL(10,2), "
           "updated_at DATETIME(6) NOT NULL, KEY (updated_at))")
    db.many(f"INSERT INTO {table} VALUES (%s, %s, %s, %s)", [order(i, tie=tie) for i in range(1, n + 1)])


def order(i: int, version: int = 0, tie: bool = False) -> tuple[Any, ...]:
    stamp = dt.datetime(2026, 1, 1, 0, 0, 0, 1) + dt.timedelta(microseconds=0 if tie else i)
    return (i, f"order {i} v{version} ✓", Decimal(f"{i}.{version:02d}"),
            stamp + dt.timedelta(seconds=version * 1000))


def source_orders(db: Db, table: str) -> list[tuple[Any, ...]]:
    return [(r[0], r[1], r[2], r[3]) for r in db.run(f"SELECT * FROM {table} ORDER BY id")]


def test_incremental_merge_brings_a_row_updated_twice_at_its_latest_version(
    db: Db, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SL_TEST_MYSQL_PASSWORD", "")
    make_orders(db, "orders_inc", 120)
    stream = f"{db.name}.orders_inc"
    write_ws(tmp_path, db.config(tables=["orders_inc"], password="${env:SL_TEST_MYSQL_PASSWORD}"),
             {stream: {"mode": "incremental", "cursor": "updated_at"}}, batch_size=25)
    assert run_sync(tmp_path).rows_committed == 120
    for version in (1, 2):  # updated twice between syncs
        db.run("UPDATE orders_inc SET note = %s, amount = %s, updated_at = %s WHERE id = 7",
               order(7, version)[1:])
    db.many("INSERT INTO orders_inc VALUES (%s, %s, %s, %s)", [order(121, 3), order(122, 3)])
    second = run_sync(tmp_path)
    assert second.status == "succeeded", second.error
    assert second.rows_read == 3  # the updated row and two new ones, nothing older
    assert dest_rows(tmp_path, "orders_inc", "id, note, amount, updated_at") == \
        source_orders(db, "orders_inc")
    assert dest_rows(tmp_path, "orders_inc", "note")[6] == ("order 7 v2 ✓",)
    assert run_sync(tmp_path).rows_read == 0


def test_reconciled_deletes_mark_the_rows_a_cursor_read_cannot_see_go(db: Db, tmp_path: Path) -> None:
    make_orders(db, "orders_gone", 60)
    stream = f"{db.name}.orders_gone"
    write_ws(tmp_path, db.config(tables=["orders_gone"]), {stream: {
        "mode": "incremental", "cursor": "updated_at", "deletes": "reconcile", "reconcile_every": 1}},
        batch_size=25)
    assert run_sync(tmp_path).status == "succeeded"
    db.run("DELETE FROM orders_gone WHERE id IN (5, 41)")
    run = run_sync(tmp_path)
    assert run.status == "succeeded", run.error
    assert dest_query(tmp_path, "SELECT id, note FROM dst.orders_gone WHERE _syncline_deleted "
                                "ORDER BY id") == [(5, "order 5 v0 ✓"), (41, "order 41 v0 ✓")]


def test_rows_sharing_a_cursor_value_across_a_batch_boundary_all_arrive(
    db: Db, tmp_path: Path
) -> None:
    make_orders(db, "orders_tie", 50, tie=True)
    stream = f"{db.name}.orders_tie"
    write_ws(tmp_path, db.config(tables=["orders_tie"]),
             {stream: {"mode": "incremental", "write": "append", "cursor": "updated_at"}}, batch_size=7)
    assert run_sync(tmp_path).rows_committed == 50
    db.many("INSERT INTO orders_tie VALUES (%s, %s, %s, %s)",
            [order(i, tie=True) for i in range(51, 56)])  # late rows at the same cursor value
    assert run_sync(tmp_path).rows_committed == 5
    assert dest_query(tmp_path, "SELECT count(*), count(DISTINCT id) FROM dst.orders_tie") == [(55, 55)]


def test_cursor_keeps_microseconds_so_nothing_is_read_twice_or_missed(db: Db, tmp_path: Path) -> None:
    make_orders(db, "orders_us", 10)  # updated_at values one microsecond apart
    stream = f"{db.name}.orders_us"
    write_ws(tmp_path, db.config(tables=["orders_us"]),
             {stream: {"mode": "incremental", "write": "append", "cursor": "updated_at"}}, batch_size=4)
    assert run_sync(tmp_path).rows_committed == 10
    [(state,)] = dest_query(tmp_path, "SELECT state FROM dst._syncline_state")
    assert json.loads(state)["source"]["cursor"] == "2026-01-01 00:00:00.000011"
    assert run_sync(tmp_path).rows_read == 0
    db.run("INSERT INTO orders_us VALUES (11, 'next', 1, '2026-01-01 00:00:00.000012')")
    assert run_sync(tmp_path).rows_read == 1


def test_a_keyless_table_with_a_declared_unique_column_resumes_after_a_failure_with_each_row_once(
    db: Db, tmp_path: Path
) -> None:
    db.run("CREATE TABLE events (id INT, kind VARCHAR(10), at DATETIME(6) NOT NULL)")
    rows = [(i, "k", dt.datetime(2026, 1, 1) + dt.timedelta(seconds=i // 6)) for i in range(0, 61)]
    db.many("INSERT INTO events VALUES (%s, %s, %s)", rows)
    stream = f"{db.name}.events"
    write_ws(tmp_path, db.config(tables=["events"]),
             {stream: {"mode": "incremental", "write": "append", "cursor": "at", "primary_key": ["id"]}},
             batch_size=4)
    with failpoints_on("after_staging:9=raise"):
        failed = run_sync(tmp_path)
    assert failed.status == "failed"
    [(partial,)] = dest_query(tmp_path, "SELECT count(*) FROM dst.events")
    assert 0 < partial < 61
    resumed = run_sync(tmp_path)
    assert resumed.status == "succeeded", resumed.error
    assert dest_query(tmp_path, "SELECT count(*), count(DISTINCT id) FROM dst.events") == [(61, 61)]


def test_failed_full_refresh_resumes_from_its_key_position(db: Db, tmp_path: Path) -> None:
    make_orders(db, "orders_full", 200)
    stream = f"{db.name}.orders_full"
    write_ws(tmp_path, db.config(tables=["orders_full"]),
             {stream: {"mode": "full_refresh", "write": "replace"}}, batch_size=20)
    with failpoints_on("after_staging:3=raise"):
        failed = run_sync(tmp_path)
    assert failed.status == "failed" and failed.error is not None
    resumed = run_sync(tmp_path)
    assert resumed.status == "succeeded", resumed.error
    assert resumed.rows_read == 160  # two batches were committed before the failure
    assert dest_rows(tmp_path, "orders_full", "id, note, amount, updated_at") == \
        source_orders(db, "orders_full")


def test_a_failure_right_after_a_batch_is_read_is_transient_and_resumes_after_the_last_commit(
    db: Db, tmp_path: Path
) -> None:
    make_orders(db, "orders_read_fail", 200)
    stream = f"{db.name}.orders_read_fail"
    write_ws(tmp_path, db.config(tables=["orders_read_fail"]),
             {stream: {"mode": "full_refresh", "write": "replace"}}, batch_size=20)
    with failpoints_on("source_read:3=raise"):  # the third batch, fetched but not yet handed on
        failed = run_sync(tmp_path)
    assert failed.status == "failed"
    assert isinstance(failed.error, TransientError) and "failpoint source_read" in str(failed.error)
    resumed = run_sync(tmp_path)
    assert resumed.status == "succeeded", resumed.error
    assert resumed.rows_read == 160  # the two batches read before the failure were committed
    assert dest_rows(tmp_path, "orders_read_fail", "id, note, amount, updated_at") == \
        source_orders(db, "orders_read_fail")


def test_a_connection_killed_mid_stream_is_retried_and_resumed(
    db: Db, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    make_orders(db, "orders_kill", 20_000)
    stream = f"{db.name}.orders_kill"
    write_ws(tmp_path, db.config(tables=["orders_kill"]),
             {stream: {"mode": "full_refresh", "write": "replace"}}, batch_size=1000, max_attempts=2)
    real, calls = mysql_module.text_to_batch, []

    def kill_the_reader_once(*args: Any) -> Any:
        calls.append(1)
        if len(calls) == 2:  # the server drops the streaming connection after one batch
            for (pid,) in db.run("SELECT ID FROM information_schema.PROCESSLIST WHERE DB = %s "
                                 "AND ID <> CONNECTION_ID()", [db.name]):
                db.run(f"KILL CONNECTION {int(pid)}")
        return real(*args)

    monkeypatch.setattr(mysql_module, "text_to_batch", kill_the_reader_once)
    result = run_sync(tmp_path)
    assert result.status == "succeeded", result.error
    assert result.attempts == 2
    assert dest_rows(tmp_path, "orders_kill", "id, note, amount, updated_at") == \
        source_orders(db, "orders_kill")


@pytest.mark.parametrize(("ddl", "keys"), [
    ("BINARY(16)", [bytes([i]) * 16 for i in (1, 2, 3, 200, 255)]),
    ("DECIMAL(30,10)", [Decimal(f"12345678901234567890.123456789{d}") for d in range(1, 6)]),
    ("DATETIME(6)", [dt.datetime(2026, 1, 1, 0, 0, 0, us) for us in (1, 2, 3, 999998, 999999)]),
    ("BIGINT UNSIGNED", [2**64 - 5 + i for i in range(5)]),
    ("VARCHAR(20) COLLATE utf8mb4_bin", ["A", "B", "a", "b", "é"]),
], ids=["binary", "decimal-beyond-double", "datetime-micro", "bigint-unsigned", "varchar-bin"])
def test_full_refresh_resumes_exactly_after_each_key_type(db: Db, ddl: str, keys: list[Any]) -> None:
    table = f"keyed_{secrets.token_hex(3)}"
    db.run(f"CREATE TABLE {table} (k {ddl} PRIMARY KEY, n INT)")
    db.many(f"INSERT INTO {table} VALUES (%s, %s)", [(k, i) for i, k in enumerate(keys)])
    source = db.source(tables=[table])
    [stream] = source.discover()
    seen: list[int] = []
    checkpoint = None
    for _ in range(len(keys) + 1):  # one row per read, resuming from the stored checkpoint
        items = source.read(ReadRequest(stream=stream, mode="full_refresh", primary_key=("k",),
                                        checkpoint=json.loads(json.dumps(checkpoint)), batch_size=1))
        batch, mark = next(items, None), next(items, None)
        items.close()  # stop mid-stream, as a crash would
        if batch is None:
            break
        assert isinstance(batch, pa.RecordBatch) and isinstance(mark, Checkpoint)
        seen += batch.column("n").to_pylist()
        checkpoint = mark.value
    assert seen == list(range(len(keys)))


# -- errors ------------------------------------------------------------------------------


@pytest.mark.parametrize(("extra", "error", "words"), [
    ({"password": "s3cret-Pa55"}, ConfigurationError, ["Access denied", "`password`"]),
    ({"database": "no_such_db_xyz"}, ConfigurationError, ["no_such_db_xyz", "`database`"]),
    ({"port": 1}, TransientError, ["cannot connect", "`host`/`port`"]),
], ids=["bad-password", "unknown-database", "connection-refused"])
def test_check_names_the_key_to_fix_and_never_the_password(
    db: Db, extra: dict[str, Any], error: type[SynclineError], words: list[str]
) -> None:
    with pytest.raises(error) as info:
        db.source(**extra).check()
    assert all(w in str(info.value) for w in words), str(info.value)
    assert "s3cret-Pa55" not in str(info.value)


def test_bad_password_in_dsn_is_a_configuration_error_without_the_password(db: Db) -> None:
    cfg = MysqlConfig.model_validate({"type": "mysql", "dsn": db.dsn.replace("@", ":p%40ss-W0rd@")})
    assert "p@ss-W0rd" not in repr(cfg)
    with pytest.raises(ConfigurationError) as info:
        MysqlSource("shop", cfg, SourceContext(root=".")).check()
    assert "Access denied" in str(info.value)
    assert "p@ss-W0rd" not in str(info.value) and "p%40ss" not in str(info.value)


def test_a_table_dropped_after_discovery_asks_for_syncline_discover(db: Db) -> None:
    db.run("CREATE TABLE doomed (id INT PRIMARY KEY)")
    source = db.source(tables=["doomed"])
    [stream] = source.discover()
    db.run("DROP TABLE doomed")
    with pytest.raises(ConfigurationError, match="syncline discover"):
        list(source.read(ReadRequest(stream=stream, mode="full_refresh", primary_key=("id",))))


def test_unknown_table_in_config_lists_what_exists(db: Db, every_type: str) -> None:
    with pytest.raises(ConfigurationError, match="not found") as info:
        db.source(tables=["nope"]).check()
    assert "every_type" in str(info.value)


def test_a_time_past_midnight_written_after_discovery_is_quarantined_not_wrapped(db: Db) -> None:
    db.run("CREATE TABLE shifts (id INT PRIMARY KEY, length TIME)")
    db.run("INSERT INTO shifts VALUES (1, '08:00:00')")
    source = db.source(tables=["shifts"])
    [stream] = source.discover()
    db.run("INSERT INTO shifts VALUES (2, '30:00:00')")
    items = list(source.read(ReadRequest(stream=stream, mode="full_refresh", primary_key=("id",))))
    rows = [r for i in items if isinstance(i, pa.RecordBatch) for r in i.to_pylist()]
    assert rows == [{"id": 1, "length": dt.time(8)}]
    [bad] = [i for i in items if isinstance(i, BadRecord)]
    assert bad.record["id"] == 2 and "column length: TIME 30:00:00 is not a time of day" in bad.error
