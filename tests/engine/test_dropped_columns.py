"""A column dropped at the source is a schema change: reported once in `runs` and `status`, its
destination column kept (NULL in new rows), and named by `verify`. SQLite and PostgreSQL."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
import yaml
from typer.testing import CliRunner

import syncline.cli.app as cli

from services import HOST, postgres_schema
from syncfixtures import dest_query, sqlite_script, write_ws

DROPPED = "dropped column b (kept in table t, NULL in new rows)"


def cli_json(*args: str | Path) -> Any:
    result = CliRunner().invoke(cli.app, [str(a) for a in (*args, "--json")])
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def sync(root: Path) -> None:
    result = CliRunner().invoke(cli.app, ["sync", "c", "--workspace", str(root)])
    assert result.exit_code == 0, result.output


def changes_of_last_run(root: Path) -> list[str]:
    last = cli_json("runs", "c", "--limit", "1", "--workspace", root)[0]
    [stream] = last["streams"]
    return list(stream["schema_changes"])


@pytest.fixture
def pg_schema() -> Iterator[str]:
    with postgres_schema("syncline_drop") as schema:
        yield schema


def _sqlite_case(root: Path) -> tuple[Callable[[str], None], str]:
    write_ws(root, {"t": {"mode": "incremental", "cursor": "updated_at"}})
    return (lambda statement: sqlite_script(root / "src.db", statement.format(t="t"))), "t"


def _pg_case(root: Path, schema: str) -> tuple[Callable[[str], None], str]:
    stream = f"{schema}.t"
    doc = {"version": 1,
           "sources": {"src": {"type": "postgres", "host": HOST, "user": "postgres", "database": "test",
                               "schemas": [schema]}},
           "destinations": {"wh": {"type": "duckdb", "path": "wh.duckdb"}},
           "connections": {"c": {"source": "src", "destination": "wh", "destination_schema": "dst",
                                 "streams": {stream: {"mode": "incremental", "cursor": "updated_at"}}}}}
    (root / "syncline.yaml").write_text(yaml.safe_dump(doc), encoding="utf-8")

    def run(statement: str) -> None:
        with psycopg.connect(f"host={HOST} port=5432 user=postgres dbname=test", autocommit=True) as con:
            con.execute(statement.format(t=stream))
    return run, stream


@pytest.mark.parametrize("source", ["sqlite", "postgres"])
def test_a_dropped_source_column_is_reported_kept_and_named_by_verify(
        tmp_path: Path, source: str, request: pytest.FixtureRequest) -> None:
    if source == "sqlite":
        run, stream = _sqlite_case(tmp_path)
    else:
        run, stream = _pg_case(tmp_path, request.getfixturevalue("pg_schema"))
    run("CREATE TABLE {t} (id INTEGER PRIMARY KEY, a TEXT, b TEXT, updated_at TIMESTAMP)")
    run("INSERT INTO {t} VALUES (1, 'a1', 'b1', '2026-01-01'), (2, 'a2', 'b2', '2026-01-01 01:00:00')")
    sync(tmp_path)
    run("ALTER TABLE {t} DROP COLUMN b")
    run("UPDATE {t} SET a = 'a2 v2', updated_at = '2026-01-02' WHERE id = 2")
    run("INSERT INTO {t} VALUES (3, 'a3', '2026-01-02')")
    sync(tmp_path)
    assert DROPPED in changes_of_last_run(tmp_path)
    [status] = cli_json("status", "--workspace", tmp_path)
    assert DROPPED in status["last_run"]["streams"][0]["schema_changes"]
    assert dest_query(tmp_path, "SELECT id, a, b FROM dst.t ORDER BY id") == [
        (1, "a1", "b1"), (2, "a2 v2", None), (3, "a3", None)]
    [verdict] = cli_json("verify", "c", "--workspace", tmp_path)
    assert verdict["stream"] == stream and verdict["ok"] is True
    assert verdict["columns_not_in_source"] == ["b"]
    sync(tmp_path)
    assert DROPPED not in changes_of_last_run(tmp_path)  # reported once, when it happened
