"""Driving a running `up` from another shell: `trigger [--wait]`, `pause`/`resume`, `cancel`,
`queue` and `workers`, and `sync` beside `up` (its run held in the queue, the scheduler's tick
coalesced into it)."""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import yaml
from upkit import Up, committed, runs, store_of, wait_for, workspace

from syncline.orchestration.scheduler import Scheduler

from syncfixtures import dest_query


def cli(root: Path, *args: str, up: Up | None = None, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, **({"SYNCLINE_CLOCK": f"file:{up.clock}"} if up else {})}
    return subprocess.run([sys.executable, "-m", "syncline", *args, "-w", str(root)], env=env,
                          capture_output=True, text=True, timeout=timeout)


def as_json(done: subprocess.CompletedProcess[str]) -> Any:
    assert done.stdout, done.stderr
    return json.loads(done.stdout)


def test_trigger_wait_exits_with_the_outcome_and_times_out_clearly(
        tmp_path: Path, running: list[Up]) -> None:
    up = Up(workspace(tmp_path, rows=2000, schedule="manual", gate=True))
    running.append(up)
    up.ready()
    slow = cli(tmp_path, "trigger", "c", "--wait", "--timeout", "1", up=up)  # held at the gate
    assert slow.returncode == 1 and "still running after 1s: the run goes on" in slow.stderr
    entry = as_json(cli(tmp_path, "trigger", "c", "--json", up=up))  # queued behind the first
    assert entry["coalesced"] is False and entry["state"] == "queued"
    waiting = as_json(cli(tmp_path, "queue", "--json", up=up))
    [now, later] = waiting
    assert (now["why"], now["trigger"]) == ("running", "manual") and now["run_id"] is not None
    assert later["why"] == f"waits for run {now['run_id']} of c (on {now['worker']}) to end"
    [worker] = as_json(cli(tmp_path, "workers", "--json", up=up))
    assert (worker["state"], worker["run_id"], worker["region"], worker["queue"]) == (
        "running", now["run_id"], "default", "store")
    again = as_json(cli(tmp_path, "trigger", "c", "--json", up=up))  # the same run asked again
    assert (again["entry"], again["coalesced"]) == (entry["entry"], True)
    up.open_gate()
    done = cli(tmp_path, "trigger", "c", "--wait", up=up)
    assert done.returncode == 0, done.stderr
    assert "succeeded" in done.stdout
    assert [r.trigger for r in runs(tmp_path)][:2] == ["manual", "manual"]
    unknown = cli(tmp_path, "trigger", "nope", up=up)
    assert unknown.returncode == 2 and "no connection named 'nope'" in unknown.stderr
    assert up.stop() == 0


def test_cancel_stops_a_running_run_which_is_not_run_again(tmp_path: Path, running: list[Up]) -> None:
    up = Up(workspace(tmp_path, rows=2000, schedule="manual", gate=True))
    running.append(up)
    up.ready()
    assert cli(tmp_path, "trigger", "c", up=up).returncode == 0
    wait_for(lambda: committed(tmp_path), "a first commit")  # then held at the gate
    [run] = runs(tmp_path)
    asked = cli(tmp_path, "cancel", str(run.id), up=up)
    assert asked.returncode == 0 and "to stop it at its next batch" in asked.stdout
    wait_for(lambda: runs(tmp_path)[0].status == "cancelled", "the run to stop")
    assert "cancelled by" in (runs(tmp_path)[0].failure_message or "")
    time.sleep(1.5)
    assert len(runs(tmp_path)) == 1 and as_json(cli(tmp_path, "queue", "--json", up=up)) == []
    assert up.stop() == 0
    [(rows, keys)] = dest_query(tmp_path, "SELECT count(*), count(DISTINCT id) FROM dst.ticks")
    assert rows == keys and 0 < rows < 2000 and rows % 10 == 0  # whole batches only
    again = cli(tmp_path, "cancel", str(run.id))
    assert again.returncode == 2 and f"run {run.id} is not running (it is cancelled)" in again.stderr


def test_a_paused_connection_is_not_scheduled_until_resumed_and_a_new_revision_keeps_it_paused(
        tmp_path: Path, running: list[Up]) -> None:
    up = Up(workspace(tmp_path))
    running.append(up)
    wait_for(lambda: [r.status for r in runs(tmp_path)] == ["succeeded"], "the first run")
    assert cli(tmp_path, "pause", "c", up=up).stdout.strip() == "c paused"
    doc = yaml.safe_load((tmp_path / "syncline.yaml").read_text())
    doc["connections"]["c"]["max_attempts"] = 2  # a new revision: still paused
    (tmp_path / "syncline.yaml").write_text(yaml.safe_dump(doc))
    wait_for(lambda: "config revision 2 applied" in up.output(), "the new revision")
    up.move_clock(61)
    time.sleep(2.5)
    assert len(runs(tmp_path)) == 1
    assert as_json(cli(tmp_path, "status", "--json", up=up))[0]["health"] == "paused"
    assert cli(tmp_path, "resume", "c", up=up).stdout.strip() == "c resumed"
    wait_for(lambda: len(runs(tmp_path)) == 2, "the catch-up run after resume")
    assert runs(tmp_path)[1].revision == 2
    assert up.stop() == 0


def test_sync_beside_up_is_held_in_the_queue_and_the_schedule_coalesces_into_it(tmp_path: Path) -> None:
    workspace(tmp_path, rows=2000, gate=True)
    sync = subprocess.Popen([sys.executable, "-m", "syncline", "sync", "c", "-w", str(tmp_path)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        wait_for(lambda: committed(tmp_path), "the sync to commit")
        [held] = as_json(cli(tmp_path, "queue", "--json"))
        assert held["why"] == "running" and held["worker"].startswith("sync-")
        workers = as_json(cli(tmp_path, "workers", "--json"))
        assert [(w["queue"], w["state"], w["run_id"]) for w in workers] == [
            ("inline", "running", held["run_id"])]
        with store_of(tmp_path) as store:
            # `up`'s scheduler, two minutes on: the connection (every 1m) is due during the sync
            tick = Scheduler(store, store.queue()).tick(dt.datetime.now(dt.UTC) + dt.timedelta(minutes=2))
        assert tick.queued == [] and [e.id for e in tick.coalesced] == [held["entry"]]
        (tmp_path / "gate").touch()
        assert sync.wait(120) == 0
    finally:
        if sync.poll() is None:
            sync.kill()
    assert as_json(cli(tmp_path, "queue", "--json")) == []
    assert [r.status for r in runs(tmp_path)] == ["succeeded"]


def test_runs_into_one_duckdb_file_never_overlap_and_max_concurrent_runs_holds(
        tmp_path: Path, running: list[Up]) -> None:
    workspace(tmp_path, rows=600, pause_s=0.02, schedule="manual")
    doc = yaml.safe_load((tmp_path / "syncline.yaml").read_text())
    doc["sources"]["slow"]["max_concurrent_runs"] = 2
    doc["destinations"]["other"] = {"type": "duckdb", "path": "other.duckdb"}
    base = doc["connections"]["c"]
    doc["connections"] = {
        "a": {**base, "destination_schema": "a"}, "b": {**base, "destination_schema": "b"},
        "x": {**base, "destination": "other", "destination_schema": "x"},
        "y": {**base, "destination": "other", "destination_schema": "y"}}
    (tmp_path / "syncline.yaml").write_text(yaml.safe_dump(doc))
    for name in "abxy":  # queued before `up` starts: its three workers find four due runs
        assert cli(tmp_path, "trigger", name).returncode == 0
    up = Up(tmp_path, "--workers", "3", clocked=False)  # run times by the real clock
    running.append(up)
    wait_for(lambda: [r.status for r in runs(tmp_path)] == ["succeeded"] * 4, "all four runs", 90)
    done = runs(tmp_path)
    assert all(r.attempts == 1 for r in done)  # no run met a locked file
    spans = {r.connection: (r.started_at, r.ended_at) for r in done}
    for one, two in (("a", "b"), ("x", "y")):  # same file: one after the other
        (s1, e1), (s2, e2) = spans[one], spans[two]
        assert e1 <= s2 or e2 <= s1, (one, two, spans)
    assert len({s for s, _ in spans.values()}) == 4
    for r in done:  # the source: at most two at a time
        at_once = [o for o in done if o.started_at <= r.started_at < (o.ended_at or r.started_at)]
        assert len(at_once) <= 2, spans
    assert up.stop() == 0
