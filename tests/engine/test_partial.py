"""One stream's failure never stops the others: the run ends `partial`, every other stream's
rows are committed, and the failed one says why (a table renamed at the source, a view where a
PostgreSQL destination must replace a table)."""

from __future__ import annotations

import json
import sqlite3
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import duckdb
import psycopg
import pytest
import yaml
from typer.testing import CliRunner

from syncline.cli.app import app

from services import HOST, require_postgres
from syncfixtures import make_items


def cli(root: Path, *args: str) -> tuple[int, Any]:
    done = CliRunner().invoke(app, [*args, "-w", str(root), "--json"])
    return done.exit_code, json.loads(done.stdout)


def workspace(root: Path, streams: dict[str, Any], destination: dict[str, Any] | None = None,
              schema: str = "dst") -> Path:
    make_items(root / "src.db", 30)
    con = sqlite3.connect(root / "src.db")
    con.execute("CREATE TABLE plain (id INTEGER PRIMARY KEY, v TEXT)")
    con.executemany("INSERT INTO plain VALUES (?, ?)", [(i, f"v{i}") for i in range(1, 13)])
    con.commit()
    con.close()
    (root / "syncline.yaml").write_text(yaml.safe_dump({
        "version": 1, "sources": {"src": {"type": "sqlite", "path": "src.db"}},
        "destinations": {"wh": destination or {"type": "duckdb", "path": "wh.duckdb"}},
        "connections": {"c": {"source": "src", "destination": "wh", "destination_schema": schema,
                              "streams": streams}}}))
    return root


def by_stream(run: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {s["stream"]: s for s in run["streams"]}


def test_a_stream_gone_from_the_source_fails_alone(tmp_path: Path) -> None:
    root = workspace(tmp_path, {"items": {}, "orders": {}, "plain": {}})  # orders: renamed away
    code, run = cli(root, "sync", "c")
    assert (code, run["status"]) == (2, "partial")
    streams = by_stream(run)
    assert (streams["items"]["status"], streams["items"]["rows_committed"]) == ("succeeded", 30)
    assert (streams["plain"]["status"], streams["plain"]["rows_committed"]) == ("succeeded", 12)
    assert streams["orders"]["status"] == "failed"
    assert "stream 'orders': source 'src' has no such stream" in streams["orders"]["message"]
    assert run["failure_message"] == streams["orders"]["message"]
    con = duckdb.connect(str(root / "wh.duckdb"), read_only=True)
    assert con.execute("SELECT count(*), count(DISTINCT id) FROM dst.items").fetchone() == (30, 30)
    assert con.execute("SELECT count(*) FROM dst.plain").fetchone() == (12,)
    con.close()
    code, status = cli(root, "status")
    assert code == 1 and status[0]["health"] == "failing"
    shown = CliRunner().invoke(app, ["sync", "c", "-w", str(root)])  # as a person sees it
    assert "stream orders failed (configuration); the others go on" in shown.stdout
    assert "run 2 partial after 1 attempt(s)" in shown.stderr


@pytest.fixture
def pg_schema() -> Iterator[str]:
    require_postgres()
    schema = f"partial_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(f"host={HOST} user=postgres dbname=test", autocommit=True) as con:
        con.execute(f"CREATE SCHEMA {schema}")
        try:
            yield schema
        finally:
            con.execute(f"DROP SCHEMA {schema} CASCADE")


def test_a_view_where_a_table_must_be_replaced_fails_that_stream_alone(
        tmp_path: Path, pg_schema: str) -> None:
    root = workspace(tmp_path, {"items": {}, "plain": {"mode": "full_refresh", "write": "replace"}},
                     {"type": "postgres", "host": HOST, "user": "postgres", "database": "test"},
                     schema=pg_schema)
    with psycopg.connect(f"host={HOST} user=postgres dbname=test", autocommit=True) as con:
        con.execute(f"CREATE VIEW {pg_schema}.plain AS SELECT 1 AS id, 'x'::text AS v")
    code, run = cli(root, "sync", "c")
    assert run["status"] == "partial" and code in (1, 2), run
    streams = by_stream(run)
    assert (streams["items"]["status"], streams["items"]["rows_committed"]) == ("succeeded", 30)
    assert streams["plain"]["status"] == "failed" and "plain" in streams["plain"]["message"]
    with psycopg.connect(f"host={HOST} user=postgres dbname=test") as con:
        assert con.execute(f"SELECT count(*) FROM {pg_schema}.items").fetchone() == (30,)
