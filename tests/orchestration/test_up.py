"""`syncline up` as a user runs it, in a subprocess on a loopback port, its clock driven by the
test: scheduled runs happen on time, the HTTP server serves health, readiness and the status
document, SIGTERM mid-run stops cleanly (the run queued again and finished by the next start),
a crashed worker is restarted and recorded, a killed `up` loses no queued run, and bad input
gets a clear error."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from upkit import Up, committed, runs, store_of, wait_for, workspace

from syncline.orchestration.queue import RunRequest

from syncfixtures import dest_query


def test_scheduled_runs_happen_on_time_and_the_status_api_is_status_json(
        tmp_path: Path, running: list[Up]) -> None:
    up = Up(workspace(tmp_path))
    running.append(up)
    up.ready()
    assert up.get("/healthz").json() == {"status": "ok"}
    wait_for(lambda: [r.status for r in runs(tmp_path)] == ["succeeded"], "the first run")
    first = runs(tmp_path)[0]
    assert (first.trigger, first.revision) == ("schedule", 1)
    up.move_clock(40)
    time.sleep(2)  # many ticks: not due yet
    assert len(runs(tmp_path)) == 1
    up.move_clock(61)
    wait_for(lambda: [r.status for r in runs(tmp_path)] == ["succeeded"] * 2, "the second run")
    served = up.get("/api/v1/status").json()
    printed = subprocess.run([sys.executable, "-m", "syncline", "status", "-w", str(tmp_path),
                              "--json"], capture_output=True, text=True,
                             env={**os.environ, "SYNCLINE_CLOCK": f"file:{up.clock}"})
    assert served == json.loads(printed.stdout)
    assert served[0]["last_run"]["id"] == runs(tmp_path)[-1].id
    readiness = up.get("/readyz").json()
    assert readiness["ready"] and readiness["checks"]["workers"]["alive"] == 1
    assert up.stop() == 0
    assert "stopped" in up.output()
    assert dest_query(tmp_path, "SELECT count(*), count(DISTINCT id) FROM dst.ticks") == [(30, 30)]


def test_sigterm_mid_run_stops_cleanly_and_the_next_start_finishes_the_run(
        tmp_path: Path, running: list[Up]) -> None:
    up = Up(workspace(tmp_path, rows=2000, gate=True))
    running.append(up)
    wait_for(lambda: committed(tmp_path), "the run to commit a first batch")  # then at the gate
    began = time.monotonic()
    assert up.stop() == 0
    assert time.monotonic() - began < 30
    [stopped] = runs(tmp_path)
    assert stopped.status == "interrupted"
    [(rows, keys)] = dest_query(tmp_path, "SELECT count(*), count(DISTINCT id) FROM dst.ticks")
    assert rows == keys and 0 < rows < 2000 and rows % 10 == 0  # whole batches only
    with store_of(tmp_path) as store:
        [waiting] = store.queue().entries(("queued",))
        assert waiting.connection == "c"
    again = Up(tmp_path)
    running.append(again)
    again.open_gate()
    wait_for(lambda: runs(tmp_path)[-1].status == "succeeded", "the run queued again", 60)
    assert again.stop() == 0
    assert dest_query(tmp_path, "SELECT count(*), count(DISTINCT id) FROM dst.ticks") == [(2000, 2000)]


def test_a_worker_killed_mid_run_is_restarted_and_its_run_resumed(tmp_path: Path,
                                                                  running: list[Up]) -> None:
    up = Up(workspace(tmp_path, rows=2000, schedule="manual", gate=True))
    running.append(up)
    up.ready()
    with store_of(tmp_path) as store:
        [worker] = store.workers().list()
        entry = store.queue().put(RunRequest("c", "manual"))
        wait_for(lambda: committed(tmp_path), "the run to commit")
        os.kill(worker.pid, signal.SIGKILL)
        reborn = wait_for(lambda: [w for w in store.workers().list() if w.name != worker.name],
                          "a new worker")
        crashed = {w.name: w for w in store.workers().list(include_ended=True)}[worker.name]
        assert crashed.state == "crashed" and "killed by signal 9" in (crashed.note or "")
    up.open_gate()
    wait_for(lambda: runs(tmp_path)[-1].status == "succeeded", "the run queued again", 60)
    assert reborn[0].pid != worker.pid
    assert "died (killed by signal 9); restarting in 1s" in up.output()
    assert f"c: run 1 lost; queued again as entry {entry.id + 1}" in up.output()
    first, second = runs(tmp_path)
    assert first.status == "crashed" and 0 < second.rows_read < 2000  # from the checkpoint on
    assert dest_query(tmp_path, "SELECT count(*), count(DISTINCT id) FROM dst.ticks") == [(2000, 2000)]
    assert up.stop() == 0
    with store_of(tmp_path) as store:  # the event log tells the story
        told = [(e.kind, e.run) for e in store.events().read(kinds=["run.", "worker."])]
    assert told == [("run.queued", None), ("run.started", 1), ("worker.lost", None),
                    ("run.crashed", 1), ("run.queued", None), ("run.started", 2),
                    ("run.succeeded", 2)], told


def test_a_killed_up_loses_no_queued_run(tmp_path: Path, running: list[Up]) -> None:
    up = Up(workspace(tmp_path, rows=2000, schedule="manual", gate=True))
    running.append(up)
    up.ready()
    with store_of(tmp_path) as store:
        store.queue().put(RunRequest("c", "manual"))
        store.queue().put(RunRequest("c", "manual", full_refresh=True))  # waits for the first
    wait_for(lambda: committed(tmp_path), "the first run to commit")
    up.proc.send_signal(signal.SIGKILL)
    up.proc.wait(10)
    again = Up(tmp_path)
    running.append(again)
    again.open_gate()
    wait_for(lambda: [r.status for r in runs(tmp_path)][-2:] == ["succeeded", "succeeded"],
             "both runs after the restart", 90)
    statuses = [r.status for r in runs(tmp_path)]
    assert statuses[0] in ("interrupted", "crashed")  # its worker stopped it when up died
    assert dest_query(tmp_path, "SELECT count(*), count(DISTINCT id) FROM dst.ticks "
                      "WHERE NOT _syncline_deleted") == [(2000, 2000)]
    assert again.stop() == 0


def test_an_invalid_edit_keeps_the_last_good_revision_running(tmp_path: Path, running: list[Up]) -> None:
    up = Up(workspace(tmp_path))
    running.append(up)
    wait_for(lambda: len(runs(tmp_path)) == 1, "the first run")
    (tmp_path / "syncline.yaml").write_text("version: 1\nconnections: [\n")
    wait_for(lambda: "still running the last good revision" in up.output(), "the error")
    assert "not valid YAML" in up.output()
    with store_of(tmp_path) as store:
        [invalid] = store.events().read(kinds=["config.invalid"])
        assert "not valid YAML" in invalid.body["message"] and invalid.severity == "error"
    up.move_clock(61)
    wait_for(lambda: len(runs(tmp_path)) == 2, "a run of the last good revision")
    with store_of(tmp_path) as store:
        assert store.revisions().count() == 1
    assert up.stop() == 0


@pytest.mark.parametrize(("args", "message"), [
    (["--host", "0.0.0.0"], "--host 0.0.0.0 is not a loopback address"),
    (["--port", "PORT_IN_USE"], "is in use by another process"),
])
def test_bad_addresses_are_refused_clearly(tmp_path: Path, args: list[str], message: str) -> None:
    workspace(tmp_path)
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = str(taken.getsockname()[1])
        argv = [a.replace("PORT_IN_USE", port) for a in args]
        done = subprocess.run([sys.executable, "-m", "syncline", "up", "-w", str(tmp_path), *argv],
                              capture_output=True, text=True, timeout=60)
    assert done.returncode == 2
    assert message in done.stderr and "fix:" in done.stderr
    assert runs(tmp_path) == [] if (tmp_path / ".syncline").exists() else True
