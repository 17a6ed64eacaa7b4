"""PostgreSQL incremental reads never skip a row committed late: the bound stays below the oldest open transaction."""

from __future__ import annotations

import json
import random
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
import yaml
from typer.testing import CliRunner

from syncline.cli import app as cli

from services import HOST, postgres_reader, postgres_schema
from syncfixtures import dest_query, run_sync

CONNINFO = f"host={HOST} port=5432 user=postgres dbname=test"


@pytest.fixture
def schema() -> Iterator[str]:
    with postgres_schema("syncline_late") as name:
        yield name


def pg(statement: str, params: Any = None) -> list[tuple[Any, ...]]:
    with psycopg.connect(CONNINFO, autocommit=True) as conn:
        cur = conn.execute(statement, params)
        return cur.fetchall() if cur.description else []


def make_table(schema: str, cursor_type: str = "timestamptz") -> str:
    pg(f"CREATE TABLE {schema}.orders (id integer PRIMARY KEY, note text, "
       f"updated_at {cursor_type} NOT NULL DEFAULT now())")
    pg(f"INSERT INTO {schema}.orders SELECT i, 'first', now() - interval '1 hour' "
       "FROM generate_series(1, 10) i")
    return f"{schema}.orders"


def write_ws(root: Path, schema: str, user: str, **stream: Any) -> None:
    """The default configuration a new user writes: no lookback, the source read by `user`."""
    doc = {
        "version": 1,
        "sources": {"src": {"type": "postgres", "host": HOST, "port": 5432, "user": user,
                            "database": "test", "schemas": [schema]}},
        "destinations": {"wh": {"type": "duckdb", "path": "wh.duckdb"}},
        "connections": {"c": {"source": "src", "destination": "wh", "destination_schema": "dst",
                              "max_attempts": 1, "streams": {
                                  f"{schema}.orders": {"mode": "incremental", "cursor": "updated_at",
                                                       **stream}}}},
    }
    (root / "syncline.yaml").write_text(yaml.safe_dump(doc), encoding="utf-8")


def source_rows(schema: str) -> list[tuple[Any, ...]]:
    return pg(f"SELECT id, note FROM {schema}.orders ORDER BY id")


def dest_rows(root: Path) -> list[tuple[Any, ...]]:
    return dest_query(root, "SELECT id, note FROM dst.orders ORDER BY id")


@pytest.mark.parametrize("cursor_type", ["timestamptz", "timestamp"])
def test_a_row_committed_after_a_newer_one_was_synced_arrives_next_run(
        tmp_path: Path, schema: str, cursor_type: str) -> None:
    make_table(schema, cursor_type)
    write_ws(tmp_path, schema, postgres_reader(schema))
    with psycopg.connect(CONNINFO) as slow:  # a transaction stamped now() that commits late
        slow.execute(f"INSERT INTO {schema}.orders (id, note) VALUES (11, 'slow')")
        time.sleep(0.01)
        pg(f"INSERT INTO {schema}.orders (id, note) VALUES (12, 'quick')")  # newer, committed first
        held = run_sync(tmp_path)
        assert held.status == "succeeded", held.error
        assert [r[0] for r in dest_rows(tmp_path)] == list(range(1, 11))  # 12 waits behind 11
        slow.commit()
    time.sleep(0.2)  # past the margin kept below the moment open transactions are listed
    after = run_sync(tmp_path)
    assert after.status == "succeeded", after.error
    assert dest_rows(tmp_path) == source_rows(schema)
    assert [r[0] for r in dest_rows(tmp_path)][-2:] == [11, 12]


def test_syncline_own_sessions_hold_nothing_back(tmp_path: Path, schema: str) -> None:
    make_table(schema)
    write_ws(tmp_path, schema, postgres_reader(schema))
    with psycopg.connect(CONNINFO, application_name="syncline") as other_sync:
        other_sync.execute("SELECT 1")  # another Syncline read, its transaction open
        time.sleep(0.2)  # past the margin kept below the moment transactions are listed
        pg(f"INSERT INTO {schema}.orders (id, note) VALUES (11, 'new')")
        time.sleep(0.2)
        assert run_sync(tmp_path).status == "succeeded"
        assert dest_rows(tmp_path) == source_rows(schema)


def test_concurrent_writers_lose_no_row(tmp_path: Path, schema: str) -> None:
    make_table(schema)
    write_ws(tmp_path, schema, postgres_reader(schema))
    stop = threading.Event()
    errors: list[BaseException] = []

    def writer(first: int) -> None:
        rnd = random.Random(first)
        try:
            with psycopg.connect(CONNINFO) as conn:
                for i in range(first, first + 100_000, 3):
                    if stop.is_set():
                        return
                    conn.execute(f"INSERT INTO {schema}.orders (id, note) VALUES (%s, 'live')", [i])
                    time.sleep(rnd.uniform(0, 0.02))  # stamped at BEGIN, committed later
                    conn.commit()
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=writer, args=(100 + k,)) for k in range(3)]
    for t in threads:
        t.start()
    try:
        for _ in range(6):
            result = run_sync(tmp_path)
            assert result.status == "succeeded", result.error
    finally:
        stop.set()
        for t in threads:
            t.join()
    assert not errors
    time.sleep(0.2)  # past the listing margin
    assert run_sync(tmp_path).status == "succeeded"
    rows = source_rows(schema)
    assert len(rows) > 100
    assert dest_rows(tmp_path) == rows


def test_a_role_that_cannot_see_other_sessions_is_refused_with_the_grant(
        tmp_path: Path, schema: str) -> None:
    make_table(schema)
    role = postgres_reader(schema, stats=False, role="syncline_reader_nostats")
    write_ws(tmp_path, schema, role)
    grant = f"GRANT pg_read_all_stats TO {role};"
    result = run_sync(tmp_path)
    assert result.status == "failed" and result.error is not None
    assert result.error.failure_class == "configuration"
    assert grant in str(result.error)
    assert not (tmp_path / "wh.duckdb").exists() or not dest_query(
        tmp_path, "SELECT count(*) FROM information_schema.tables WHERE table_name = 'orders'")[0][0]
    checked = CliRunner().invoke(cli.app, ["check", "-w", str(tmp_path), "c"])
    assert checked.exit_code == 2, checked.output
    assert "GRANT pg_read_all_stats" in " ".join(checked.output.split())
    found = CliRunner().invoke(cli.app, ["discover", "-w", str(tmp_path), "src", "--json"])
    [stream] = json.loads(found.stdout)
    assert any("incremental reads by a date or time cursor are refused" in n and "GRANT pg_read_all_stats" in n
               for n in stream["notes"])
    # a full refresh needs no such privilege
    write_ws(tmp_path, schema, role, mode="full_refresh", cursor=None)
    assert run_sync(tmp_path).status == "succeeded"
    assert dest_rows(tmp_path) == source_rows(schema)
