"""What planning refuses or decides before a sync writes anything, as a user sees it through
the command line: shared destination tables, normalized table names, keyless incremental."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import duckdb
import pytest
from typer.testing import CliRunner, Result

import syncline.cli.app as cli
import syncline.engine.plan as plan_module

from syncfixtures import dest_query, sqlite_script, write_ws


@pytest.fixture(autouse=True)
def _wide_console(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(cli.console, "width", 400)
    monkeypatch.setattr(cli.err_console, "width", 400)


def run(*args: str | Path) -> Result:
    return CliRunner().invoke(cli.app, [str(a) for a in args])


def one_line(text: str) -> str:
    return " ".join(text.split())


def dest_tables(root: Path, schema: str = "dst") -> list[str]:
    """User tables (not Syncline's own) of a destination schema; [] if nothing was written."""
    if not (root / "wh.duckdb").exists():
        return []
    con = duckdb.connect(str(root / "wh.duckdb"), read_only=True)
    try:
        rows = con.execute("SELECT table_name FROM information_schema.tables WHERE table_schema = ? "
                           "AND table_name NOT LIKE '\\_syncline\\_%' ESCAPE '\\' ORDER BY 1",
                           [schema]).fetchall()
    finally:
        con.close()
    return [r[0] for r in rows]


TWO_ORDERS = """
CREATE TABLE "app-orders" (id INTEGER PRIMARY KEY, total INTEGER);
CREATE TABLE app_orders (id INTEGER PRIMARY KEY, total INTEGER);
INSERT INTO "app-orders" VALUES (1, 10);
INSERT INTO app_orders VALUES (2, 20);
"""


@pytest.mark.parametrize("streams", [
    None,  # every discovered stream: `app-orders` and `app_orders` normalize alike
    {"a": {"table": "orders"}, "b": {"table": "orders"}},  # a repeated `table:`
], ids=["normalized-alike", "repeated-table"])
def test_two_streams_writing_one_table_are_refused_by_check_and_sync(
        tmp_path: Path, streams: dict[str, Any] | None) -> None:
    if streams is None:
        sqlite_script(tmp_path / "src.db", TWO_ORDERS)
        first, second, table = "app-orders", "app_orders", "app_orders"
    else:
        sqlite_script(tmp_path / "src.db", "CREATE TABLE a (id INTEGER PRIMARY KEY); "
                                          "CREATE TABLE b (id INTEGER PRIMARY KEY); INSERT INTO b VALUES (1);")
        first, second, table = "a", "b", "orders"
    write_ws(tmp_path, streams)
    message = f"streams '{first}' and '{second}' would both write table '{table}'"
    checked = run("check", "c", "--workspace", tmp_path)
    assert checked.exit_code == 2, checked.output
    assert message in one_line(checked.stdout)
    assert "table_names: schema_table" in one_line(checked.stdout)
    synced = run("sync", "c", "--workspace", tmp_path)
    assert synced.exit_code == 2, synced.output
    assert f"configuration error: connection 'c': {message}" in one_line(synced.stderr)
    assert "Traceback" not in synced.output
    assert dest_tables(tmp_path) == []  # refused before anything was written


def test_stream_names_that_are_not_plain_identifiers_get_snake_case_tables(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    db = tmp_path / "src.db"
    sqlite_script(db, 'CREATE TABLE "Order Items" (id INTEGER PRIMARY KEY, qty INTEGER); '
                      'INSERT INTO "Order Items" VALUES (1, 3);'
                      'CREATE TABLE "app-orders" (id INTEGER PRIMARY KEY, total INTEGER); '
                      'INSERT INTO "app-orders" VALUES (1, 10);')
    # `app-orders` was loaded before names were normalized, under its raw name
    write_ws(tmp_path, {"app-orders": {"table": "app-orders"}})
    with monkeypatch.context() as m:
        m.setattr(plan_module, "normalize_table_name", lambda name: name)
        assert run("sync", "c", "--workspace", tmp_path).exit_code == 0
    write_ws(tmp_path, None)
    checked = run("check", "c", "--workspace", tmp_path)
    assert checked.exit_code == 0, checked.output
    assert "Order Items → order_items" in one_line(checked.stdout)
    assert "app-orders → app-orders" in one_line(checked.stdout)
    synced = run("sync", "c", "--workspace", tmp_path)
    assert synced.exit_code == 0, synced.output
    assert dest_tables(tmp_path) == ["app-orders", "order_items"]  # the loaded table keeps its name
    assert dest_query(tmp_path, "SELECT id, qty FROM dst.order_items") == [(1, 3)]
    sqlite_script(db, 'INSERT INTO "app-orders" VALUES (2, 20);')
    assert run("sync", "c", "--workspace", tmp_path).exit_code == 0
    assert dest_query(tmp_path, 'SELECT id, total FROM dst."app-orders" ORDER BY id') == [(1, 10), (2, 20)]


def test_keyless_sqlite_table_stays_incremental_by_rowid(tmp_path: Path) -> None:
    db = tmp_path / "src.db"
    sqlite_script(db, "CREATE TABLE t (v TEXT, updated_at TIMESTAMP NOT NULL); "
                      "INSERT INTO t VALUES ('a', '2026-01-01 00:00:00'), ('b', '2026-01-01 00:00:00');")
    write_ws(tmp_path, {"t": {"mode": "incremental", "cursor": "updated_at"}})
    assert run("sync", "c", "--workspace", tmp_path).exit_code == 0
    assert dest_query(tmp_path, "SELECT v FROM dst.t ORDER BY v") == [("a",), ("b",)]
