"""Run records tell the truth: what a failed, interrupted or killed run committed, and its status."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

from syncline.store.records import HEALTH_STATES, RUN_STATUSES

from syncfixtures import dest_query, failpoints_on, make_items, run_sync, write_ws

STREAM = {"items": {"mode": "incremental", "write": "append", "cursor": "updated_at"}}


def _cli(root: Path, *args: str, failpoints: str | None = None) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SYNCLINE_")}
    env["SYNCLINE_RETRY_BASE_S"] = "0"
    if failpoints:
        env["SYNCLINE_FAILPOINTS"] = failpoints
    return subprocess.run([sys.executable, "-m", "syncline", *args, "-w", str(root)],
                          env=env, capture_output=True, text=True, timeout=120)


def _runs_json(root: Path) -> list[dict[str, Any]]:
    done = _cli(root, "runs", "c", "--json")
    assert done.returncode == 0, done.stderr
    runs: list[dict[str, Any]] = json.loads(done.stdout)
    return runs


def test_a_failed_run_records_the_rows_it_committed_before_the_failure(tmp_path: Path) -> None:
    make_items(tmp_path / "src.db", 250)
    write_ws(tmp_path, STREAM, batch_size=50)
    with failpoints_on("after_commit:3=raise"):
        failed = run_sync(tmp_path)
    assert failed.status == "failed"
    run = _runs_json(tmp_path)[0]
    assert run["status"] == "failed"
    assert run["rows_committed"] == 150 == dest_query(tmp_path, "SELECT count(*) FROM dst.items")[0][0]
    assert run["streams"][0]["status"] == "failed" and run["streams"][0]["rows_committed"] == 150


def test_an_interrupted_run_is_interrupted_with_its_committed_rows(tmp_path: Path) -> None:
    make_items(tmp_path / "src.db", 250)
    write_ws(tmp_path, STREAM, batch_size=50)
    stopped = _cli(tmp_path, "sync", "c", failpoints="after_commit:2=term")
    assert stopped.returncode == 128 + signal.SIGTERM, stopped.stderr  # 143, as a shell says
    assert "run 1 interrupted after 1 attempt(s)" in stopped.stderr
    run = _runs_json(tmp_path)[0]
    assert (run["status"], run["failure_class"], run["rows_committed"]) == ("interrupted", "interrupted", 100)
    status = json.loads(_cli(tmp_path, "status", "--json").stdout)[0]
    assert status["health"] == "warning"  # stopped at a commit; the next run resumes there
    ctrl_c = _cli(tmp_path, "sync", "c", failpoints="after_commit:1=int")
    assert ctrl_c.returncode == 130 and "run 2 interrupted" in ctrl_c.stderr, ctrl_c.stderr


def test_a_killed_run_is_never_shown_running_and_its_commits_are_counted(tmp_path: Path) -> None:
    make_items(tmp_path / "src.db", 250)
    write_ws(tmp_path, STREAM, batch_size=50)
    killed = _cli(tmp_path, "sync", "c", failpoints="after_commit:4=kill")
    assert killed.returncode == -9
    status = json.loads(_cli(tmp_path, "status", "--json").stdout)[0]
    assert status["health"] == "failing" and status["last_run"]["status"] == "crashed"
    assert run_sync(tmp_path).status == "succeeded"
    crashed, done = _runs_json(tmp_path)[1], _runs_json(tmp_path)[0]
    assert crashed["status"] == "crashed" and crashed["rows_committed"] == 200
    assert done["rows_committed"] == 50
    assert dest_query(tmp_path, "SELECT count(*), count(DISTINCT id) FROM dst.items") == [(250, 250)]


def test_the_vocabularies_are_documented_verbatim() -> None:
    docs = (Path(__file__).parents[2] / "docs" / "cli.md").read_text(encoding="utf-8")
    for word in sorted(RUN_STATUSES | HEALTH_STATES):
        assert f"`{word}`" in docs, f"`{word}` is not documented in docs/cli.md"
