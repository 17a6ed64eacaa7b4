"""Retention: what ended before the cutoff is forgotten (events, runs with their attempts and
stream stats, ended queue entries), except each connection's newest run and newest success."""

from __future__ import annotations

import datetime as dt
import json
import time
from pathlib import Path

from typer.testing import CliRunner

import syncline.cli.app as cli
from syncline.event_kinds import Event
from syncline.orchestration.queue import RunRequest
from syncline.store.leases import now_utc
from syncline.store.store import MetadataStore, StreamStats

from syncfixtures import make_items, write_ws


def run(store: MetadataStore, connection: str, status: str) -> int:
    run_id = store.start_run(connection)
    attempt = store.start_attempt(run_id, 1)
    store.end_attempt(attempt, "succeeded" if status == "succeeded" else "failed")
    now = dt.datetime.now(dt.UTC)
    store.record_stream(run_id, StreamStats(stream="s", table_name="s", mode="incremental",
                                            write="merge", status="succeeded", rows_read=1,
                                            rows_committed=1, rows_quarantined=0, bytes=1,
                                            duration_s=0.1, started_at=now, ended_at=now))
    store.end_run(run_id, status, rows_read=1, rows_committed=1, rows_quarantined=0, attempts=1)
    return run_id


def test_vacuum_forgets_the_old_and_keeps_what_status_needs(store_url: str) -> None:
    with MetadataStore(store_url) as store:
        ok = run(store, "a", "succeeded")
        gone = run(store, "a", "failed")
        newest = run(store, "a", "failed")
        only = run(store, "b", "warning")
        q = store.queue()
        done = q.claim("w", resources=None) if q.put(RunRequest("a")) else None
        assert done is not None
        q.finish(done.id)
        waiting = q.put(RunRequest("b"))
        box = store.outbox()
        box.put([("hook", "sent", "test", {}), ("hook", "waits", "test", {})], now_utc())
        box.delivered([box.heads(now_utc())["hook"][0].id], now_utc())
        assert store.vacuum(dt.timedelta(days=90)) == {  # nothing is old yet
            "runs": 0, "attempts": 0, "stream_runs": 0, "run_logs": 0, "events": 0, "run_queue": 0,
            "outbox": 0, "silences": 0}
        later = now_utc() + dt.timedelta(days=100)
        deleted = store.vacuum(dt.timedelta(days=90), now=later)
        assert deleted["runs"] == 1 and deleted["attempts"] == 1 and deleted["stream_runs"] == 1
        assert deleted["run_queue"] == 1 and deleted["events"] > 0
        assert deleted["outbox"] == 1  # the sent one; the one not yet sent is kept
        assert [e.key for e in box.read()] == ["waits"]
        assert sorted(r.id for r in store.runs(limit=100)) == sorted([ok, newest, only])
        assert gone not in {r.id for r in store.runs(limit=100)}
        assert [e.id for e in q.entries(("queued",))] == [waiting.id]
        store.emitter.emit(Event("config.applied", {"revision": 1, "origin": "test"}))
        assert [e.kind for e in store.events().read()] == ["config.applied"]  # a new one stays


def test_store_vacuum_applies_the_workspace_retention(tmp_path: Path) -> None:
    make_items(tmp_path / "src.db", 10)
    write_ws(tmp_path, {"items": {"mode": "incremental", "cursor": "updated_at", "write": "merge"}})
    assert CliRunner().invoke(cli.app, ["sync", "c", "-w", str(tmp_path)]).exit_code == 0
    text = (tmp_path / "syncline.yaml").read_text()
    (tmp_path / "syncline.yaml").write_text(text + "retention: 1s\n")
    time.sleep(1.2)
    done = CliRunner().invoke(cli.app, ["store", "vacuum", "-w", str(tmp_path), "--json"])
    assert done.exit_code == 0, done.output
    report = json.loads(done.stdout)
    assert report["tables"]["events"] >= 3 and report["tables"]["runs"] == 0  # its only run is kept
    (tmp_path / "syncline.yaml").write_text(text + "retention: forever\n")
    bad = CliRunner().invoke(cli.app, ["store", "vacuum", "-w", str(tmp_path)])
    assert bad.exit_code == 2 and "retention" in bad.output, bad.output
