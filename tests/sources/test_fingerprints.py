"""Source fingerprints: unchanged while nothing is written, moved by every insert, update and delete.

A full refresh resumes its half-built table only while the fingerprint taken when the
build began still holds (tests/engine/test_sync_sqlite.py and tests/faults show the
end-to-end behaviour); a fingerprint that misses a change would publish stale rows.
"""

from __future__ import annotations

import secrets
import sqlite3
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import psycopg
import pyarrow as pa
import pymysql
import pytest

from syncline.errors import TransientError
from syncline.sources.base import Source, SourceContext
from syncline.sources.files.source import FilesConfig, FilesSource
from syncline.sources.mysql.source import MysqlConfig, MysqlSource
from syncline.sources.postgres.source import PostgresConfig, PostgresSource
from syncline.sources.sqlite import SqliteConfig, SqliteSource
from syncline.stream import Checkpoint, ReadRequest

from services import HOST, postgres_schema, require_mariadb


@dataclass
class Table:
    """A source with a table `t (id, v)` of three rows, and a way to run SQL on its server."""

    source: Source
    run: Callable[[str], None]
    stream_name: str

    def stream(self) -> Any:
        return next(s for s in self.source.discover() if s.name == self.stream_name)


def _sqlite(tmp_path: Path, wal: bool) -> Iterator[Table]:
    db = tmp_path / "src.db"
    con = sqlite3.connect(db, isolation_level=None)
    if wal:
        con.execute("PRAGMA journal_mode = wal")
    con.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT)")
    con.execute("INSERT INTO t VALUES (1, 'a'), (2, 'b'), (3, 'c')")
    source = SqliteSource("s", SqliteConfig.model_validate({"type": "sqlite", "path": str(db)}),
                          SourceContext(root=str(tmp_path)))
    yield Table(source, lambda sql: con.execute(sql) and None, "t")
    con.close()


def _postgres() -> Iterator[Table]:
    with postgres_schema("syncline_fp") as schema, \
            psycopg.connect(f"host={HOST} user=postgres dbname=test", autocommit=True) as con:
        con.execute(f'SET search_path TO "{schema}"')
        con.execute("CREATE TABLE t (id int PRIMARY KEY, v text)")
        con.execute("INSERT INTO t VALUES (1, 'a'), (2, 'b'), (3, 'c')")
        cfg = PostgresConfig.model_validate({"type": "postgres", "host": HOST, "user": "postgres",
                                             "database": "test", "schemas": [schema]})
        source = PostgresSource("pg", cfg, SourceContext(root="."))
        try:
            yield Table(source, lambda sql: con.execute(sql) and None, f"{schema}.t")
        finally:
            source.close()


def _mysql() -> Iterator[Table]:
    url = urlsplit(require_mariadb())
    con = pymysql.connect(host=url.hostname, port=url.port or 3306, user="root", password="",
                          autocommit=True)
    name = f"syncline_fp_{secrets.token_hex(4)}"

    def run(sql: str) -> None:
        with con.cursor() as cur:
            cur.execute(sql)

    run(f"CREATE DATABASE `{name}`")
    run(f"USE `{name}`")
    run("CREATE TABLE t (id int PRIMARY KEY, v text)")
    run("INSERT INTO t VALUES (1, 'a'), (2, 'b'), (3, 'c')")
    cfg = MysqlConfig.model_validate({"type": "mysql", "host": url.hostname, "port": url.port or 3306,
                                      "user": "root", "database": name})
    try:
        yield Table(MysqlSource("my", cfg, SourceContext(root=".")), run, f"{name}.t")
    finally:
        run(f"DROP DATABASE `{name}`")
        con.close()


@pytest.fixture(params=["sqlite-journal", "sqlite-wal", "postgres", "mysql"])
def table(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Table]:
    kind = request.param
    if kind.startswith("sqlite"):
        yield from _sqlite(tmp_path, wal=kind == "sqlite-wal")
    elif kind == "postgres":
        yield from _postgres()
    else:
        yield from _mysql()


@pytest.mark.parametrize("change", [
    "INSERT INTO t VALUES (4, 'd')",
    "UPDATE t SET v = 'changed' WHERE id = 2",
    "DELETE FROM t WHERE id = 3",
])
def test_every_kind_of_write_moves_the_fingerprint_and_reads_do_not(table: Table, change: str) -> None:
    stream = table.stream()
    began = table.source.fingerprint(stream)
    assert began is not None
    table.source.count(stream)  # reading leaves it where it was
    list(table.source.discover())
    assert not table.source.changed_since(stream, began)
    table.run(change)
    assert table.source.changed_since(stream, began), f"{change} went unnoticed"
    assert not table.source.changed_since(stream, str(table.source.fingerprint(stream)))


def test_a_postgres_transaction_older_than_the_fingerprint_still_counts() -> None:
    """A writer whose transaction began before the fingerprint and committed after it has an
    older transaction id than rows written since; only the snapshot tells it apart."""
    for table in _postgres():
        stream = table.stream()
        schema = stream.name.split(".")[0]
        writer = psycopg.connect(f"host={HOST} user=postgres dbname=test")
        writer.execute(f"UPDATE \"{schema}\".t SET v = 'late' WHERE id = 1")  # open, id assigned
        began = table.source.fingerprint(stream)
        assert began is not None
        assert not table.source.changed_since(stream, began)
        writer.commit()
        writer.close()
        assert table.source.changed_since(stream, began)


def _first_fingerprint(table: Table) -> str:
    """The fingerprint carried by the first checkpoint of a full refresh of 50-row batches."""
    stream = table.stream()
    items = table.source.read(ReadRequest(stream=stream, mode="full_refresh", primary_key=("id",),
                                          batch_size=50))
    try:
        for item in items:
            if isinstance(item, Checkpoint):
                assert item.value["columns"] == ["ctid"] and item.value["rows"] == 50
                return str(item.value["fingerprint"])
    finally:
        items.close()  # type: ignore[attr-defined]
    raise AssertionError("no checkpoint")


@pytest.mark.parametrize(("change", "moved"), [
    ("SELECT 1", False),
    ("UPDATE t SET v = 'changed' WHERE id = 180", False),  # rows after the checkpoint are read now
    ("DELETE FROM t WHERE id = 190", False),
    ("INSERT INTO t SELECT i, 'new' FROM generate_series(1001, 1010) i", False),
    ("UPDATE t SET v = 'changed' WHERE id = 20", True),  # rows the checkpoint stands for
    ("DELETE FROM t WHERE id = 30", True),
    ("TRUNCATE t", True),
])
def test_a_postgres_read_in_ctid_order_fingerprints_the_rows_before_each_checkpoint(
    change: str, moved: bool
) -> None:
    for table in _postgres():
        table.run("INSERT INTO t SELECT i, 'v' FROM generate_series(4, 200) i")
        began = _first_fingerprint(table)
        assert not table.source.changed_since(table.stream(), began)
        table.run(change)
        assert table.source.changed_since(table.stream(), began) is moved


def _mysql_read(table: Table, checkpoint: dict[str, Any] | None = None) -> Iterator[Any]:
    return table.source.read(ReadRequest(stream=table.stream(), mode="full_refresh", primary_key=("id",),
                                         batch_size=50, checkpoint=checkpoint))


@pytest.mark.parametrize(("change", "moved"), [
    ("INSERT INTO t SELECT seq, 'new' FROM seq_1001_to_1010", False),  # after the checkpoint
    ("UPDATE t SET v = 'changed' WHERE id = 200", False),
    ("UPDATE t SET v = 'changed' WHERE id = 20", True),  # rows the checkpoint stands for
    ("UPDATE t SET v = NULL WHERE id = 20", True),
    ("DELETE FROM t WHERE id = 30", True),
    ("INSERT INTO t VALUES (0, 'early')", True),
    ("TRUNCATE t", True),
])
def test_a_mysql_read_by_key_fingerprints_the_rows_before_each_checkpoint_as_it_reads_them(
    change: str, moved: bool
) -> None:
    for table in _mysql():
        table.run("INSERT INTO t SELECT seq, 'v' FROM seq_4_to_200")
        items = _mysql_read(table)
        try:
            cp = next(item.value for item in items if isinstance(item, Checkpoint))
        finally:
            items.close()  # type: ignore[attr-defined]
        began = str(cp["fingerprint"])
        assert began.startswith("prefix:50:") and cp["after"] == [50]  # no pass of its own
        assert not table.source.changed_since(table.stream(), began)
        table.run(change)
        assert table.source.changed_since(table.stream(), began) is moved


def test_a_resumed_mysql_read_checks_the_rows_before_its_checkpoint_in_its_own_snapshot() -> None:
    for table in _mysql():
        table.run("INSERT INTO t SELECT seq, 'v' FROM seq_4_to_200")
        first = _mysql_read(table)
        cp = next(item.value for item in first if isinstance(item, Checkpoint))
        first.close()  # type: ignore[attr-defined]
        cp = {k: v for k, v in cp.items() if k != "fingerprint"}  # as the engine stores it
        rest = [item for item in _mysql_read(table, cp) if isinstance(item, (pa.RecordBatch, Checkpoint))]
        assert sum(b.num_rows for b in rest if isinstance(b, pa.RecordBatch)) == 150
        last = rest[-1]
        assert isinstance(last, Checkpoint) and last.value["fingerprint"].startswith("prefix:200:")
        assert not table.source.changed_since(table.stream(), last.value["fingerprint"])
        table.run("UPDATE t SET v = 'changed' WHERE id = 10")
        with pytest.raises(TransientError, match="changed just before this resumed read"):
            list(_mysql_read(table, cp))


def _offset(ctid: str) -> tuple[int, int]:
    block, offset = ctid.strip("()").split(",")
    return int(block), int(offset)


def test_a_late_commit_into_free_space_before_a_ctid_checkpoint_counts() -> None:
    """A row inserted into a page the read had passed, by a transaction the read could not
    see, is in the checkpoint's part of the table though it was never read."""
    for table in _postgres():
        schema = table.stream().name.split(".")[0]
        table.run("INSERT INTO t SELECT i, 'v' FROM generate_series(4, 200) i")
        table.run("DELETE FROM t WHERE id <= 10")
        table.run("VACUUM t")  # the first page has room again
        writer = psycopg.connect(f"host={HOST} user=postgres dbname=test")
        row = writer.execute(f"INSERT INTO \"{schema}\".t VALUES (0, 'late') RETURNING ctid::text").fetchone()
        assert row is not None and row[0].startswith("(0,"), row  # in the first page
        began = _first_fingerprint(table)
        last = began.split(":")[3]  # ctid:<file>:<rows>:<last ctid>:<snapshot>
        assert _offset(row[0]) <= _offset(last), (
            f"the late row {row[0]} is not before the checkpoint {last}: VACUUM could not free "
            "the first page (does another session hold an old snapshot?)")
        assert not table.source.changed_since(table.stream(), began)
        writer.commit()
        writer.close()
        assert table.source.changed_since(table.stream(), began)


def test_a_resumed_ctid_read_checks_the_rows_before_its_checkpoint_in_its_own_snapshot() -> None:
    """The engine checks the fingerprint before a resumed read begins; a write landing
    between that check and the read's snapshot is caught by the read itself."""
    for table in _postgres():
        table.run("INSERT INTO t SELECT i, 'v' FROM generate_series(4, 200) i")

        def read(checkpoint: dict[str, Any] | None, source: Source = table.source) -> Iterator[Any]:
            return source.read(ReadRequest(stream=source.discover()[0], mode="full_refresh",
                                           primary_key=("id",), batch_size=50, checkpoint=checkpoint))

        first = read(None)
        cp = next(item.value for item in first if isinstance(item, Checkpoint))
        first.close()  # type: ignore[attr-defined]
        cp = {k: v for k, v in cp.items() if k != "fingerprint"}  # as the engine stores it
        rest = [item for item in read(cp) if isinstance(item, pa.RecordBatch)]
        assert sum(b.num_rows for b in rest) == 150  # unchanged: only the rows after it
        table.run("UPDATE t SET v = 'changed' WHERE id = 10")
        with pytest.raises(TransientError, match="changed just before this resumed read"):
            list(read(cp))


def test_files_fingerprint_follows_names_sizes_and_mtimes(tmp_path: Path) -> None:
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    (inbox / "a.csv").write_text("id,v\n1,a\n")
    source = FilesSource("f", FilesConfig.model_validate({"type": "files", "path": "inbox/*.csv"}),
                         SourceContext(root=str(tmp_path)))
    stream = source.discover()[0]
    began = source.fingerprint(stream)
    assert began is not None and not source.changed_since(stream, began)
    (inbox / "b.csv").write_text("id,v\n2,b\n")
    assert source.changed_since(stream, began)
    now = str(source.fingerprint(stream))
    (inbox / "b.csv").unlink()
    assert source.changed_since(stream, now)
