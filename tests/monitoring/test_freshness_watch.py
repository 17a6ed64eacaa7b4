"""Freshness SLAs: status measures from the snapshot a successful run read, a stream's own SLA
counts, the 30-day SLO is a figure, and a breach and its end are each one event, never said
twice, even by a new watcher."""

from __future__ import annotations

import datetime as dt
import sqlite3
from pathlib import Path

import pytest
import yaml

from syncline.config import load_workspace
from syncline.monitoring.freshness_watch import FreshnessWatch
from syncline.monitoring.status import connection_status
from syncline.store.store import MetadataStore

from syncfixtures import run_sync

T0 = dt.datetime(2026, 11, 2, 6, 0, tzinfo=dt.UTC)
H = dt.timedelta(hours=1)


def workspace(root: Path) -> Path:
    con = sqlite3.connect(root / "src.db")
    con.executescript("CREATE TABLE t (id INTEGER PRIMARY KEY); INSERT INTO t VALUES (1);"
                      "CREATE TABLE u (id INTEGER PRIMARY KEY); INSERT INTO u VALUES (1);")
    con.close()
    (root / "syncline.yaml").write_text(yaml.safe_dump({
        "version": 1, "sources": {"src": {"type": "sqlite", "path": "src.db"}},
        "destinations": {"wh": {"type": "duckdb", "path": "wh.duckdb"}},
        "connections": {"c": {"source": "src", "destination": "wh", "schedule": "every 1h",
                              "freshness_sla": "2h", "streams": {
                                  "t": {}, "u": {"freshness_sla": "30m", "selected": True}}}}}))
    return root


def test_breach_and_restore_are_one_event_each(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    ws = load_workspace(workspace(tmp_path))
    monkeypatch.setenv("SYNCLINE_CLOCK", T0.isoformat())
    assert run_sync(tmp_path).status == "succeeded"
    with MetadataStore(ws.metadata_url()) as store:
        [row] = connection_status(ws, store, T0 + H / 4)
        assert row["freshness_seconds"] == pytest.approx(900, abs=1)  # from the read's start
        assert row["streams_freshness"] == [{"stream": "u", "freshness_seconds": pytest.approx(900, abs=1),
                                             "freshness_sla_seconds": 1800.0, "late": False}]
        watch = FreshnessWatch(store)
        assert watch.check(ws, T0 + H / 4) == []
        [late] = watch.check(ws, T0 + H)  # stream u's own 30 min SLA is passed
        assert (late.kind, late.body["streams"]) == ("freshness.breached", ["u"])
        assert connection_status(ws, store, T0 + H)[0]["health"] == "late"
        assert watch.check(ws, T0 + 2 * H) == []  # said once
        assert FreshnessWatch(store).check(ws, T0 + 3 * H) == []  # a new watcher reads what was said
    monkeypatch.setenv("SYNCLINE_CLOCK", (T0 + 3 * H).isoformat())
    assert run_sync(tmp_path).status == "succeeded"
    with MetadataStore(ws.metadata_url()) as store:
        [back] = FreshnessWatch(store).check(ws, T0 + 3 * H + dt.timedelta(minutes=5))
        assert back.kind == "freshness.restored"
        kinds = [e.kind for e in store.events().read(kinds=["freshness."])]
        assert kinds == ["freshness.breached", "freshness.restored"]
        # 30 days to T0+4h: the first success at T0, within the 2h SLA until T0+2h, late until
        # the T0+3h success, within since: 3h of 4h since the first success... of a 30-day window
        [row] = connection_status(ws, store, T0 + 4 * H)
        assert row["slo_30d"] == pytest.approx(3 / (30 * 24), abs=1e-4)
