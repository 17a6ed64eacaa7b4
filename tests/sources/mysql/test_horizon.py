"""MariaDB incremental reads never skip a row committed late: the bound stays below the oldest writing transaction."""

from __future__ import annotations

import json
import random
import secrets
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pymysql
import pytest
import yaml
from typer.testing import CliRunner

from syncline.cli import app as cli

from services import HOST, mariadb_reader, require_mariadb
from syncfixtures import dest_query, run_sync

#: The bound stays a second below the listing, cut to whole seconds: two seconds clear it.
PAST_THE_HORIZON_S = 2.1


def connect(database: str, autocommit: bool = True) -> Any:
    return pymysql.connect(host=HOST, port=3306, user="root", database=database, autocommit=autocommit)


@pytest.fixture
def database() -> Iterator[str]:
    require_mariadb()
    name = f"syncline_late_{secrets.token_hex(4)}"
    con = pymysql.connect(host=HOST, port=3306, user="root", autocommit=True)
    with con.cursor() as cur:
        cur.execute(f"CREATE DATABASE `{name}`")
    try:
        yield name
    finally:
        with con.cursor() as cur:
            cur.execute(f"DROP DATABASE `{name}`")
        con.close()


def run(database: str, statement: str, params: Any = None) -> list[tuple[Any, ...]]:
    con = connect(database)
    try:
        with con.cursor() as cur:
            cur.execute(statement, params)
            return list(cur.fetchall())
    finally:
        con.close()


def make_table(database: str) -> None:
    run(database, "CREATE TABLE orders (id int PRIMARY KEY, note varchar(20), updated_at datetime "
        "NOT NULL DEFAULT CURRENT_TIMESTAMP ON UPDATE CURRENT_TIMESTAMP)")
    run(database, "INSERT INTO orders SELECT seq, 'first', NOW() - INTERVAL 1 HOUR FROM seq_1_to_10")


def write_ws(root: Path, database: str, user: str, **stream: Any) -> None:
    """The default configuration a new user writes: no lookback, the source read by `user`."""
    doc = {
        "version": 1,
        "sources": {"src": {"type": "mysql", "host": HOST, "port": 3306, "user": user,
                            "database": database}},
        "destinations": {"wh": {"type": "duckdb", "path": "wh.duckdb"}},
        "connections": {"c": {"source": "src", "destination": "wh", "destination_schema": "dst",
                              "max_attempts": 1, "streams": {
                                  f"{database}.orders": {"mode": "incremental", "cursor": "updated_at",
                                                         **stream}}}},
    }
    (root / "syncline.yaml").write_text(yaml.safe_dump(doc), encoding="utf-8")


def source_rows(database: str) -> list[tuple[Any, ...]]:
    return run(database, "SELECT id, note FROM orders ORDER BY id")


def dest_rows(root: Path) -> list[tuple[Any, ...]]:
    return [tuple(r) for r in dest_query(root, "SELECT id, note FROM dst.orders ORDER BY id")]


def test_a_row_committed_after_a_newer_one_was_synced_arrives_next_run(
        tmp_path: Path, database: str) -> None:
    make_table(database)
    write_ws(tmp_path, database, mariadb_reader(database))
    slow = connect(database, autocommit=False)  # a transaction that commits late
    try:
        with slow.cursor() as cur:
            cur.execute("INSERT INTO orders (id, note) VALUES (11, 'slow')")
        time.sleep(1.1)
        run(database, "INSERT INTO orders (id, note) VALUES (12, 'quick')")  # newer, committed first
        held = run_sync(tmp_path)
        assert held.status == "succeeded", held.error
        assert [r[0] for r in dest_rows(tmp_path)] == list(range(1, 11))  # 12 waits behind 11
        slow.commit()
    finally:
        slow.close()
    time.sleep(PAST_THE_HORIZON_S)
    after = run_sync(tmp_path)
    assert after.status == "succeeded", after.error
    assert dest_rows(tmp_path) == source_rows(database)
    assert [r[0] for r in dest_rows(tmp_path)][-2:] == [11, 12]


@pytest.mark.parametrize("write", ["merge", "append"])
def test_concurrent_writers_lose_no_row(tmp_path: Path, database: str, write: str) -> None:
    # DATETIME keeps whole seconds: rows written within the second a read stops at share its
    # value with keys on both sides of the checkpoint's
    make_table(database)
    write_ws(tmp_path, database, mariadb_reader(database), write=write)
    stop = threading.Event()
    errors: list[BaseException] = []

    def writer(first: int) -> None:
        rnd = random.Random(first)
        con = connect(database, autocommit=False)
        try:
            for i in range(first, first + 100_000, 3):
                if stop.is_set():
                    return
                with con.cursor() as cur:
                    cur.execute("INSERT INTO orders (id, note) VALUES (%s, 'live')", [i])
                    if write == "merge" and rnd.random() < 0.3:  # an older row, stamped now
                        cur.execute("UPDATE orders SET note = 'again' WHERE id = %s", [rnd.randint(1, 10)])
                time.sleep(rnd.uniform(0, 0.3))  # stamped now, committed later
                con.commit()
        except BaseException as exc:  # surfaced below
            errors.append(exc)
        finally:
            con.close()

    threads = [threading.Thread(target=writer, args=(100 + k,)) for k in range(3)]
    for t in threads:
        t.start()
    try:
        for _ in range(6):
            result = run_sync(tmp_path)
            assert result.status == "succeeded", result.error
            time.sleep(0.3)
    finally:
        stop.set()
        for t in threads:
            t.join()
    assert not errors
    time.sleep(PAST_THE_HORIZON_S)
    assert run_sync(tmp_path).status == "succeeded"
    rows = source_rows(database)
    assert len(rows) > 20
    assert dest_rows(tmp_path) == rows  # under append too: every row once


def test_a_user_without_process_is_refused_with_the_grant(tmp_path: Path, database: str) -> None:
    make_table(database)
    user = mariadb_reader(database, process=False, user="syncline_reader_noproc")
    write_ws(tmp_path, database, user)
    result = run_sync(tmp_path)
    assert result.status == "failed" and result.error is not None
    assert result.error.failure_class == "configuration"
    assert f"GRANT PROCESS ON *.* TO '{user}'@'%';" in str(result.error)
    checked = CliRunner().invoke(cli.app, ["check", "-w", str(tmp_path), "c"])
    assert checked.exit_code == 2, checked.output
    assert "GRANT PROCESS" in " ".join(checked.output.split())
    found = CliRunner().invoke(cli.app, ["discover", "-w", str(tmp_path), "src", "--json"])
    [stream] = json.loads(found.stdout)
    assert any("incremental reads by a date or time cursor are refused" in n and "GRANT PROCESS" in n
               for n in stream["notes"])
    write_ws(tmp_path, database, user, mode="full_refresh", cursor=None)  # needs no PROCESS
    assert run_sync(tmp_path).status == "succeeded"
    assert dest_rows(tmp_path) == source_rows(database)
