"""Syncline never replicates itself: its own tables, and every table of a destination schema,
are never offered as streams (SQLite, PostgreSQL, MariaDB); verify never ends in a traceback."""

from __future__ import annotations

import json
import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import duckdb
import psycopg
import pymysql
import pytest
import yaml
from typer.testing import CliRunner, Result

import syncline.cli.app as cli

from services import HOST, require_mariadb, require_postgres
from syncfixtures import make_items, sqlite_script, write_ws


@pytest.fixture(autouse=True)
def _wide_console(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(cli.console, "width", 400)
    monkeypatch.setattr(cli.err_console, "width", 400)


def run(*args: str | Path) -> Result:
    return CliRunner().invoke(cli.app, [str(a) for a in args])


def discovered(root: Path) -> list[str]:
    result = run("discover", "src", "--json", "--workspace", root)
    assert result.exit_code == 0, result.output
    return sorted(s["name"] for s in json.loads(result.stdout))


def test_sqlite_source_never_offers_syncline_tables(tmp_path: Path) -> None:
    sqlite_script(tmp_path / "src.db", "CREATE TABLE items (id INTEGER PRIMARY KEY); "
                                      "CREATE TABLE _syncline_state (stream TEXT, state TEXT); "
                                      "CREATE TABLE orders__syncline_building (id INTEGER);")
    write_ws(tmp_path, None)
    assert discovered(tmp_path) == ["items"]


def test_mariadb_source_never_offers_syncline_tables(tmp_path: Path) -> None:
    url = urlsplit(require_mariadb())
    user, host, port = url.username or "root", url.hostname or "127.0.0.1", url.port or 3306
    name = f"syncline_own_{secrets.token_hex(4)}"
    con = pymysql.connect(host=host, port=port, user=user, password=url.password or "", autocommit=True)
    try:
        with con.cursor() as cur:
            cur.execute(f"CREATE DATABASE `{name}`")
            for table in ("items", "_syncline_loads", "_syncline_fence"):
                cur.execute(f"CREATE TABLE `{name}`.`{table}` (id INT PRIMARY KEY)")
        doc = {"version": 1, "sources": {"src": {"type": "mysql", "host": host, "port": port,
                                                 "user": user, "database": name}}}
        (tmp_path / "syncline.yaml").write_text(yaml.safe_dump(doc), encoding="utf-8")
        assert discovered(tmp_path) == [f"{name}.items"]
    finally:
        with con.cursor() as cur:
            cur.execute(f"DROP DATABASE `{name}`")
        con.close()


@pytest.fixture
def database() -> Iterator[str]:
    """A database of its own, so that a source without `schemas:` sees only this test's schemas."""
    require_postgres()
    name = f"syncline_own_{secrets.token_hex(4)}"
    admin = f"host={HOST} port=5432 user=postgres dbname=test"
    with psycopg.connect(admin, autocommit=True) as con:
        con.execute(f'CREATE DATABASE "{name}"')
    try:
        yield name
    finally:
        with psycopg.connect(admin, autocommit=True) as con:
            con.execute(f'DROP DATABASE "{name}" WITH (FORCE)')


def pg_workspace(root: Path, database: str, destination: dict[str, Any], schema: str) -> Path:
    doc = {"version": 1,
           "sources": {"src": {"type": "postgres", "host": HOST, "user": "postgres", "database": database}},
           "destinations": {"wh": destination},
           "connections": {"c": {"source": "src", "destination": "wh", "destination_schema": schema}}}
    (root / "syncline.yaml").write_text(yaml.safe_dump(doc), encoding="utf-8")
    return root


def test_a_destination_schema_inside_the_source_database_is_never_read_back(
        tmp_path_factory: pytest.TempPathFactory, database: str) -> None:
    with psycopg.connect(f"host={HOST} port=5432 user=postgres dbname={database}", autocommit=True) as con:
        con.execute("CREATE TABLE public.orders (id int PRIMARY KEY, total int)")
        con.execute("INSERT INTO public.orders VALUES (1, 10), (2, 20)")
    same = pg_workspace(tmp_path_factory.mktemp("same"), database, {
        "type": "postgres", "host": HOST, "user": "postgres", "database": database}, "wh")
    for _ in range(2):  # the second sync must not discover the first one's tables
        synced = run("sync", "c", "--workspace", same)
        assert synced.exit_code == 0, synced.output
    assert discovered(same) == ["public.orders"]
    with psycopg.connect(f"host={HOST} port=5432 user=postgres dbname={database}") as con:
        tables = [r[0] for r in con.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = 'wh' ORDER BY 1")]
    assert tables == ["_syncline_fence", "_syncline_loads", "_syncline_quarantine", "_syncline_state", "orders"]
    checked = run("verify", "c", "--json", "--workspace", same)
    assert checked.exit_code == 0, checked.output
    assert [v["stream"] for v in json.loads(checked.stdout)] == ["public.orders"]
    # named in `schemas:`, the workspace's own destination schema is still not offered
    doc = yaml.safe_load((same / "syncline.yaml").read_text(encoding="utf-8"))
    doc["sources"]["src"]["schemas"] = ["public", "wh"]
    (same / "syncline.yaml").write_text(yaml.safe_dump(doc), encoding="utf-8")
    assert discovered(same) == ["public.orders"]
    # another workspace reading the same database: a schema holding _syncline_state is a
    # destination of some connection, and its tables are not offered either
    other = pg_workspace(tmp_path_factory.mktemp("other"), database,
                         {"type": "duckdb", "path": "wh.duckdb"}, "copy")
    assert discovered(other) == ["public.orders"]


def test_verify_reports_a_broken_destination_table_without_a_traceback(tmp_path: Path) -> None:
    make_items(tmp_path / "src.db", 10)
    write_ws(tmp_path, {"items": {"mode": "incremental", "write": "merge", "cursor": "updated_at"}})
    assert run("sync", "c", "--workspace", tmp_path).exit_code == 0
    con = duckdb.connect(str(tmp_path / "wh.duckdb"))
    con.execute("ALTER TABLE dst.items DROP COLUMN id")  # the key the verifier compares by
    con.close()
    result = run("verify", "c", "--workspace", tmp_path)
    assert result.exit_code == 1, result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)
    err = " ".join(result.stderr.split())
    assert "connection 'c', stream 'items': verifying table dst.items failed" in err
    assert "fix:" in err
