"""`notify: [owner]`: an alert pages each connection's owner team, following the sun — the
team's channels say whom, and that person gets the page by mail (the manager too when
critical), through a real SMTP server and a loopback receiver."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import pytest
import yaml
from receivers import receiver, smtp_server

from syncline import clock
from syncline.alerting.delivery import Deliverer
from syncline.alerting.rules import Evaluator
from syncline.config import load_workspace
from syncline.errors import ConfigurationError
from syncline.store.store import MetadataStore

# Tuesday 20:00 in Los Angeles = Wednesday 09:30 in Kolkata: the pair's hours
NIGHT_IN_LA = dt.datetime(2026, 1, 14, 4, 0, tzinfo=dt.UTC)


def teams(mail: str) -> dict[str, Any]:
    rotation = {"every": "7d", "handoff": "2026-01-05T09:00"}
    return {
        "platform": {"timezone": "America/Los_Angeles", "hours": "09:00-17:00", "pair": "platform-blr",
                     "on_call": {"rotation": ["ann@example.com", "bob@example.com"], **rotation},
                     "notify": ["team-hook", mail]},
        "platform-blr": {"timezone": "Asia/Kolkata", "hours": "09:00-17:00", "pair": "platform",
                         "on_call": {"rotation": ["chitra@example.com", "dev@example.com"], **rotation},
                         "notify": ["team-hook"]},
        "managers": {"on_call": {"rotation": ["mia@example.com"], **rotation}, "notify": ["boss-hook"]}}


def test_an_alert_pages_the_owner_team_following_the_sun(tmp_path: Path,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(clock.ENV, NIGHT_IN_LA.isoformat())
    url = f"sqlite:///{tmp_path / 'metadata.db'}"
    with receiver() as team_hook, receiver() as boss_hook, receiver() as ops, \
            smtp_server(tmp_path) as box:
        (tmp_path / "syncline.yaml").write_text(yaml.safe_dump({
            "version": 1, "metadata": url, "teams": teams("team-mail"),
            "sources": {"db": {"type": "sqlite", "path": "src.db"}},
            "destinations": {"wh": {"type": "duckdb", "path": "wh.duckdb"}},
            "connections": {"shop": {"source": "db", "destination": "wh", "owner": "platform"},
                            "crm": {"source": "db", "destination": "wh"}},
            "channels": {
                "team-hook": {"type": "webhook", "url": team_hook.url, "secret": "s1"},
                "boss-hook": {"type": "webhook", "url": boss_hook.url, "secret": "s2"},
                "ops": {"type": "webhook", "url": ops.url, "secret": "s3"},
                "team-mail": {"type": "email", "host": "127.0.0.1", "port": box.port,
                              "ca_file": str(box.cert), "user": "syncline", "password": "mail-secret-1",
                              "from": "syncline@example.com", "to": ["platform@example.com"]}},
            "alerts": {"connection-down": {"notify": ["owner", "ops"], "severity": "critical",
                                           "group_wait": "0s"}}}))
        ws = load_workspace(tmp_path)
        with MetadataStore(url) as store:
            for name in ("shop", "crm"):
                run_id = store.start_run(name, "schedule")
                store.end_run(run_id, "failed", rows_read=0, rows_committed=0, rows_quarantined=0,
                              attempts=1, failure_class="source", failure_message="connection refused")
            assert len(Evaluator(store).evaluate(ws).fired) == 2
            assert Deliverer(store).drain(ws).delivered == 5
    assert ops.requests[0].json()["body"]["count"] == 2  # the plain channel: both, one message
    [page] = team_hook.requests  # crm has no owner: only shop pages its team
    body = page.json()["body"]
    assert page.json()["connection"] == "shop" and "recipients" not in page.json()
    assert body["page"] == {"team": "platform", "person": "dev@example.com", "via": "platform-blr",
                            "reason": "pair_hours", "manager": "mia@example.com"}
    assert [r.json()["body"]["page"]["manager"] for r in boss_hook.requests] == ["mia@example.com"]
    addressed = sorted(str(m["To"]) for m in box.messages)
    assert addressed == ["dev@example.com, mia@example.com", "platform@example.com"]
    assert "paged: dev@example.com (platform-blr, pair_hours); manager mia@example.com" in \
        next(m for m in box.messages if "dev@" in str(m["To"])).get_body(("plain",)).get_content()


def test_owner_without_teams_is_refused(tmp_path: Path) -> None:
    (tmp_path / "syncline.yaml").write_text(yaml.safe_dump({
        "version": 1, "alerts": {"connection-down": {"notify": ["owner"]}}}))
    with pytest.raises(ConfigurationError) as info:
        load_workspace(tmp_path)
    assert "alerts.connection-down.notify: 'owner' pages a connection's owner team" in str(info.value)
