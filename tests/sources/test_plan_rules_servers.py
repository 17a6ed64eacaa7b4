"""Planning rules on real PostgreSQL and MariaDB sources, as the command line shows them: one
table per stream across schemas, no keyless incremental reads, no lookback appended twice."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import psycopg
import pymysql
import pytest
import yaml
from typer.testing import CliRunner, Result

import syncline.cli.app as cli

from services import HOST, postgres_schema, require_mariadb
from syncfixtures import dest_query

CONNINFO = f"host={HOST} port=5432 user=postgres dbname=test"


@pytest.fixture(autouse=True)
def _wide_console(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(cli.console, "width", 400)
    monkeypatch.setattr(cli.err_console, "width", 400)


def run(*args: str | Path) -> Result:
    return CliRunner().invoke(cli.app, [str(a) for a in args])


def one_line(text: str) -> str:
    return " ".join(text.split())


def pg(statement: str) -> None:
    with psycopg.connect(CONNINFO, autocommit=True) as conn:
        conn.execute(statement)


def write_ws(root: Path, source: dict[str, Any], streams: dict[str, Any] | None, **conn: Any) -> Path:
    connection = {"source": "src", "destination": "wh", "destination_schema": "dst", **conn}
    if streams is not None:
        connection["streams"] = streams
    doc = {"version": 1, "sources": {"src": source},
           "destinations": {"wh": {"type": "duckdb", "path": "wh.duckdb"}},
           "connections": {"c": connection}}
    (root / "syncline.yaml").write_text(yaml.safe_dump(doc), encoding="utf-8")
    return root


def pg_source(*schemas: str, **extra: Any) -> dict[str, Any]:
    return {"type": "postgres", "host": HOST, "user": "postgres", "database": "test",
            "schemas": list(schemas), **extra}


def no_tables_written(root: Path) -> bool:
    return not (root / "wh.duckdb").exists() or dest_query(
        root, "SELECT count(*) FROM information_schema.tables WHERE table_schema = 'dst'") == [(0,)]


@pytest.fixture(scope="module")
def two_schemas() -> Iterator[tuple[str, str]]:
    """Two schemas that both hold a `products` table (one row each, told apart by name)."""
    with postgres_schema("syncline_a") as a, postgres_schema("syncline_b") as b:
        for schema in (a, b):
            pg(f"CREATE TABLE {schema}.products (id int PRIMARY KEY, name text)")
            pg(f"INSERT INTO {schema}.products VALUES (1, '{schema}')")
        yield a, b


def test_same_table_in_two_schemas_is_refused_then_kept_apart_by_schema_table(
        tmp_path: Path, two_schemas: tuple[str, str]) -> None:
    a, b = two_schemas
    write_ws(tmp_path, pg_source(a, b), None)
    message = f"streams '{a}.products' and '{b}.products' would both write table 'products'"
    checked = run("check", "c", "--workspace", tmp_path)
    assert checked.exit_code == 2, checked.output
    assert message in one_line(checked.stdout)
    synced = run("sync", "c", "--workspace", tmp_path)
    assert synced.exit_code == 2, synced.output
    assert message in one_line(synced.stderr) and "table_names: schema_table" in one_line(synced.stderr)
    assert no_tables_written(tmp_path)
    write_ws(tmp_path, pg_source(a, b), None, table_names="schema_table")
    assert run("sync", "c", "--workspace", tmp_path).exit_code == 0
    for schema in (a, b):
        assert dest_query(tmp_path, f"SELECT id, name FROM dst.{schema}_products") == [(1, schema)]


@pytest.fixture(scope="module")
def pg_keyless() -> Iterator[str]:
    with postgres_schema("syncline_keyless") as schema:
        pg(f"CREATE TABLE {schema}.events (id int, updated_at timestamptz)")
        pg(f"INSERT INTO {schema}.events VALUES (1, '2026-01-01'), (2, '2026-01-01')")
        yield schema


def test_postgres_incremental_without_a_key_is_refused_until_a_unique_column_is_declared(
        tmp_path: Path, pg_keyless: str) -> None:
    stream = f"{pg_keyless}.events"
    write_ws(tmp_path, pg_source(pg_keyless), {stream: {"mode": "incremental", "cursor": "updated_at"}})
    synced = run("sync", "c", "--workspace", tmp_path)
    assert synced.exit_code == 2, synced.output
    err = one_line(synced.stderr)
    assert f"stream '{stream}': incremental mode needs a primary key or a unique column" in err
    assert "set `primary_key: [col, ...]`" in err
    assert no_tables_written(tmp_path)
    write_ws(tmp_path, pg_source(pg_keyless),
             {stream: {"mode": "incremental", "cursor": "updated_at", "primary_key": ["id"]}})
    assert run("sync", "c", "--workspace", tmp_path).exit_code == 0
    assert dest_query(tmp_path, "SELECT id FROM dst.events ORDER BY id") == [(1,), (2,)]


def test_lookback_with_append_is_refused_with_the_fix(tmp_path: Path, two_schemas: tuple[str, str]) -> None:
    a, _ = two_schemas
    stream = f"{a}.products"
    write_ws(tmp_path, pg_source(a, lookback="5m"),
             {stream: {"mode": "incremental", "cursor": "id", "write": "append"}})
    for command in ("check", "sync"):
        result = run(command, "c", "--workspace", tmp_path)
        assert result.exit_code == 2, result.output
        text = one_line(result.stdout + result.stderr)
        assert f"stream '{stream}': the stream re-reads a lookback window (5m)" in text
        assert "use write: merge" in text
    assert no_tables_written(tmp_path)


@pytest.fixture(scope="module")
def maria() -> Iterator[dict[str, Any]]:
    url = urlsplit(require_mariadb())
    user, host, port = url.username or "root", url.hostname or "127.0.0.1", url.port or 3306
    con = pymysql.connect(host=host, port=port, user=user, password=url.password or "", autocommit=True)
    name = f"syncline_plan_{secrets.token_hex(4)}"
    with con.cursor() as cur:
        cur.execute(f"CREATE DATABASE `{name}`")
        cur.execute(f"CREATE TABLE `{name}`.events (id INT, at DATETIME(6) NOT NULL)")
        cur.execute(f"INSERT INTO `{name}`.events VALUES (1, '2026-01-01'), (2, '2026-01-01')")
    try:
        yield {"type": "mysql", "host": host, "port": port, "user": user, "database": name}
    finally:
        with con.cursor() as cur:
            cur.execute(f"DROP DATABASE `{name}`")
        con.close()


def test_mariadb_incremental_without_a_key_is_refused_until_a_unique_column_is_declared(
        tmp_path: Path, maria: dict[str, Any]) -> None:
    stream = f"{maria['database']}.events"
    write_ws(tmp_path, maria, {stream: {"mode": "incremental", "cursor": "at", "write": "append"}})
    synced = run("sync", "c", "--workspace", tmp_path)
    assert synced.exit_code == 2, synced.output
    assert f"stream '{stream}': incremental mode needs a primary key" in one_line(synced.stderr)
    assert no_tables_written(tmp_path)
    write_ws(tmp_path, maria, {stream: {"mode": "incremental", "cursor": "at", "write": "append",
                                        "primary_key": ["id"]}})
    assert run("sync", "c", "--workspace", tmp_path).exit_code == 0
    assert dest_query(tmp_path, "SELECT id FROM dst.events ORDER BY id") == [(1,), (2,)]
