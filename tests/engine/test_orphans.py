"""A table renamed or dropped at the source, or a stream taken out of `streams:`, leaves its
loaded table behind: the run says so and ends `warning`, and `status` names the orphaned table
until the stream's state is reset."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any

import yaml
from typer.testing import CliRunner

from syncline.cli.app import app


def cli(root: Path, *args: str) -> tuple[int, Any]:
    done = CliRunner().invoke(app, [*args, "-w", str(root), "--json"])
    return done.exit_code, json.loads(done.stdout)


def workspace(root: Path, streams: dict[str, Any] | None = None) -> Path:
    con = sqlite3.connect(root / "src.db")
    con.executescript("CREATE TABLE IF NOT EXISTS a (id INTEGER PRIMARY KEY, v TEXT);"
                      "CREATE TABLE IF NOT EXISTS b (id INTEGER PRIMARY KEY, v TEXT);"
                      "INSERT OR IGNORE INTO a VALUES (1, 'x'); INSERT OR IGNORE INTO b VALUES (1, 'y');")
    con.close()
    conn: dict[str, Any] = {"source": "src", "destination": "wh"}
    if streams is not None:
        conn["streams"] = streams
    (root / "syncline.yaml").write_text(yaml.safe_dump({
        "version": 1, "sources": {"src": {"type": "sqlite", "path": "src.db"}},
        "destinations": {"wh": {"type": "duckdb", "path": "wh.duckdb"}}, "connections": {"c": conn}}))
    return root


def orphaned(root: Path) -> list[dict[str, Any]]:
    code, rows = cli(root, "status")
    assert code == 0, rows
    found: list[dict[str, Any]] = rows[0]["orphaned"]
    return found


def test_a_table_renamed_at_the_source_leaves_an_orphan_named_until_reset(tmp_path: Path) -> None:
    root = workspace(tmp_path)
    assert cli(root, "sync", "c")[1]["status"] == "succeeded"
    con = sqlite3.connect(root / "src.db")
    con.execute("ALTER TABLE b RENAME TO b_renamed")
    con.close()
    code, run = cli(root, "sync", "c")
    assert code == 0 and run["status"] == "warning", run
    [stale] = [s for s in run["streams"] if s["status"] == "orphaned"]
    assert stale["stream"] == "b" and stale["table"] == "b"
    assert stale["message"].startswith("connection 'c', stream 'b': table c.b of stream 'b' is no "
                                       "longer updated: source 'src' has no such stream any more "
                                       "(renamed or dropped?)"), stale
    assert "syncline state c --reset b" in stale["message"]
    assert [(o["stream"], o["table"]) for o in orphaned(root)] == [("b", "b")]
    assert cli(root, "state", "c", "--reset", "b")[0] == 0
    assert cli(root, "sync", "c")[1]["status"] == "succeeded"
    assert orphaned(root) == []


def test_a_stream_taken_out_of_streams_is_orphaned_too(tmp_path: Path) -> None:
    root = workspace(tmp_path, {"a": {}, "b": {}})
    assert cli(root, "sync", "c")[1]["status"] == "succeeded"
    workspace(root, {"a": {}})
    code, run = cli(root, "sync", "c")
    assert code == 0 and run["status"] == "warning", run
    [o] = orphaned(root)
    assert o["stream"] == "b" and "the connection's `streams:` has no such stream any more" in o["message"]
