"""Names in the destination: `destination_schema:` and `table:` are normalized as stream names
are, a dotted `table:` in the connection's schema names that table, and a schema or table
already loaded under its written name keeps it."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any

import duckdb
import psycopg
import pytest
import yaml
from typer.testing import CliRunner

import syncline.engine.plan as plan_module
from syncline.cli.app import app

from services import HOST, postgres_schema
from syncfixtures import run_sync


def workspace(root: Path, streams: dict[str, Any], schema: str | None = None) -> Path:
    con = sqlite3.connect(root / "src.db")
    con.executescript("CREATE TABLE IF NOT EXISTS lines (id INTEGER PRIMARY KEY, v TEXT);"
                      "CREATE TABLE IF NOT EXISTS heads (id INTEGER PRIMARY KEY, v TEXT);"
                      "INSERT OR IGNORE INTO lines VALUES (1, 'x'), (2, 'y');"
                      "INSERT OR IGNORE INTO heads VALUES (1, 'h');")
    con.close()
    conn: dict[str, Any] = {"source": "src", "destination": "wh", "streams": streams, "max_attempts": 1}
    if schema is not None:
        conn["destination_schema"] = schema
    (root / "syncline.yaml").write_text(yaml.safe_dump({
        "version": 1, "sources": {"src": {"type": "sqlite", "path": "src.db"}},
        "destinations": {"wh": {"type": "duckdb", "path": "wh.duckdb"}}, "connections": {"c": conn}}))
    return root


def tables(root: Path) -> list[tuple[str, str]]:
    with duckdb.connect(str(root / "wh.duckdb"), read_only=True) as con:
        rows = con.execute("SELECT table_schema, table_name FROM information_schema.tables "
                           "WHERE table_name NOT LIKE '\\_syncline%' ESCAPE '\\' ORDER BY 1, 2").fetchall()
    return [(str(s), str(t)) for s, t in rows]


def test_schema_and_table_names_are_normalized_and_a_dotted_table_names_its_table(tmp_path: Path) -> None:
    root = workspace(tmp_path, {"lines": {"table": "Sales-EU.Order Lines"}, "heads": {"table": "OrderHeads"}},
                     schema="Sales-EU")
    assert run_sync(root).status == "succeeded"
    assert tables(root) == [("sales_eu", "order_heads"), ("sales_eu", "order_lines")]
    plan = json.loads(CliRunner().invoke(app, ["check", "c", "-w", str(root), "--json"]).stdout)
    [connection] = [o for o in plan if o["kind"] == "connection"]
    assert sorted(p["table"] for p in connection["plan"]) == ["order_heads", "order_lines"]


def test_a_dotted_table_in_another_schema_lands_there_with_its_state_at_home(tmp_path: Path) -> None:
    root = workspace(tmp_path, {"lines": {"table": "Analytics.Order Lines"}, "heads": {}})
    assert run_sync(root).status == "succeeded"
    assert tables(root) == [("analytics", "order_lines"), ("c", "heads")]  # never a dotted name
    con = sqlite3.connect(root / "src.db")
    con.execute("INSERT INTO lines VALUES (3, 'z')")
    con.commit()
    con.close()
    again = run_sync(root)  # incremental by the state kept in the connection's schema
    assert again.status == "succeeded"
    with duckdb.connect(str(root / "wh.duckdb"), read_only=True) as con:
        assert con.execute("SELECT id, v FROM analytics.order_lines ORDER BY id").fetchall() == [
            (1, "x"), (2, "y"), (3, "z")]
        [(state,)] = con.execute("SELECT state FROM c._syncline_state WHERE stream = 'lines'").fetchall()
    assert json.loads(state)["table_schema"] == "analytics" and json.loads(state)["table"] == "order_lines"
    rebuilt = run_sync(root, full_refresh=True)  # built beside, in its schema, and swapped in
    assert rebuilt.status == "succeeded" and rebuilt.rows_committed == 4, rebuilt.error
    assert tables(root) == [("analytics", "order_lines"), ("c", "heads")]
    verified = CliRunner().invoke(app, ["verify", "c", "-w", str(root), "--json"])
    assert verified.exit_code == 0 and all(v["ok"] for v in json.loads(verified.stdout)), verified.output
    plan = json.loads(CliRunner().invoke(app, ["check", "c", "-w", str(root), "--json"]).stdout)
    [connection] = [o for o in plan if o["kind"] == "connection"]
    assert sorted(p["table"] for p in connection["plan"]) == ["analytics.order_lines", "heads"]


def test_a_dotted_table_in_another_postgresql_schema(tmp_path: Path) -> None:
    with postgres_schema("syncline_names") as home, postgres_schema("syncline_other") as other:
        root = workspace(tmp_path, {"lines": {"table": f"{other}.order_lines"}, "heads": {}}, schema=home)
        doc = yaml.safe_load((root / "syncline.yaml").read_text())
        doc["destinations"]["wh"] = {"type": "postgres", "host": HOST, "port": 5432, "user": "postgres",
                                     "database": "test"}
        (root / "syncline.yaml").write_text(yaml.safe_dump(doc))
        for _ in range(2):
            assert run_sync(root).status == "succeeded"
        with psycopg.connect(f"host={HOST} port=5432 user=postgres dbname=test") as con:
            assert con.execute(f"SELECT id, v FROM {other}.order_lines ORDER BY id").fetchall() == [
                (1, "x"), (2, "y")]
            assert con.execute(f"SELECT count(*) FROM {home}.heads").fetchone() == (1,)
            names = {r[0] for r in con.execute(
                "SELECT table_name FROM information_schema.tables WHERE table_schema = %s", [other])}
        assert names == {"order_lines"}  # the state, loads and quarantine stay at home


def test_a_schema_and_table_loaded_under_their_written_names_keep_them(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    root = workspace(tmp_path, {"lines": {"table": "Order Lines"}}, schema="Sales-EU")
    with monkeypatch.context() as m:  # as a version that used names as written loaded them
        m.setattr(plan_module, "normalize_table_name", lambda name: name)
        assert run_sync(root).status == "succeeded"
    assert tables(root) == [("Sales-EU", "Order Lines")]
    con = sqlite3.connect(root / "src.db")
    con.execute("INSERT INTO lines VALUES (3, 'z')")
    con.commit()
    con.close()
    again = run_sync(root)
    assert again.status == "succeeded" and again.rows_committed >= 1
    assert tables(root) == [("Sales-EU", "Order Lines")]  # no second schema, no second table
    with duckdb.connect(str(root / "wh.duckdb"), read_only=True) as con:
        assert con.execute('SELECT count(*) FROM "Sales-EU"."Order Lines"').fetchone() == (3,)
