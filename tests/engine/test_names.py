"""Names in the destination: `destination_schema:` and `table:` are normalized as stream names
are, a dotted `table:` in the connection's schema names that table, and a schema or table
already loaded under its written name keeps it."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any

import duckdb
import pytest
import yaml
from typer.testing import CliRunner

import syncline.engine.plan as plan_module
from syncline.cli.app import app

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


def test_a_dotted_table_in_another_schema_fails_alone_naming_the_way_out(tmp_path: Path) -> None:
    root = workspace(tmp_path, {"lines": {"table": "analytics.order_lines"}, "heads": {}})
    run = run_sync(root)
    assert run.status == "partial" and [s.stream for s in run.streams] == ["heads"]
    text = str(run.error)
    assert ("`table: analytics.order_lines` names schema 'analytics', but every stream of a "
            "connection lands in the connection's one schema ('c')") in text, text
    assert "set `destination_schema: analytics` on this connection" in text
    assert ("analytics.order_lines" not in [t for _, t in tables(root)]) and tables(root) == [("c", "heads")]


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
