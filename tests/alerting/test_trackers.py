"""Ticket trackers follow incidents: BugBot opens an incident, the tracker named by a rule over
`incident.opened` files a ticket, comments on each change, closes it on resolution and opens it
again on reopening — on loopback fakes of GitHub's and Jira's APIs; a ticket is filed once."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
import yaml
from trackerkit import fake_tracker

from syncline import clock
from syncline.alerting.delivery import Deliverer
from syncline.alerting.incidents import change_incident
from syncline.alerting.rules import Evaluator
from syncline.config import load_workspace
from syncline.errors import ConfigurationError
from syncline.store.store import MetadataStore

T0 = dt.datetime(2026, 12, 7, 12, tzinfo=dt.UTC)


def test_a_tracker_files_comments_closes_and_reopens(tmp_path: Path, store_url: str,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    at = [T0]
    monkeypatch.setenv(clock.ENV, T0.isoformat())

    def move(**delta: float) -> None:
        at[0] += dt.timedelta(**delta)
        monkeypatch.setenv(clock.ENV, at[0].isoformat())

    monkeypatch.setenv("GH_TOKEN", "gh-token-77")
    monkeypatch.setenv("JIRA_TOKEN", "jira-token-88")
    with fake_tracker("github", "gh-token-77") as gh, fake_tracker("jira", "jira-token-88") as jira:
        (tmp_path / "syncline.yaml").write_text(yaml.safe_dump({
            "version": 1, "metadata": store_url,
            "sources": {"db": {"type": "sqlite", "path": "src.db"}},
            "destinations": {"wh": {"type": "duckdb", "path": "wh.duckdb"}},
            "connections": {"shop": {"source": "db", "destination": "wh"}},
            "channels": {
                "tracker": {"type": "github_issues", "repo": "acme/data-incidents",
                            "token": "${env:GH_TOKEN}", "url": gh.url},
                "jira": {"type": "jira", "url": jira.url, "project": "DATA", "user": "bot",
                         "token": "${env:JIRA_TOKEN}"}},
            "alerts": {"connection-down": {"enabled": False},
                       "tickets": {"when": "incident.opened", "notify": ["tracker", "jira"]}}}))
        ws = load_workspace(tmp_path)
        with MetadataStore(store_url) as store:
            evaluator, deliverer = Evaluator(store, lambda: at[0]), Deliverer(store, lambda: at[0])

            def tick() -> None:
                evaluator.evaluate(ws)
                deliverer.drain(ws)

            tick()  # the rules start reading the event log here
            run_id = store.start_run("shop", "schedule")
            store.end_run(run_id, "failed", rows_read=0, rows_committed=0, rows_quarantined=0,
                          attempts=1, failure_class="source", failure_message="connection refused")
            move(hours=49)
            tick()  # BugBot opens the incident and the tickets rule forwards it
            tick()
            assert list(gh.tickets) == ["1"] and list(jira.tickets) == ["DATA-1"]
            issue = gh.tickets["1"]
            assert issue["title"] == "bugbot: shop (connection_down > 48h)"
            assert "severity:error" in issue["labels"] and issue["state"] == "open"
            [inc] = store.incidents().list()
            change_incident(store, ws, inc.id, "acknowledge", by="ann", now=at[0])
            change_incident(store, ws, inc.id, "resolve", by="ann", now=at[0], text="token rotated")
            tick()
            assert len(gh.tickets["1"]["comments"]) == 2 and gh.tickets["1"]["state"] == "closed"
            assert "resolve" in gh.tickets["1"]["comments"][1] and "token rotated" in gh.tickets["1"]["comments"][1]
            assert jira.tickets["DATA-1"]["status"] == "Done"
            change_incident(store, ws, inc.id, "reopen", by="ann", now=at[0], text="back again")
            tick()
            assert gh.tickets["1"]["state"] == "open" and jira.tickets["DATA-1"]["status"] == "To Do"
            assert store.tickets().ref("tracker", inc.id) == ("1", f"{gh.url}/issues/1")
            tick()
            assert len(gh.tickets) == 1 and len(jira.tickets) == 1  # nothing filed twice
            assert gh.refused == 0 and jira.refused == 0


def test_a_tracker_needs_its_repo_right(tmp_path: Path) -> None:
    (tmp_path / "syncline.yaml").write_text(yaml.safe_dump({"version": 1, "channels": {
        "tracker": {"type": "github_issues", "repo": "data-incidents", "token": "t"}}}))
    with pytest.raises(ConfigurationError) as info:
        load_workspace(tmp_path)
    assert "channels.tracker.repo: got 'data-incidents'; expected owner/name" in str(info.value)
