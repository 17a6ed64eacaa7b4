"""MariaDB cdc against a private server with a ROW binlog: snapshot, changes, types, crashes, purges."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import os
import secrets
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import pyarrow as pa
import pymysql
import pytest
import yaml

from syncline.engine.plan import CDC_CURSOR
from syncline.errors import ConfigurationError, SourceError
from syncline.schema import INT64, Column
from syncline.sources.base import SourceContext
from syncline.sources.mysql.binlog_values import _time_text
from syncline.sources.mysql.cdc import (
    CdcReader,
    binlog_lsn,
    default_server_id,
    statement_on,
)
from syncline.sources.mysql.source import MysqlConfig, MysqlSource
from syncline.stream import Checkpoint, ReadRequest

from syncfixtures import dest_query, run_sync

MARIADBD, INSTALL_DB = Path("/usr/sbin/mariadbd"), Path("/usr/bin/mariadb-install-db")
USER, PASSWORD = "syncline", "cdc-Pa55"
UTC = dt.UTC


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Server:
    """A throwaway MariaDB; tests change it as root over its socket."""

    sock: str
    port: int

    def sql(self, statement: str, params: Any = None, *, db: str | None = None,
            zone: str = "+00:00", mode: str | None = None) -> list[tuple[Any, ...]]:
        con = pymysql.connect(unix_socket=self.sock, user="root", database=db, autocommit=True,
                              charset="utf8mb4")
        try:
            with con.cursor() as cur:
                cur.execute(f"SET time_zone = '{zone}'")
                if mode is not None:
                    cur.execute(f"SET sql_mode = '{mode}'")
                cur.execute(statement, params)
                return list(cur.fetchall())
        finally:
            con.close()

    def transaction(self, statements: list[str], *, db: str) -> None:
        con = pymysql.connect(unix_socket=self.sock, user="root", database=db, charset="utf8mb4")
        try:
            with con.cursor() as cur:
                con.begin()
                for statement in statements:
                    cur.execute(statement)
            con.commit()
        finally:
            con.close()


@pytest.fixture(scope="session")
def server() -> Iterator[Server]:
    """A MariaDB 10.11 with binlog_format=ROW, row image and row metadata FULL, on loopback."""
    if not (MARIADBD.exists() and INSTALL_DB.exists()):
        reason = f"MariaDB binaries not found ({MARIADBD}, {INSTALL_DB})"
        if os.environ.get("SYNCLINE_REQUIRE_SERVICES") == "1":
            pytest.fail(f"{reason}; SYNCLINE_REQUIRE_SERVICES=1 requires them", pytrace=False)
        pytest.skip(reason)
    root = Path(tempfile.mkdtemp(prefix="syncline_binlog_"))
    data, sock, port = root / "data", str(root / "mysqld.sock"), _free_port()
    as_root = ["--user=root"] if os.geteuid() == 0 else []
    proc = None
    try:
        subprocess.run([str(INSTALL_DB), "--no-defaults", f"--datadir={data}", *as_root,
                        "--auth-root-authentication-method=normal", "--skip-test-db"],
                       check=True, capture_output=True)
        proc = subprocess.Popen(
            [str(MARIADBD), "--no-defaults", f"--datadir={data}", f"--socket={sock}",
             f"--port={port}", "--bind-address=127.0.0.1", "--skip-name-resolve", *as_root,
             f"--log-bin={data / 'binlog'}", "--binlog-format=ROW", "--binlog-row-image=FULL",
             "--binlog-row-metadata=FULL", "--server-id=1", f"--log-error={root / 'error.log'}",
             f"--pid-file={root / 'mysqld.pid'}", "--innodb-buffer-pool-size=32M"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 30
        while True:
            try:
                pymysql.connect(unix_socket=sock, user="root").close()
                break
            except pymysql.MySQLError:
                log = (root / "error.log").read_text() if (root / "error.log").exists() else ""
                if proc.poll() is not None or time.monotonic() > deadline:
                    pytest.fail(f"MariaDB did not start:\n{log[-2000:]}", pytrace=False)
                time.sleep(0.1)
        srv = Server(sock, port)
        srv.sql(f"CREATE USER '{USER}'@'%' IDENTIFIED BY '{PASSWORD}'")
        srv.sql(f"GRANT REPLICATION SLAVE, REPLICATION CLIENT, SELECT ON *.* TO '{USER}'@'%'")
        yield srv
    finally:
        if proc is not None:
            proc.terminate()
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture
def db(server: Server) -> Iterator[str]:
    name = f"cdc_{secrets.token_hex(4)}"
    server.sql(f"CREATE DATABASE {name} CHARACTER SET utf8mb4")
    yield name
    server.sql(f"DROP DATABASE {name}")


def source_config(server: Server, db: str, **extra: Any) -> dict[str, Any]:
    return {"type": "mysql", "host": "127.0.0.1", "port": server.port, "user": USER,
            "password": PASSWORD, "database": db, **extra}


def write_ws(root: Path, server: Server, db: str, tables: list[str], *, mode: str = "cdc",
             write: str | None = None, **extra: Any) -> Path:
    root.mkdir(exist_ok=True)
    streams = {f"{db}.{t}": {"mode": mode} if mode == "cdc" else {"mode": mode, "write": "replace"}
               for t in tables}
    if write:
        streams = {name: {**cfg, "write": write} for name, cfg in streams.items()}
    doc = {
        "version": 1,
        "sources": {"src": source_config(server, db, tables=tables, **extra)},
        "destinations": {"wh": {"type": "duckdb", "path": "wh.duckdb"}},
        "connections": {"c": {"source": "src", "destination": "wh", "destination_schema": "dst",
                              "batch_size": 3, "max_attempts": 1, "streams": streams}},
    }
    (root / "syncline.yaml").write_text(yaml.safe_dump(doc), encoding="utf-8")
    return root


def state(root: Path, stream: str) -> dict[str, Any]:
    [(text,)] = dest_query(root, f"SELECT state FROM dst._syncline_state WHERE stream = '{stream}'")
    source: dict[str, Any] = json.loads(text)["source"]
    return source


def make_items(server: Server, db: str, table: str = "items", rows: int = 5) -> None:
    server.sql(f"CREATE TABLE {table} (id INT PRIMARY KEY, name VARCHAR(40) NOT NULL, "
               "qty DECIMAL(10,2))", db=db)
    if rows:
        server.sql(f"INSERT INTO {table} VALUES " + ", ".join(
            f"({i}, 'n{i}', {i}.50)" for i in range(1, rows + 1)), db=db)


def assert_mirrors(root: Path, server: Server, db: str, table: str, deleted: set[int],
                   swept: frozenset[int] = frozenset()) -> None:
    """Every live source row once with its latest values; every deleted id a key-only tombstone,
    or (``swept``) a row a full refresh found missing, soft-deleted with its last values."""
    live = server.sql(f"SELECT id, name, qty FROM {table} ORDER BY id", db=db)
    got = dest_query(root, f"SELECT id, name, qty, _syncline_deleted FROM dst.{table} ORDER BY id")
    ids = [r[0] for r in got]
    assert len(ids) == len(set(ids)), f"duplicates: {got}"
    assert [(i, n, q) for i, n, q, d in got if not d] == [tuple(r) for r in live]
    assert {r[0] for r in got if r[3]} == deleted | swept
    assert all(n is None and q is None for i, n, q, d in got if d and i not in swept)  # key only
    assert all(n is not None for i, n, _, d in got if d and i in swept)


def sync_killed_at(root: Path, failpoint: str) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SYNCLINE_")}
    env["SYNCLINE_FAILPOINTS"] = failpoint
    proc = subprocess.run([sys.executable, "-m", "syncline", "sync", "c", "-w", str(root)], env=env,
                          capture_output=True, timeout=120)
    assert proc.returncode == -9, proc.stderr.decode()[-2000:]


# -- every type ------------------------------------------------------------------------

EVERY_TYPE_DDL = """
CREATE TABLE every_type (
  id INT PRIMARY KEY, flag TINYINT(1), tiny TINYINT, small SMALLINT UNSIGNED, regular INT,
  regular_u INT UNSIGNED, big BIGINT, big_u BIGINT UNSIGNED, price DECIMAL(12,2),
  wide DECIMAL(38,10), huge DECIMAL(50,4), ratio DOUBLE, approx FLOAT, bit1 BIT(1), bits BIT(12),
  bit64 BIT(64), code CHAR(3), name VARCHAR(100), body TEXT, mood ENUM('happy','sad'),
  tags SET('a','b','c'), born DATE, clock TIME(6), spent TIME(3), seen DATETIME(6),
  changed TIMESTAMP(6) NULL, yr YEAR, doc JSON, raw BLOB, hash BINARY(4), vb VARBINARY(8),
  addr INET6, spot GEOMETRY, must DATE NOT NULL
)"""
COLUMNS = ["id", "flag", "tiny", "small", "regular", "regular_u", "big", "big_u", "price", "wide",
           "huge", "ratio", "approx", "bit1", "bits", "bit64", "code", "name", "body", "mood",
           "tags", "born", "clock", "spent", "seen", "changed", "yr", "doc", "raw", "hash", "vb",
           "addr", "spot", "must"]
DOC = '{"k": [1, "ü", null], "emoji": "🎉", "n": 1.25}'
FULL = (1, 2, -128, 65535, 2147483647, 4294967295, -9223372036854775808, 2**64 - 1,
        Decimal("9999999999.99"), Decimal("1234567890123456789012345678.0123456789"),
        "12345678901234567890123456789012345678901234.5678", 1 / 3, 0.1, 1, 4095, 2**64 - 1,
        "abc", "Zoë 東京 🎉 𝄞", "line1\nline2 \"q\" 's\\", "happy", "a,c", "2024-02-29",
        "23:59:59.999999", "-838:59:59.5", "2024-03-01 12:34:56.123456",
        "2024-03-01 12:00:00.000001", 2155, DOC, b"\x00\xff\x10", b"\x01\x02\x00\x00", b"",
        "::ffff:192.0.2.1", "POINT(1 2)", "2024-01-01")
# FULL as the warehouse must hold it; `changed` was written at +05:00, so it is 5 h earlier in UTC
FULL_LANDED = (1, 2, -128, 65535, 2147483647, 4294967295, -9223372036854775808,
               Decimal(2**64 - 1), Decimal("9999999999.99"),
               Decimal("1234567890123456789012345678.0123456789"),
               "12345678901234567890123456789012345678901234.5678", 1 / 3, 0.1, True, 4095,
               Decimal(2**64 - 1), "abc", "Zoë 東京 🎉 𝄞", "line1\nline2 \"q\" 's\\", "happy", "a,c",
               dt.date(2024, 2, 29), dt.time(23, 59, 59, 999999), "-838:59:59.500",
               dt.datetime(2024, 3, 1, 12, 34, 56, 123456),
               dt.datetime(2024, 3, 1, 7, 0, 0, 1, tzinfo=UTC), 2155, json.loads(DOC),
               b"\x00\xff\x10", b"\x01\x02\x00\x00", b"", "::ffff:192.0.2.1", "POINT(1 2)",
               dt.date(2024, 1, 1))
NULLS = (2, *[None] * 32, "2000-01-01")
EDGES = (3, 0, 127, 0, -2147483648, 0, 9223372036854775807, 0, Decimal("-0.01"),
         Decimal("-0.0000000001"), "-1.0000", -2.5e-300, -0.25, 0, 0, 0, "", "", "", "sad", "",
         "1000-01-01", "00:00:00", "30:00:00", "1000-01-01 00:00:00", "1970-01-01 05:00:01", 1901,
         "[]", b"", b"\x00\x00\x00\x00", b"\xff" * 8, "::", "LINESTRING(0 0,1 1)", "9999-12-31")
# zero dates (sql_mode ''): NULL where nullable; in the NOT NULL `must` the row is quarantined
ZEROS = (14, 5, *[None] * 17, "", "", "0000-00-00", None, None, "0000-00-00 00:00:00",
         "0000-00-00 00:00:00", 0, None, None, None, None, None, None, "2000-01-01")


def insert_every_type(server: Server, db: str, rows: list[tuple[Any, ...]], mode: str | None = None
                      ) -> None:
    marks = ", ".join("ST_GeomFromText(%s)" if c == "spot" else "%s" for c in COLUMNS)
    for row in rows:
        server.sql(f"INSERT INTO every_type VALUES ({marks})", row, db=db, zone="+05:00", mode=mode)


def landed(root: Path, where: str = "") -> list[tuple[Any, ...]]:
    rows = dest_query(root, f"SELECT {', '.join(COLUMNS)} FROM dst.every_type {where} ORDER BY id")
    return [tuple(json.loads(v) if c == "doc" and v is not None else
                  v.astimezone(UTC) if c == "changed" and v is not None else v
                  for c, v in zip(COLUMNS, row)) for row in rows]


def test_every_type_arrives_through_the_binlog_exactly_as_the_snapshot_lands_it(
    server: Server, db: str, tmp_path: Path
) -> None:
    server.sql(EVERY_TYPE_DDL, db=db)
    insert_every_type(server, db, [FULL, NULLS, EDGES])
    cdc = write_ws(tmp_path / "cdc", server, db, ["every_type"])
    first = run_sync(cdc)
    assert first.status == "succeeded", first.error
    assert state(cdc, f"{db}.every_type")["phase"] == "stream"
    # every change below arrives through the binlog
    insert_every_type(server, db, [(i + 10, *row[1:]) for i, row in enumerate([FULL, NULLS, EDGES], 1)])
    insert_every_type(server, db, [ZEROS, (15, *ZEROS[1:-1], "0000-00-00")], mode="")
    assignments = ", ".join(f"{c} = ST_GeomFromText(%s)" if c == "spot" else f"{c} = %s"
                            for c in COLUMNS[1:])
    server.sql(f"UPDATE every_type SET {assignments} WHERE id = 2", FULL[1:], db=db, zone="+05:00")
    server.sql(f"UPDATE every_type SET {assignments} WHERE id = 13", NULLS[1:], db=db)
    server.sql("UPDATE every_type SET flag = 7 WHERE id = 1", db=db)
    server.sql("DELETE FROM every_type WHERE id = 3", db=db)
    second = run_sync(cdc)
    assert second.status == "warning", second.error  # a quarantined row warns
    assert (second.rows_read, second.rows_quarantined) == (9, 1)

    snapshot = write_ws(tmp_path / "snapshot", server, db, ["every_type"], mode="full_refresh")
    reference = run_sync(snapshot)
    assert reference.status == "warning", reference.error  # the same row quarantined
    got = landed(cdc, "WHERE NOT _syncline_deleted")
    assert got == landed(snapshot)  # row by row, column by column
    assert [r[0] for r in got] == [1, 2, 11, 12, 13, 14]
    assert got[2] == (11, *FULL_LANDED[1:]) and got[1] == (2, *FULL_LANDED[1:])
    assert got[4] == (13, *[None] * 32, dt.date(2000, 1, 1))
    zeros = dict(zip(COLUMNS, got[5]))
    assert (zeros["born"], zeros["seen"], zeros["changed"], zeros["yr"], zeros["tags"]) == \
        (None, None, None, 0, "")
    assert dest_query(cdc, "SELECT id, name, must FROM dst.every_type WHERE _syncline_deleted") == \
        [(3, None, None)]
    for root in (cdc, snapshot):  # the NOT NULL zero date is quarantined by both paths
        [(record, error)] = dest_query(root, "SELECT record, error FROM dst._syncline_quarantine")
        assert json.loads(record)["id"] == 15 and "column must: zero or partial date" in error


# -- changes -----------------------------------------------------------------------------


def test_snapshot_then_inserts_updates_deletes_and_key_changes(server: Server, db: str,
                                                               tmp_path: Path) -> None:
    make_items(server, db)
    stream = f"{db}.items"
    root = write_ws(tmp_path, server, db, ["items"])
    first = run_sync(root)
    assert first.status == "succeeded", first.error
    assert first.rows_committed == 5
    snap = state(root, stream)
    assert snap["phase"] == "stream"
    assert dest_query(root, "SELECT DISTINCT _syncline_lsn FROM dst.items") == \
        [(binlog_lsn(snap["file"], snap["pos"]),)]
    server.sql("INSERT INTO items VALUES (6, 'six', 6), (7, 'seven', NULL)", db=db)
    server.sql("UPDATE items SET name = 'first' WHERE id = 2", db=db)
    server.sql("UPDATE items SET name = 'second', qty = NULL WHERE id = 2", db=db)  # twice
    server.sql("DELETE FROM items WHERE id IN (3, 7)", db=db)
    server.sql("UPDATE items SET id = 10 WHERE id = 4", db=db)  # a moved key leaves a tombstone
    server.sql("INSERT INTO items VALUES (20, 'a', 1), (21, 'b', 2), (22, 'c', 3)", db=db)
    # one row event: 22 -> 23, 21 -> 22, 20 -> 21; each key's last image must win
    server.sql("UPDATE items SET id = id + 1 WHERE id >= 20 ORDER BY id DESC", db=db)
    second = run_sync(root)
    assert second.status == "succeeded", second.error
    assert_mirrors(root, server, db, "items", deleted={3, 4, 7, 20})
    assert dest_query(root, "SELECT name, qty FROM dst.items WHERE id = 2") == [("second", None)]
    cp = state(root, stream)
    assert cp["lag_bytes"] > 0 and binlog_lsn(cp["file"], cp["pos"]) > binlog_lsn(snap["file"],
                                                                                   snap["pos"])
    third = run_sync(root)  # nothing is read twice
    assert third.status == "succeeded" and third.rows_read == 0
    assert state(root, stream)["lag_bytes"] == 0


def test_a_transaction_is_never_split_by_a_checkpoint(server: Server, db: str) -> None:
    make_items(server, db, rows=0)
    source = MysqlSource("src", MysqlConfig.model_validate(source_config(server, db)),
                         SourceContext(root="."))
    [table] = source.discover()
    stream = dataclasses.replace(table, columns=(*table.columns, Column(CDC_CURSOR, INT64)))
    request = ReadRequest(stream=stream, mode="cdc", primary_key=("id",), batch_size=3)
    [mark] = [i for i in source.read(request) if isinstance(i, Checkpoint)]  # an empty snapshot
    server.sql("INSERT INTO items VALUES (1, 'a', 1)", db=db)
    # one transaction of five row events, 30 rows: more than 4 batches are flushed before COMMIT
    server.transaction([f"INSERT INTO items SELECT seq, 'bulk', 1 FROM seq_{n}_to_{n + 5}"
                        for n in range(100, 130, 6)], db=db)
    server.sql("UPDATE items SET id = id + 1 WHERE id >= 100 ORDER BY id DESC", db=db)
    server.sql("INSERT INTO items VALUES (2, 'b', 1), (3, 'c', 1), (4, 'd', 1)", db=db)
    segments: list[list[int]] = [[]]
    positions: list[int] = []
    for item in source.read(ReadRequest(stream=stream, mode="cdc", primary_key=("id",),
                                        checkpoint=mark.value, batch_size=3)):
        if isinstance(item, pa.RecordBatch):
            segments[-1] += item.column("id").to_pylist()
            positions += item.column(CDC_CURSOR).to_pylist()
        elif isinstance(item, Checkpoint):
            segments.append([])
    bulk = list(range(100, 130))
    shifted = [x for i in reversed(bulk) for x in (i, i + 1)]  # a tombstone, then the moved row
    assert [s for s in segments if s] == [[1, *bulk], shifted, [2, 3, 4]]
    assert positions == sorted(set(positions))  # every change has its own, growing position


def test_one_transaction_over_two_tables_splits_by_stream(server: Server, db: str,
                                                          tmp_path: Path) -> None:
    make_items(server, db, "a", rows=2)
    make_items(server, db, "b", rows=2)
    root = write_ws(tmp_path, server, db, ["a", "b"])
    assert run_sync(root).status == "succeeded"
    server.transaction(["INSERT INTO a VALUES (3, 'a3', 1)", "UPDATE b SET name = 'b1' WHERE id = 1",
                        "DELETE FROM b WHERE id = 2"], db=db)
    result = run_sync(root)
    assert result.status == "succeeded", result.error
    assert {s.stream: s.rows_read for s in result.streams} == {f"{db}.a": 1, f"{db}.b": 2}
    assert_mirrors(root, server, db, "a", deleted=set())
    assert_mirrors(root, server, db, "b", deleted={2})


# -- crashes -----------------------------------------------------------------------------


def test_kill_between_commit_and_next_run_loses_and_duplicates_nothing(
    server: Server, db: str, tmp_path: Path
) -> None:
    make_items(server, db)
    stream = f"{db}.items"
    root = write_ws(tmp_path, server, db, ["items"])
    assert run_sync(root).status == "succeeded"
    before = state(root, stream)
    server.sql("UPDATE items SET name = CONCAT('x', id) WHERE id <= 2", db=db)
    server.sql("DELETE FROM items WHERE id = 5", db=db)
    for i in range(20, 28):  # one transaction each: several checkpoints
        server.sql(f"INSERT INTO items VALUES ({i}, 'm', 1)", db=db)
    sync_killed_at(root, "after_commit:1=kill")
    killed = state(root, stream)
    assert binlog_lsn(killed["file"], killed["pos"]) > binlog_lsn(before["file"], before["pos"])
    [(landed_rows,)] = dest_query(root, "SELECT count(*) FROM dst.items")
    assert landed_rows < 13  # the kill came before the last change was committed
    server.sql("UPDATE items SET name = 'after' WHERE id = 20", db=db)
    rerun = run_sync(root)
    assert rerun.status == "succeeded", rerun.error
    assert_mirrors(root, server, db, "items", deleted={5})


def test_kill_during_the_initial_snapshot_resumes_without_loss(server: Server, db: str,
                                                               tmp_path: Path) -> None:
    make_items(server, db, rows=30)
    stream = f"{db}.items"
    root = write_ws(tmp_path, server, db, ["items"])
    sync_killed_at(root, "after_commit:3=kill")
    cp = state(root, stream)
    assert cp["phase"] == "snapshot" and cp["after"] == [9]
    server.sql("UPDATE items SET name = 'early' WHERE id = 2", db=db)  # already copied
    server.sql("UPDATE items SET name = 'late' WHERE id = 20", db=db)  # not copied yet
    server.sql("DELETE FROM items WHERE id IN (1, 25)", db=db)
    server.sql("INSERT INTO items VALUES (31, 'new', 3)", db=db)
    resumed = run_sync(root)  # the rest of the snapshot, still at the first one's position
    assert resumed.status == "succeeded", resumed.error
    assert (resumed.rows_read, state(root, stream)["phase"]) == (21, "stream")  # 10-31 but 25
    assert state(root, stream)["pos"] == cp["pos"]
    changes = run_sync(root)  # every change since that position, replayed
    assert changes.status == "succeeded", changes.error
    # 25 was deleted before it was copied: the replayed delete still leaves its tombstone
    assert_mirrors(root, server, db, "items", deleted={1, 25})
    assert dest_query(root, "SELECT name FROM dst.items WHERE id IN (2, 20) ORDER BY id") == \
        [("early",), ("late",)]


# -- failures that need the user -------------------------------------------------------


def purge_binlogs_before_now(server: Server, gone: str) -> None:
    """Rotate and purge every older binlog; the server keeps one still needed for crash
    recovery until InnoDB has checkpointed it, so retry until ``gone`` is really gone."""
    server.sql("FLUSH BINARY LOGS")
    deadline = time.monotonic() + 20
    while True:
        [(current, *_)] = server.sql("SHOW MASTER STATUS")
        server.sql(f"PURGE BINARY LOGS TO '{current}'")
        if gone not in {r[0] for r in server.sql("SHOW BINARY LOGS")}:
            return
        assert time.monotonic() < deadline, f"{gone} was not purged"
        time.sleep(0.2)


def test_purged_binlog_fails_loudly_and_full_refresh_recovers(server: Server, db: str,
                                                             tmp_path: Path) -> None:
    make_items(server, db)
    stream = f"{db}.items"
    root = write_ws(tmp_path, server, db, ["items"])
    assert run_sync(root).status == "succeeded"
    server.sql("FLUSH BINARY LOGS")
    server.sql("DELETE FROM items WHERE id = 1", db=db)
    purge_binlogs_before_now(server, state(root, stream)["file"])
    failed = run_sync(root)
    assert failed.status == "failed"
    assert isinstance(failed.error, ConfigurationError)
    assert f"binlog {state(root, stream)['file']}" in failed.error.message
    assert "purged" in failed.error.message
    assert f"syncline sync <connection> --full-refresh --stream {stream}" in (failed.error.fix or "")
    recovered = run_sync(root, full_refresh=True, streams=[stream])
    assert recovered.status == "succeeded", recovered.error
    server.sql("UPDATE items SET name = 'later' WHERE id = 2", db=db)
    again = run_sync(root)
    assert again.status == "succeeded", again.error
    # rebuilt from the snapshot under merge: row 1, deleted meanwhile, is kept soft-deleted
    assert_mirrors(root, server, db, "items", deleted=set(), swept=frozenset({1}))


def test_a_purge_racing_the_check_still_fails_with_the_resnapshot_fix(
    server: Server, db: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    make_items(server, db)
    root = write_ws(tmp_path, server, db, ["items"])
    assert run_sync(root).status == "succeeded"
    purge_binlogs_before_now(server, state(root, f"{db}.items")["file"])
    monkeypatch.setattr(CdcReader, "_require",  # as if purged right after the check
                        lambda self, file: CdcReader._binlogs(self))
    failed = run_sync(root)
    assert failed.status == "failed"
    assert isinstance(failed.error, ConfigurationError) and "(1236)" in failed.error.message
    assert f"--full-refresh --stream {db}.items" in (failed.error.fix or "")


@pytest.mark.parametrize("statements", [
    ["TRUNCATE TABLE items"],
    ["ALTER TABLE items ADD COLUMN x INT"],
    ["UPDATE items SET name = 'before' WHERE id = 1", "ALTER TABLE items ADD COLUMN x INT"],
], ids=["truncate", "alter", "change-then-alter"])
def test_truncate_or_alter_fails_with_the_resnapshot_command(server: Server, db: str,
                                                             tmp_path: Path, statements: list[str]
                                                             ) -> None:
    make_items(server, db)
    root = write_ws(tmp_path, server, db, ["items"])
    assert run_sync(root).status == "succeeded"
    for statement in statements:
        server.sql(statement, db=db)
    server.sql("INSERT INTO items (id, name) VALUES (100, 'after')", db=db)
    failed = run_sync(root)
    assert failed.status == "failed"
    assert isinstance(failed.error, SourceError)
    assert statements[-1].split()[0] in failed.error.message
    assert f"--full-refresh --stream {db}.items" in (failed.error.fix or "")
    assert dest_query(root, "SELECT count(*) FROM dst.items WHERE id = 100") == [(0,)]
    recovered = run_sync(root, full_refresh=True, streams=[f"{db}.items"])
    assert recovered.status == "succeeded", recovered.error
    # the refresh under merge keeps the rows a TRUNCATE removed, soft-deleted
    gone = set(range(1, 6)) if statements == ["TRUNCATE TABLE items"] else set()
    assert_mirrors(root, server, db, "items", deleted=set(), swept=frozenset(gone))


@pytest.mark.parametrize(("variable", "bad"), [
    ("binlog_row_metadata", "MINIMAL"), ("binlog_row_image", "MINIMAL"), ("binlog_format", "MIXED"),
])
def test_a_missing_server_setting_names_the_setting(server: Server, db: str, tmp_path: Path,
                                                    variable: str, bad: str) -> None:
    make_items(server, db)
    root = write_ws(tmp_path, server, db, ["items"])
    assert run_sync(root).status == "succeeded"
    [(good,)] = server.sql(f"SELECT @@GLOBAL.{variable}")
    server.sql(f"SET GLOBAL {variable} = '{bad}'")
    try:
        failed = run_sync(root)
    finally:
        server.sql(f"SET GLOBAL {variable} = '{good}'")
    assert failed.status == "failed"
    assert isinstance(failed.error, ConfigurationError)
    assert f"{variable} is {bad}" in failed.error.message
    assert f"SET GLOBAL {variable} = '{good}'" in (failed.error.fix or "")


@pytest.mark.parametrize(("grants", "missing"), [
    ("SELECT", "BINLOG MONITOR"), ("SELECT, REPLICATION CLIENT", "REPLICATION SLAVE"),
], ids=["no-replication-client", "no-replication-slave"])
def test_missing_replication_privileges_fail_before_the_snapshot(
    server: Server, db: str, tmp_path: Path, grants: str, missing: str
) -> None:
    make_items(server, db)
    user = f"weak_{secrets.token_hex(3)}"
    server.sql(f"CREATE USER '{user}'@'%' IDENTIFIED BY 'pw'")
    server.sql(f"GRANT {grants} ON *.* TO '{user}'@'%'")
    try:
        root = write_ws(tmp_path, server, db, ["items"], user=user, password="pw")
        failed = run_sync(root)
    finally:
        server.sql(f"DROP USER '{user}'@'%'")
    assert failed.status == "failed"
    assert isinstance(failed.error, ConfigurationError)
    assert missing in failed.error.message
    assert "GRANT REPLICATION SLAVE, REPLICATION CLIENT" in (failed.error.fix or "")
    assert failed.rows_read == 0


def cdc_refused(server: Server, db: str) -> ConfigurationError:
    """The error a CDC read of `items` stops with before reading anything."""
    source = MysqlSource("src", MysqlConfig.model_validate(source_config(server, db)),
                         SourceContext(root="."))
    [stream] = source.discover()
    with pytest.raises(ConfigurationError) as info:
        list(source.read(ReadRequest(stream=stream, mode="cdc", primary_key=("id",))))
    return info.value


@pytest.mark.parametrize(("fake", "words"), [
    ({"SELECT VERSION()": [("8.0.36",)]}, "the server is MySQL 8.0.36"),
    ({"SHOW STATUS LIKE 'binlog_snapshot_%'": []}, "no binlog_snapshot_file status"),
], ids=["mysql-version", "no-snapshot-position"])
def test_a_mysql_server_is_refused_with_incremental_suggested(
    server: Server, db: str, monkeypatch: pytest.MonkeyPatch, fake: dict[str, Any], words: str
) -> None:
    make_items(server, db)
    real = CdcReader._query

    def as_mysql(self: CdcReader, sql: str, params: Any = None) -> list[tuple[Any, ...]]:
        return fake[sql] if sql in fake else real(self, sql, params)

    monkeypatch.setattr(CdcReader, "_query", as_mysql)
    error = cdc_refused(server, db)
    assert "supported on MariaDB only" in error.message and words in error.message
    assert "mode: incremental" in (error.fix or "")


def test_mariadb_before_10_5_is_refused(server: Server, db: str,
                                       monkeypatch: pytest.MonkeyPatch) -> None:
    make_items(server, db)
    real = CdcReader._query

    def old_server(self: CdcReader, sql: str, params: Any = None) -> list[tuple[Any, ...]]:
        if "binlog_row_metadata" in sql:
            raise pymysql.err.InternalError(1193, "Unknown system variable 'binlog_row_metadata'")
        return real(self, sql, params)

    monkeypatch.setattr(CdcReader, "_query", old_server)
    error = cdc_refused(server, db)
    assert "has no binlog_row_metadata" in error.message
    assert "MariaDB 10.5 or later" in (error.fix or "")


# -- helpers -----------------------------------------------------------------------------


def test_positions_grow_along_the_binlog_across_files() -> None:
    assert binlog_lsn("binlog.000001", 2**32 - 1) < binlog_lsn("binlog.000002", 4)
    assert binlog_lsn("mysql-bin.000042", 120) == (42 << 32) | 120


def test_time_text_matches_the_servers_cast() -> None:
    assert _time_text(-dt.timedelta(hours=838, minutes=59, seconds=59, microseconds=500000), 3) == \
        "-838:59:59.500"
    assert _time_text(dt.timedelta(hours=30), 0) == "30:00:00"
    assert _time_text(dt.timedelta(seconds=1, microseconds=7), 6) == "00:00:01.000007"


@pytest.mark.parametrize(("query", "verb"), [
    ("TRUNCATE items", "TRUNCATE"),
    ("truncate table `shop`.`items`", "TRUNCATE"),
    ("/* x */ ALTER TABLE items ADD c INT", "ALTER"),
    ("DROP TABLE IF EXISTS other, items /* generated by server */", "DROP"),
    ("RENAME TABLE items TO old_items", "RENAME"),
    ("CREATE OR REPLACE TABLE items (id INT)", "CREATE OR REPLACE"),
    ("TRUNCATE other.items", None),
    ("TRUNCATE items_archive", None),
    ("ALTER TABLE shop.items_2 ADD c INT", None),
    ("CREATE TABLE copy LIKE items", None),
], ids=lambda v: str(v)[:30])
def test_statements_on_the_table_are_recognised(query: str, verb: str | None) -> None:
    assert statement_on(query, "shop", "shop", "items") == verb


def test_default_server_ids_differ_per_stream_and_stay_above_replica_ids() -> None:
    ids = {default_server_id("src", f"db.t{i}") for i in range(50)}
    assert len(ids) == 50 and all(2**30 <= i < 2**31 for i in ids)


def test_history_dates_each_change_by_the_binlog(server: Server, db: str, tmp_path: Path) -> None:
    make_items(server, db)
    root = write_ws(tmp_path, server, db, ["items"], write="history")
    assert run_sync(root).status == "succeeded"
    time.sleep(1.1)  # the binlog dates events to the second
    server.sql("UPDATE items SET name = 'first' WHERE id = 2", db=db)
    [(logged,)] = server.sql("SELECT UTC_TIMESTAMP()", db=db)
    time.sleep(1.1)
    server.sql("UPDATE items SET name = 'second' WHERE id = 2", db=db)
    server.sql("DELETE FROM items WHERE id = 4", db=db)
    run = run_sync(root)
    assert run.status == "succeeded", run.error
    got = dest_query(root, "SELECT name, _syncline_valid_from, _syncline_valid_to, _syncline_is_current "
                           "FROM dst.items WHERE id = 2 ORDER BY _syncline_valid_from")
    assert [g[0] for g in got] == ["n2", "first", "second"]
    assert got[1][1].replace(tzinfo=None) <= logged < got[2][1].replace(tzinfo=None)
    assert got[0][2] == got[1][1] and got[1][2] == got[2][1] and got[2][3]
    assert dest_query(root, "SELECT name, _syncline_is_current, _syncline_deleted FROM dst.items "
                            "WHERE id = 4") == [("n4", False, True)]
