"""`syncline incidents`: a person opens, acknowledges, assigns, notes, resolves (with a note) and
reopens an incident; each change is on its timeline and is an event; mistakes are refused."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner, Result

import syncline.cli.app as cli
from syncline import clock


def run(*args: str | Path) -> Result:
    return CliRunner().invoke(cli.app, [str(a) for a in args])


@pytest.fixture
def ws(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv(clock.ENV, "2026-12-07T12:00:00Z")
    (tmp_path / "syncline.yaml").write_text(yaml.safe_dump({
        "version": 1, "teams": {"platform": {}},
        "sources": {"db": {"type": "sqlite", "path": "src.db", "owner": "platform"}},
        "destinations": {"wh": {"type": "duckdb", "path": "wh.duckdb"}},
        "connections": {"shop": {"source": "db", "destination": "wh"}}}))
    return tmp_path


def test_an_incident_from_open_to_resolved_and_back(ws: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    opened = run("incidents", "open", "--connection", "shop", "--title", "orders stale since Friday",
                 "--severity", "critical", "--json", "-w", ws)
    assert opened.exit_code == 0, opened.output
    inc = json.loads(opened.stdout)
    assert (inc["id"], inc["state"], inc["owner"], inc["due_at"]) == (
        1, "open", "platform", "2026-12-28T12:00:00Z")  # the connection's team; due in 21 days
    assert run("incidents", "ack", "1", "-w", ws).exit_code == 0
    assert "only an open one is acknowledged" in run("incidents", "ack", "1", "-w", ws).output
    assert run("incidents", "assign", "1", "ann@example.com", "-w", ws).exit_code == 0
    assert run("incidents", "note", "1", "vendor says a fix ships Monday", "-w", ws).exit_code == 0
    refused = run("incidents", "resolve", "1", "-w", ws)
    assert refused.exit_code == 2 and "resolving needs a note" in refused.output
    monkeypatch.setenv(clock.ENV, "2026-12-29T09:00:00Z")
    assert "overdue" in run("incidents", "-w", ws).output
    done = run("incidents", "resolve", "1", "--note", "token rotated; backfilled", "-w", ws)
    assert done.exit_code == 0 and "resolved" in done.output
    assert "no open incidents" in run("incidents", "list", "-w", ws).output
    assert run("incidents", "reopen", "1", "--note", "it came back", "-w", ws).exit_code == 0
    shown = json.loads(run("incidents", "show", "1", "--json", "-w", ws).stdout)
    assert [e["kind"] for e in shown["timeline"]] == [
        "opened", "acknowledge", "assign", "note", "resolve", "reopen"]
    assert shown["state"] == "open" and shown["assignee"] == "ann@example.com"
    assert shown["resolution"] == "token rotated; backfilled" and shown["overdue"] is True
    events = json.loads(run("events", "--kind", "incident.", "--since", "30d", "--json", "-w", ws).stdout)
    assert [e["kind"] for e in events] == ["incident.opened", "incident.acknowledged",
                                           "incident.updated", "incident.updated",
                                           "incident.resolved", "incident.reopened"]
    assert events[0]["severity"] == "critical" and events[0]["connection"] == "shop"
    text = run("incidents", "show", "1", "-w", ws).output
    assert "vendor says a fix ships Monday" in text and "token rotated" in text


@pytest.mark.parametrize(("args", "message"), [
    (["open", "--connection", "shop"], "an incident needs a title"),
    (["open", "--title", "x", "--severity", "urgent"], "--severity 'urgent' is not one of"),
    (["open", "--title", "x", "--connection", "shpo"], "no connection named 'shpo'"),
    (["open", "--title", "x", "--team", "data"], "no team named 'data'"),
    (["ack", "7"], "no incident 7"),
    (["show", "7"], "no incident 7"),
], ids=["no-title", "bad-severity", "unknown-connection", "unknown-team", "ack-missing", "show-missing"])
def test_mistakes_are_refused_with_the_fix(ws: Path, args: list[str], message: str) -> None:
    done = run("incidents", *args, "-w", ws)
    assert done.exit_code == 2
    assert message in done.output


def test_stats_give_times_to_acknowledge_and_resolve_and_the_share_in_time(
        ws: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def at(moment: str) -> None:
        monkeypatch.setenv(clock.ENV, moment)

    for n in range(1, 4):  # three incidents opened on Dec 7, 12:00
        assert run("incidents", "open", "--connection", "shop", "--title", f"t{n}", "-w", ws).exit_code == 0
    at("2026-12-07T12:10:00Z")
    run("incidents", "ack", "1", "-w", ws)
    at("2026-12-07T13:00:00Z")
    run("incidents", "ack", "2", "-w", ws)
    at("2026-12-08T12:00:00Z")
    run("incidents", "resolve", "1", "--note", "fixed", "-w", ws)
    at("2027-01-07T12:00:00Z")  # 31 days: incident 2 resolved late, 3 still open and overdue
    run("incidents", "resolve", "2", "--note", "fixed late", "-w", ws)
    [row] = json.loads(run("incidents", "stats", "--json", "-w", ws).stdout)
    assert (row["team"], row["opened"], row["open"], row["overdue"]) == ("platform", 3, 1, 1)
    assert row["acknowledge_seconds"] == {"median": 600.0, "p90": 3600.0}
    assert row["resolve_seconds"] == {"median": 86400.0, "p90": 31 * 86400.0}
    assert row["resolved_within_due"] == round(1 / 3, 4)
    table = run("incidents", "stats", "--team", "platform", "-w", ws).output
    assert "33%" in table and "10m" in table
    assert "no incidents opened" in run("incidents", "stats", "--since", "1d", "-w", ws).output
