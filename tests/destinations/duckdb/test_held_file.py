"""A DuckDB file another process holds open (a BI tool, a notebook): the run waits
`lock_timeout_s` for it, then fails naming that process and the way out."""

from __future__ import annotations

import json
import time
from pathlib import Path

import duckdb
import yaml
from typer.testing import CliRunner

import syncline.cli.app as cli

from syncfixtures import holding_lock, make_items, write_ws

STREAMS = {"items": {"mode": "incremental", "write": "merge", "cursor": "updated_at"}}


def workspace(root: Path, lock_timeout_s: float | None) -> Path:
    make_items(root / "src.db", 20)
    write_ws(root, STREAMS, max_attempts=3)
    doc = yaml.safe_load((root / "syncline.yaml").read_text())
    if lock_timeout_s is not None:
        doc["destinations"]["wh"]["lock_timeout_s"] = lock_timeout_s
    (root / "syncline.yaml").write_text(yaml.safe_dump(doc))
    duckdb.connect(str(root / "wh.duckdb")).close()
    return root


def runs(root: Path) -> list[dict[str, object]]:
    listed = CliRunner().invoke(cli.app, ["runs", "c", "-w", str(root), "--json"])
    rows: list[dict[str, object]] = json.loads(listed.stdout)
    return rows


def test_a_held_file_fails_after_the_wait_naming_the_holder_and_the_fix(tmp_path: Path) -> None:
    root = workspace(tmp_path, 1)
    with holding_lock(root / "wh.duckdb", read_only=True) as holder:
        started = time.monotonic()
        done = CliRunner().invoke(cli.app, ["sync", "c", "-w", str(root)])
        took = time.monotonic() - started
    assert done.exit_code == 1, done.output
    text = " ".join(done.stderr.split())
    assert f", PID {holder.pid}) holds" in text and "after waiting 1 s" in text, text
    assert "lock_timeout_s" in text and "wait for the other sync" not in text, text
    assert took >= 1, took  # it waited lock_timeout_s, and (below) in one attempt, not one per retry
    [run] = runs(root)
    assert run["status"] == "failed" and run["attempts"] == 1, run


def test_a_file_released_within_the_wait_is_written(tmp_path: Path) -> None:
    root = workspace(tmp_path, None)  # the default wait, 60 s
    with holding_lock(root / "wh.duckdb", seconds=2, read_only=True):
        done = CliRunner().invoke(cli.app, ["sync", "c", "-w", str(root)])
    assert done.exit_code == 0, done.output
    [run] = runs(root)
    assert run["status"] == "succeeded" and run["attempts"] == 1, run
    with duckdb.connect(str(root / "wh.duckdb"), read_only=True) as con:
        assert con.execute("SELECT count(*) FROM dst.items").fetchone() == (20,)
