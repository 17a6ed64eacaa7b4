"""`syncline alerts`: each rule's state and value, and `alerts check` evaluating now and
delivering what it decided to a real receiver."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest
import yaml
from receivers import receiver
from typer.testing import CliRunner, Result

import syncline.cli.app as cli
from syncline import clock
from syncline.store.store import MetadataStore


def run(*args: str | Path) -> Result:
    return CliRunner().invoke(cli.app, [str(a) for a in args])


def test_check_fires_delivers_and_the_list_shows_it(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(clock.ENV, "2026-12-07T12:00:00Z")
    with receiver() as hook:
        (tmp_path / "syncline.yaml").write_text(yaml.safe_dump({
            "version": 1,
            "sources": {"db": {"type": "sqlite", "path": "src.db"}},
            "destinations": {"wh": {"type": "duckdb", "path": "wh.duckdb"}},
            "connections": {"shop": {"source": "db", "destination": "wh"},
                            "crm": {"source": "db", "destination": "wh"}},
            "channels": {"ops": {"type": "webhook", "url": hook.url, "secret": "cli-secret-42"}},
            "alerts": {"connection-down": {"notify": ["ops"], "group_wait": "0s"},
                       "backlog": {"when": "queue_size > 10", "for": "15m"}}}))
        with MetadataStore(f"sqlite:///{tmp_path / '.syncline' / 'metadata.db'}") as store:
            run_id = store.start_run("shop", "schedule")
            store.end_run(run_id, "failed", rows_read=0, rows_committed=0, rows_quarantined=0,
                          attempts=3, failure_class="source", failure_message="connection refused")
        before = json.loads(run("alerts", "--json", "-w", tmp_path).stdout)
        assert {r["rule"]: r["state"] for r in before} == {
            "connection-down": "inactive", "bugbot": "inactive", "freshness-breach": "inactive",
            "contract-change": "inactive", "freshness-projected": "inactive",
            "slot-lag-trend": "inactive", "rate-limit-low": "inactive", "backlog": "inactive"}
        checked = run("alerts", "check", "-w", tmp_path)
        assert checked.exit_code == 0, checked.output
        assert "fired: connection-down for shop" in checked.output
        assert "delivered 1" in checked.output
        [request] = hook.requests
        assert request.json()["kind"] == "alert.firing" and request.json()["connection"] == "shop"
        listed = {r["rule"]: r for r in json.loads(run("alerts", "list", "--json", "-w", tmp_path).stdout)}
        down = listed["connection-down"]
        assert down["state"] == "firing" and down["value_subject"] == "shop"
        assert [s["subject"] for s in down["subjects"]] == ["shop"]
        assert listed["backlog"]["value"] == 0 and listed["backlog"]["for_seconds"] == 900
        assert listed["backlog"]["signal"] == {"name": "queue_size", "per": "workspace",
                                               "unit": "count", "meaning": "Runs waiting in the run queue."}
        table = run("alerts", "-w", tmp_path).output
        assert "connection-down" in table and "firing" in table and "shop (firing)" in table
        assert "no change" in run("alerts", "check", "-w", tmp_path).output
        from prometheus_client import generate_latest

        from syncline.monitoring.metrics import registry

        with MetadataStore(f"sqlite:///{tmp_path / '.syncline' / 'metadata.db'}") as store:
            scraped = generate_latest(registry(store)).decode()
        assert 'syncline_alerts{rule="connection-down",state="firing"} 1.0' in scraped
        assert 'syncline_notifications{channel="ops",status="delivered"} 1.0' in scraped


def test_check_says_why_a_firing_rule_is_not_told_yet(tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(clock.ENV, "2026-12-07T12:00:00Z")
    (tmp_path / "syncline.yaml").write_text(yaml.safe_dump({
        "version": 1,
        "sources": {"db": {"type": "sqlite", "path": "src.db"}},
        "destinations": {"wh": {"type": "duckdb", "path": "wh.duckdb"}},
        "connections": {"shop": {"source": "db", "destination": "wh"},
                        "crm": {"source": "db", "destination": "wh"}},
        "alerts": {"connection-down": {"runbook": "https://wiki.example.com/syncline-down"}}}))
    with MetadataStore(f"sqlite:///{tmp_path / '.syncline' / 'metadata.db'}") as store:
        for name in ("shop", "crm"):
            run_id = store.start_run(name, "schedule")
            store.end_run(run_id, "failed", rows_read=0, rows_committed=0, rows_quarantined=0,
                          attempts=1, failure_class="source", failure_message="connection refused")
            if name == "crm":
                store.silences().add(connection="crm", rule=None, starts=clock.now(),
                                     ends=clock.now() + dt.timedelta(hours=1), reason="test")
    said = run("alerts", "check", "-w", tmp_path).output
    assert "connection-down for shop: told once its group_wait is over" in said
    assert "connection-down for crm: silenced" in said
    own = json.loads(run("runbook", "connection-down", "--json", "-w", tmp_path).stdout)
    assert own["link"] == "https://wiki.example.com/syncline-down"
