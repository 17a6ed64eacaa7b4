"""Rules that open incidents: BugBot after 48 hours down, a freshness breach, a contract change;
one incident per connection and failure group; mitigated after successful runs; escalated to
the managers' on-call once overdue, once. Frozen clocks."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import pytest
import yaml
from clockkit import FileClock

from syncline.alerting.rules import Evaluator
from syncline.config import Workspace, load_workspace
from syncline.event_kinds import Event
from syncline.store.store import MetadataStore

T0 = dt.datetime(2026, 12, 7, 12, tzinfo=dt.UTC)
ROTATION = {"every": "7d", "handoff": "2026-01-05T09:00"}


def Clock(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> FileClock:
    return FileClock(monkeypatch, tmp_path, T0)


def workspace(root: Path, store_url: str, **more: Any) -> Workspace:
    (root / "syncline.yaml").write_text(yaml.safe_dump({
        "version": 1, "metadata": store_url,
        "teams": {"platform": {"on_call": {"rotation": ["ann@example.com"], **ROTATION}},
                  "managers": {"on_call": {"rotation": ["mia@example.com"], **ROTATION},
                               "notify": ["boss"]}},
        "channels": {"boss": {"type": "webhook", "url": "http://127.0.0.1:9/", "secret": "s"}},
        "sources": {"db": {"type": "sqlite", "path": "src.db", "owner": "platform"}},
        "destinations": {"wh": {"type": "duckdb", "path": "wh.duckdb"}},
        "connections": {"shop": {"source": "db", "destination": "wh", "schedule": "every 1h"},
                        "crm": {"source": "db", "destination": "wh"}},
        "alerts": {"connection-down": {"enabled": False}, "freshness-breach": {"enabled": False},
                   **more.get("alerts", {})}}))
    return load_workspace(root)


def run(store: MetadataStore, connection: str, status: str, message: str = "connection refused") -> None:
    run_id = store.start_run(connection, "schedule")
    store.end_run(run_id, status, rows_read=1, rows_committed=1, rows_quarantined=0, attempts=1,
                  failure_class="source" if status == "failed" else None,
                  failure_message=message if status == "failed" else None)


def test_bugbot_opens_one_incident_after_48_hours_down_then_it_is_mitigated(
        tmp_path: Path, store_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    now = FileClock(monkeypatch, tmp_path, T0)
    ws = workspace(tmp_path, store_url)
    with MetadataStore(store_url) as store:
        evaluator = Evaluator(store, now)
        run(store, "shop", "failed")
        now.move(hours=48)
        assert evaluator.evaluate(ws).incidents_opened == 0
        now.move(seconds=1)
        run(store, "shop", "failed")  # the same failure again
        assert evaluator.evaluate(ws).incidents_opened == 1
        now.move(hours=1)
        run(store, "shop", "failed")
        assert evaluator.evaluate(ws).incidents_opened == 0
        [inc] = store.incidents().list()
        assert (inc.owner, inc.rule, inc.connection, inc.severity) == ("platform", "bugbot", "shop", "error")
        assert inc.failure_group is not None and inc.due_at == T0 + dt.timedelta(hours=48, seconds=1, days=21)
        for _ in range(3):
            now.move(minutes=10)
            run(store, "shop", "succeeded")
        now.move(seconds=31)  # the sweep runs every 30 s
        assert evaluator.evaluate(ws).mitigated == [inc.id]
        assert [i.state for i in store.incidents().list()] == ["mitigated"]
        full = store.incidents().get(inc.id)
        assert full is not None
        assert [e.kind for e in full.timeline] == ["opened", "failed_again", "mitigate"]
        assert full.timeline[1].data == {"runs": [3]}  # the run that failed after it opened
        run(store, "shop", "failed")  # the same cause returns: it joins the unresolved incident
        now.move(hours=49)
        result = evaluator.evaluate(ws)
        assert result.incidents_opened == 0 and result.fired == [("bugbot", "shop")]
        [again] = store.incidents().list()
        assert again.id == inc.id and again.state == "open"
        kinds = [e.kind for e in store.events().read(kinds=["incident."], limit=100)]
        assert kinds[0] == "incident.opened" and "incident.mitigated" in kinds


def test_an_overdue_incident_is_escalated_once_to_the_managers(
        tmp_path: Path, store_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    now = FileClock(monkeypatch, tmp_path, T0)
    ws = workspace(tmp_path, store_url)
    with MetadataStore(store_url) as store:
        evaluator = Evaluator(store, now)
        run(store, "crm", "failed")
        now.move(hours=49)
        assert evaluator.evaluate(ws).incidents_opened == 1
        now.move(days=21)
        assert evaluator.evaluate(ws).escalated == [1]
        now.move(minutes=1)
        assert evaluator.evaluate(ws).escalated == []
        pages = [n for n in store.outbox().read() if n.channel == "boss"]
        assert len(pages) == 1 and pages[0].payload["body"]["page"]["person"] == "mia@example.com"
        assert pages[0].payload["severity"] == "critical"
        [inc] = store.incidents().list()
        full = store.incidents().get(inc.id)
        assert full is not None and [e.kind for e in full.timeline] == ["opened", "escalate"]
        from syncline.alerting.digest import build

        wall = build(store, ws, now.at)
        assert wall.title().startswith("Syncline digest: 1 overdue incident, 1 of 2 connections failing")
        assert [i.id for i in wall.overdue] == [inc.id]
        [crm] = wall.groups[0].connections
        assert (crm.owner, crm.incident) == ("platform", inc.id)
        assert wall.notification("digest/x").payload()["body"]["sections"][0]["title"] == \
            "Overdue incidents (1)"


def test_a_contract_change_and_a_freshness_breach_open_incidents(
        tmp_path: Path, store_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    now = FileClock(monkeypatch, tmp_path, T0)
    ws = workspace(tmp_path, store_url, alerts={"freshness-breach": {"enabled": True, "group_wait": "0s"}})
    with MetadataStore(store_url) as store:
        evaluator = Evaluator(store, now)
        evaluator.evaluate(ws)  # the contract rule starts reading the event log here
        for failure_class in ("contract", "source"):
            store.emitter.emit(Event("stream.failed", {
                "failure_class": failure_class,
                "message": "column amount changed type from integer to text"},
                connection="crm", stream="orders", run=1))
        run(store, "shop", "succeeded")
        assert evaluator.evaluate(ws).incidents_opened == 1
        now.move(hours=2, seconds=1)  # `every 1h`: late after two intervals
        assert evaluator.evaluate(ws).incidents_opened == 1
        titles = sorted(i.title for i in store.incidents().list())
        assert titles == ["contract-change: crm, stream orders",
                          "freshness-breach: shop (freshness_breach > 0s)"]
