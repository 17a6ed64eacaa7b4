"""Two alerting loops on one store (two `up`s, or a scheduler on each of two machines): only
the holder of the outbox evaluates and delivers, so each alert is told once; when it stops,
the other takes over."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
import yaml
from receivers import receiver

from syncline import clock
from syncline.alerting.loop import AlertingLoop
from syncline.config import read_document
from syncline.store.store import MetadataStore


def test_two_loops_tell_each_alert_once(tmp_path: Path, store_url: str,
                                        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(clock.ENV, "2026-12-07T12:00:00Z")
    with receiver() as hook:
        file = tmp_path / "syncline.yaml"
        file.write_text(yaml.safe_dump({
            "version": 1, "metadata": store_url,
            "sources": {"db": {"type": "sqlite", "path": "src.db"}},
            "destinations": {"wh": {"type": "duckdb", "path": "wh.duckdb"}},
            "connections": {"shop": {"source": "db", "destination": "wh"}},
            "channels": {"ops": {"type": "webhook", "url": hook.url, "secret": "loop-secret"}},
            "alerts": {"connection-down": {"notify": ["ops"], "group_wait": "0s"}}}))
        said: list[str] = []
        with MetadataStore(store_url) as one, MetadataStore(store_url) as two:
            one.revisions().apply(read_document(file), origin="test")
            run_id = one.start_run("shop", "schedule")
            one.end_run(run_id, "failed", rows_read=0, rows_committed=0, rows_quarantined=0,
                        attempts=1, failure_class="source", failure_message="connection refused")
            first = AlertingLoop(one, tmp_path, file, said.append)
            second = AlertingLoop(two, tmp_path, file, said.append)
            for _ in range(3):
                first.tick()
                second.tick()
            assert [r.json()["kind"] for r in hook.requests] == ["alert.firing"]
            assert said.count("alert connection-down firing for shop") == 1
            first.deliverer.lease.release()  # the first stops
            monkeypatch.setenv(clock.ENV, (dt.datetime(2026, 12, 7, 12, tzinfo=dt.UTC)
                                           + dt.timedelta(hours=5)).isoformat())
            second.tick()  # it holds the outbox now: the 4-hourly repeat is its to tell
            assert [r.json()["kind"] for r in hook.requests] == ["alert.firing", "alert.firing"]
