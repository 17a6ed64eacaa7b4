"""Alert rules over signals: pending until `for:`, firing once, repeated, resolved; event rules
forward what happens; a restarted evaluator tells nothing twice. Frozen clocks, no sleeping."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import pytest
import yaml
from clockkit import FileClock

from syncline.alerting.rules import Evaluator, show
from syncline.alerting.signals import _COMPUTE
from syncline.alerting_config import SIGNALS
from syncline.config import Workspace, load_workspace
from syncline.event_kinds import Event
from syncline.store.store import MetadataStore

T0 = dt.datetime(2026, 12, 7, 12, tzinfo=dt.UTC)


def Clock(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> FileClock:
    return FileClock(monkeypatch, tmp_path, T0)


def workspace(tmp_path: Path, store_url: str, alerts: dict[str, Any], connections: int = 3,
              **more: Any) -> Workspace:
    """The built-in rules are off unless `alerts` names them; a rule tells at once unless it
    sets its `group_wait`."""
    alerts = {"connection-down": {"enabled": False}, "freshness-breach": {"enabled": False},
              **{name: {"group_wait": "0s", **rule} for name, rule in alerts.items()}}
    (tmp_path / "syncline.yaml").write_text(yaml.safe_dump({
        "version": 1, "metadata": store_url,
        "sources": {"db": {"type": "sqlite", "path": "src.db"}},
        "destinations": {"wh": {"type": "duckdb", "path": "wh.duckdb"}},
        "connections": {f"c{i}": {"source": "db", "destination": "wh", "schedule": "every 1h",
                                  **more.get(f"c{i}", {})}
                        for i in range(connections)},
        "channels": {"ops": {"type": "webhook", "url": "http://127.0.0.1:9/hook", "secret": "s"}},
        "alerts": alerts}))
    return load_workspace(tmp_path)


def run(store: MetadataStore, connection: str, status: str, message: str = "connection refused",
        rows: tuple[int, int] = (10, 0)) -> int:
    run_id = store.start_run(connection, "schedule")
    attempt = store.start_attempt(run_id, 1)
    store.end_attempt(attempt, status if status == "failed" else "succeeded",
                      *(("source", message) if status == "failed" else ()))
    store.end_run(run_id, status, rows_read=rows[0], rows_committed=rows[0] - rows[1],
                  rows_quarantined=rows[1], attempts=1,
                  failure_class="source" if status == "failed" else None,
                  failure_message=message if status == "failed" else None)
    return run_id


def outbox(store: MetadataStore) -> list[tuple[str, str, str | None]]:
    return [(e.kind, e.payload["body"].get("rule", ""), e.payload["connection"])
            for e in reversed(store.outbox().read(limit=1000))]


def test_every_signal_is_computed() -> None:
    assert set(_COMPUTE) == set(SIGNALS)


def test_a_rule_is_pending_until_its_for_then_fires_once_repeats_and_resolves(
        tmp_path: Path, store_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    now = FileClock(monkeypatch, tmp_path, T0)
    ws = workspace(tmp_path, store_url, {"too-many-failing": {
        "when": "failing_connections >= 2", "for": "10m", "severity": "critical",
        "notify": ["ops"], "repeat_every": "1h"}})
    with MetadataStore(store_url) as store:
        evaluator = Evaluator(store, now)
        run(store, "c0", "failed")
        assert evaluator.evaluate(ws).pending == []  # one failing: the condition does not hold
        run(store, "c1", "failed")
        assert evaluator.evaluate(ws).pending == [("too-many-failing", "")]
        now.move(minutes=9)
        assert evaluator.evaluate(ws).fired == []
        assert outbox(store) == []
        now.move(minutes=1)
        assert evaluator.evaluate(ws).fired == [("too-many-failing", "")]
        assert evaluator.evaluate(ws).fired == []  # told once
        assert Evaluator(store, now).evaluate(ws).fired == []  # a restarted evaluator too
        [firing] = store.outbox().read()
        assert firing.channel == "ops" and firing.payload["severity"] == "critical"
        body = firing.payload["body"]
        assert body["value"] == 2 and body["threshold"] == 2
        assert body["message"] == ("too-many-failing: failing_connections of the workspace is 2 "
                                   "(failing_connections >= 2)")
        now.move(minutes=59)
        assert evaluator.evaluate(ws).repeated == []
        now.move(minutes=1)
        assert evaluator.evaluate(ws).repeated == [("too-many-failing", "")]
        run(store, "c0", "succeeded")
        assert evaluator.evaluate(ws).resolved == [("too-many-failing", "")]
        assert [k for k, _, _ in outbox(store)] == ["alert.firing", "alert.firing", "alert.resolved"]
        assert len({e.key for e in store.outbox().read()}) == 3
        kinds = [e.kind for e in store.events().read(kinds=["alert."])]
        assert kinds == ["alert.firing", "alert.resolved"]  # events say transitions, not repeats


def test_a_condition_that_stops_while_pending_tells_nothing(
        tmp_path: Path, store_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    now = FileClock(monkeypatch, tmp_path, T0)
    ws = workspace(tmp_path, store_url, {"down": {"when": "connection_down > 30m", "for": "5m",
                                                  "notify": ["ops"]}})
    with MetadataStore(store_url) as store:
        evaluator = Evaluator(store, now)
        run(store, "c0", "failed")
        now.move(minutes=31)
        assert ("down", "c0") in evaluator.evaluate(ws).pending
        now.move(minutes=2)
        run(store, "c0", "succeeded")
        result = evaluator.evaluate(ws)
        assert result.resolved == [] and result.fired == []
        assert outbox(store) == []
        assert store.alert_states().all() == {}


def test_connection_down_fires_per_connection_from_the_first_failure_after_the_last_success(
        tmp_path: Path, store_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    now = FileClock(monkeypatch, tmp_path, T0)
    ws = workspace(tmp_path, store_url, {"connection-down": {"notify": ["ops"]},
                                         "long-down": {"when": "connection_down > 2h"}})
    with MetadataStore(store_url) as store:
        evaluator = Evaluator(store, now)
        run(store, "c0", "succeeded")
        run(store, "c1", "succeeded")
        now.move(hours=1)
        run(store, "c0", "failed")
        now.move(hours=1)
        run(store, "c0", "failed")
        first = evaluator.evaluate(ws)
        assert first.fired == [("connection-down", "c0")]  # the built-in rule, routed by the user
        now.move(minutes=61)
        assert evaluator.evaluate(ws).fired == [("long-down", "c0")]  # 2h 1m since the first failure
        assert outbox(store) == [("alert.firing", "connection-down", "c0")]  # long-down notifies no one


def test_a_disabled_built_in_rule_never_fires(tmp_path: Path, store_url: str,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    now = FileClock(monkeypatch, tmp_path, T0)
    ws = workspace(tmp_path, store_url, {"connection-down": {"enabled": False}, "freshness-breach": {}})
    with MetadataStore(store_url) as store:
        run(store, "c0", "failed")
        assert Evaluator(store, now).evaluate(ws).fired == []
    assert not ws.rules["connection-down"].enabled and ws.rules["freshness-breach"].enabled


def test_freshness_breach_and_quarantined_rows(tmp_path: Path, store_url: str,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    now = FileClock(monkeypatch, tmp_path, T0)
    ws = workspace(tmp_path, store_url, {"quarantine": {"when": "quarantined_rows > 5%"},
                                         "freshness-breach": {}})
    with MetadataStore(store_url) as store:
        evaluator = Evaluator(store, now)
        run(store, "c0", "succeeded", rows=(100, 6))
        run(store, "c1", "succeeded", rows=(100, 5))
        assert evaluator.evaluate(ws).fired == [("quarantine", "c0")]
        now.move(hours=2)  # `every 1h`: late after two intervals
        assert evaluator.evaluate(ws).fired == []
        now.move(seconds=1)
        assert sorted(evaluator.evaluate(ws).fired) == [("freshness-breach", "c0"),
                                                        ("freshness-breach", "c1")]


def test_queue_size_and_the_failure_group_signal(tmp_path: Path, store_url: str,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    from syncline.orchestration.queue import RunRequest

    now = FileClock(monkeypatch, tmp_path, T0)
    ws = workspace(tmp_path, store_url, {
        "backlog": {"when": "queue_size > 1"},
        "wide": {"when": "failure_group_connections >= 2", "notify": ["ops"]}})
    with MetadataStore(store_url) as store:
        evaluator = Evaluator(store, now)
        store.queue().put(RunRequest("c0"))
        assert evaluator.evaluate(ws).fired == []
        store.queue().put(RunRequest("c1"))
        run(store, "c0", "failed", "GET /v1/orders answered HTTP 401: token expired")
        assert evaluator.evaluate(ws).fired == [("backlog", "")]
        run(store, "c2", "failed", "GET /v1/users answered HTTP 401: token expired")
        [(rule, group)] = evaluator.evaluate(ws).fired
        assert rule == "wide"
        [note] = store.outbox().read()
        assert note.payload["body"]["group"]["connections"] == ["c0", "c2"]


def test_an_event_rule_forwards_what_happens_from_now_on(tmp_path: Path, store_url: str,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    now = FileClock(monkeypatch, tmp_path, T0)
    ws = workspace(tmp_path, store_url, {"failures": {"when": "run.failed", "notify": ["ops"]}})
    with MetadataStore(store_url) as store:
        run(store, "c0", "failed")  # before the rule first looked: history, not forwarded
        evaluator = Evaluator(store, now)
        assert evaluator.evaluate(ws).forwarded == 0
        first = run(store, "c1", "failed")
        run(store, "c2", "succeeded")
        store.emitter.emit(Event("config.applied", {"revision": 2, "origin": "test"}))
        assert evaluator.evaluate(ws).forwarded == 1
        assert Evaluator(store, now).evaluate(ws).forwarded == 0
        [note] = store.outbox().read()
        assert note.kind == "run.failed" and note.payload["run"] == first
        assert note.payload["body"]["rule"] == "failures" and note.payload["connection"] == "c1"
        assert note.payload["body"]["runbook"] == "docs/runbooks/failure-source.md"


def test_values_read_as_people_read_them() -> None:
    assert show(7525, "seconds") == "2h 5m"
    assert show(0, "seconds") == "0s"
    assert show(12.345, "percent") == "12.3%"
    assert show(1_500_000_000, "bytes") == "1.5 GB"
    assert show(7, "count") == "7"


def fail_many(store: MetadataStore, names: list[str], message: str) -> None:
    for name in names:
        run(store, name, "failed", message)


def test_forty_connections_failing_the_same_way_are_one_message(
        tmp_path: Path, store_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    now = FileClock(monkeypatch, tmp_path, T0)
    ws = workspace(tmp_path, store_url, {"connection-down": {"notify": ["ops"], "group_wait": "30s"}},
                   connections=42)
    with MetadataStore(store_url) as store:
        evaluator = Evaluator(store, now)
        fail_many(store, [f"c{i}" for i in range(20)], "GET /v1/orders answered HTTP 401: token expired")
        assert len(evaluator.evaluate(ws).fired) == 20
        now.move(seconds=10)
        fail_many(store, [f"c{i}" for i in range(20, 40)], "GET /v1/users answered HTTP 401: token expired")
        run(store, "c40", "failed", "could not connect to server: Connection refused")
        assert len(evaluator.evaluate(ws).fired) == 21
        assert outbox(store) == []  # waiting for the rest of their groups
        now.move(seconds=20)
        evaluator.evaluate(ws)
        notes = store.outbox().read()
        assert len(notes) == 1 and notes[0].payload["body"]["count"] == 40
        body = notes[0].payload["body"]
        assert body["title"] == "connection-down firing · 40 connections"
        assert body["failure"]["origin"] == "source" and notes[0].payload["connection"] is None
        now.move(seconds=10)
        evaluator.evaluate(ws)
        [lone] = [n for n in store.outbox().read() if n.payload["body"]["count"] == 1]
        assert lone.payload["connection"] == "c40"
        for i in range(40):
            run(store, f"c{i}", "succeeded")
        assert len(evaluator.evaluate(ws).resolved) == 40
        resolved = [n for n in store.outbox().read() if n.kind == "alert.resolved"]
        assert len(resolved) == 1 and resolved[0].payload["body"]["count"] == 40


def test_silences_hold_notifications_back_until_they_end(
        tmp_path: Path, store_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    now = FileClock(monkeypatch, tmp_path, T0)
    ws = workspace(tmp_path, store_url, {"connection-down": {"notify": ["ops"]},
                                         "failures": {"when": "run.failed", "notify": ["ops"]}})
    with MetadataStore(store_url) as store:
        evaluator = Evaluator(store, now)
        evaluator.evaluate(ws)  # the event rule starts reading here
        silence = store.silences().add(connection="c0", rule=None, starts=now.at,
                                       ends=now.at + dt.timedelta(hours=2), reason="vendor outage")
        store.silences().add(connection=None, rule="connection-down", starts=now.at,
                             ends=now.at + dt.timedelta(minutes=30), reason="deploying")
        run(store, "c0", "failed")
        run(store, "c1", "failed")
        result = evaluator.evaluate(ws)
        assert sorted(result.fired) == [("connection-down", "c0"), ("connection-down", "c1")]
        assert outbox(store) == [("run.failed", "failures", "c1")]  # c0's event is silenced too
        now.move(minutes=31)  # the rule's silence ended; c0's goes on
        evaluator.evaluate(ws)
        assert outbox(store)[-1] == ("alert.firing", "connection-down", "c1")
        assert len(outbox(store)) == 2
        store.silences().expire(silence.id, now.at)
        evaluator.evaluate(ws)
        assert outbox(store)[-1] == ("alert.firing", "connection-down", "c0")
        assert len(store.silences().active(now.at)) == 0


def test_a_maintenance_window_mutes_its_connection(
        tmp_path: Path, store_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    now = FileClock(monkeypatch, tmp_path, T0)  # T0 is a Monday, 12:00 UTC
    ws = workspace(tmp_path, store_url, {"connection-down": {"notify": ["ops"]}},
                   c0={"maintenance": [{"cron": "0 11 * * MON", "for": "2h"}]},
                   c1={"maintenance": [{"cron": "0 2 * * SUN", "for": "2h"}]})
    with MetadataStore(store_url) as store:
        evaluator = Evaluator(store, now)
        run(store, "c0", "failed")
        run(store, "c1", "failed")
        evaluator.evaluate(ws)
        assert outbox(store) == [("alert.firing", "connection-down", "c1")]
        now.move(minutes=60)  # 13:00: c0's window is over, it is still down
        evaluator.evaluate(ws)
        assert outbox(store)[-1] == ("alert.firing", "connection-down", "c0")


def test_down_since_follows_recoveries_across_evaluations(
        tmp_path: Path, store_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    now = FileClock(monkeypatch, tmp_path, T0)
    ws = workspace(tmp_path, store_url, {"down": {"when": "connection_down > 1h"}})
    with MetadataStore(store_url) as store:
        evaluator = Evaluator(store, now)  # keeps when each connection went down between ticks
        run(store, "c0", "failed")
        now.move(minutes=30)
        run(store, "c0", "failed")
        now.move(minutes=31)
        assert evaluator.evaluate(ws).fired == [("down", "c0")]  # from the first failure
        run(store, "c0", "succeeded")
        assert evaluator.evaluate(ws).resolved == [("down", "c0")]
        now.move(minutes=5)
        run(store, "c0", "failed")
        now.move(minutes=59)
        assert evaluator.evaluate(ws).fired == []  # down again, but only 59 minutes
        now.move(minutes=2)
        assert evaluator.evaluate(ws).fired == [("down", "c0")]
