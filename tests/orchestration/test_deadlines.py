"""Under `up`: a run past max_run_duration is stopped and fails, a cancelled run that does not
stop at a batch is killed after the grace period (its worker replaced), a run that ends on a
transient failure runs again per run_retry, and a worker over --max-memory is replaced between
runs."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

from upkit import Up, runs, store_of, wait_for, workspace

from syncfixtures import dest_query


def cli(root: Path, *args: str, up: Up) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "syncline", *args, "-w", str(root)],
                          env={**os.environ, "SYNCLINE_CLOCK": f"file:{up.clock}"},
                          capture_output=True, text=True, timeout=120)


def test_a_run_past_max_run_duration_is_stopped_and_fails(tmp_path: Path, running: list[Up]) -> None:
    up = Up(workspace(tmp_path, rows=3000, pause_s=0.05, schedule="manual", max_run_duration="2s"))
    running.append(up)
    up.ready()
    began = time.monotonic()
    done = cli(tmp_path, "trigger", "c", "--wait", "--timeout", "60", up=up)
    assert done.returncode == 1 and time.monotonic() - began < 30
    [run] = runs(tmp_path)
    assert (run.status, run.failure_class) == ("failed", "interrupted")
    assert "ran longer than max_run_duration 2s" in (run.failure_message or "")
    assert up.stop() == 0
    [(rows, keys)] = dest_query(tmp_path, "SELECT count(*), count(DISTINCT id) FROM dst.ticks")
    assert rows == keys and 0 < rows < 3000 and rows % 10 == 0
    assert len(runs(tmp_path)) == 1  # not run again


def test_a_cancelled_run_stuck_outside_a_batch_is_killed_after_the_grace(
        tmp_path: Path, running: list[Up]) -> None:
    ws = workspace(tmp_path, schedule="manual", source={"plan_pause_s": 120})
    up = Up(ws, env={"SYNCLINE_CANCEL_GRACE_S": "2"})
    running.append(up)
    up.ready()
    assert cli(tmp_path, "trigger", "c", up=up).returncode == 0
    run = wait_for(lambda: runs(tmp_path) and runs(tmp_path)[0], "the run to start")
    with store_of(tmp_path) as store:
        [first] = store.workers().list()
    assert cli(tmp_path, "cancel", str(run.id), up=up).returncode == 0
    wait_for(lambda: runs(tmp_path)[0].status == "cancelled", "the kill", 20)
    assert "killed after 2s" in (runs(tmp_path)[0].failure_message or "")
    with store_of(tmp_path) as store:
        wait_for(lambda: [w for w in store.workers().list() if w.name != first.name], "a new worker")
        ended = {w.name: w for w in store.workers().list(include_ended=True)}[first.name]
    assert "did not stop within 2s of its cancel" in (ended.note or "")
    wait_for(lambda: "a run did not stop in time" in up.output(), "the supervisor's word")
    assert up.stop() == 0


def test_a_transient_failure_runs_again_per_run_retry_and_no_more(
        tmp_path: Path, running: list[Up]) -> None:
    ws = workspace(tmp_path, schedule="manual", source={"fail": True}, max_attempts=1,
                   run_retry={"max_runs": 3, "backoff": "1m"})
    up = Up(ws)
    running.append(up)
    up.ready()
    assert cli(tmp_path, "trigger", "c", up=up).returncode == 0
    wait_for(lambda: len(runs(tmp_path)) == 1 and runs(tmp_path)[0].status == "failed", "run 1")
    [waiting] = json.loads(cli(tmp_path, "queue", "--json", up=up).stdout)
    assert (waiting["trigger"], waiting["why"]) == ("retry", "due in 60s")
    up.move_clock(61)
    wait_for(lambda: len(runs(tmp_path)) == 2 and runs(tmp_path)[1].status == "failed", "run 2")
    up.move_clock(61 + 119)  # the backoff doubles: 2m after run 2
    time.sleep(1.5)
    assert len(runs(tmp_path)) == 2
    up.move_clock(61 + 121)
    wait_for(lambda: len(runs(tmp_path)) == 3 and runs(tmp_path)[2].status == "failed", "run 3")
    up.move_clock(3600)
    time.sleep(1.5)
    assert [r.trigger for r in runs(tmp_path)] == ["manual", "retry", "retry"]
    assert cli(tmp_path, "queue", "--json", up=up).stdout.strip() == "[]"
    assert up.stop() == 0


def test_a_worker_over_max_memory_is_replaced_between_runs(tmp_path: Path, running: list[Up]) -> None:
    up = Up(workspace(tmp_path, schedule="manual"), "--max-memory", "1MiB")
    running.append(up)
    up.ready()
    for _ in (1, 2):
        done = cli(tmp_path, "trigger", "c", "--wait", "--timeout", "60", up=up)
        assert done.returncode == 0, done.stderr
    assert [r.status for r in runs(tmp_path)] == ["succeeded", "succeeded"]
    with store_of(tmp_path) as store:
        wait_for(lambda: len([w for w in store.workers().list(include_ended=True)
                              if (w.note or "").startswith("recycled")]) == 2, "two recycled")
        wait_for(lambda: len(store.workers().list()) == 1, "a fresh worker")
    assert "over --max-memory" in up.output()
    assert up.stop() == 0
