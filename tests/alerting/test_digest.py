"""The digest (Wall of Shame): failing connections by root cause, the widest first, then those
down for more than 48 hours; sent once per slot, once more after a missed slot, never twice."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import pytest
import yaml

from syncline import clock
from syncline.alerting.digest import build, queue_if_due
from syncline.alerting.notification import Notification
from syncline.alerting.render import as_html, plain
from syncline.config import Workspace, load_workspace
from syncline.errors import ConfigurationError
from syncline.store.store import MetadataStore

T0 = dt.datetime(2026, 12, 7, 9, 30, tzinfo=dt.UTC)
TOKEN = "GET /v1/orders answered HTTP 401: token expired"


def workspace(tmp_path: Path, store_url: str, digest: dict[str, Any] | None = None) -> Workspace:
    (tmp_path / "syncline.yaml").write_text(yaml.safe_dump({
        "version": 1, "metadata": store_url,
        "sources": {"db": {"type": "sqlite", "path": "src.db"}},
        "destinations": {"wh": {"type": "duckdb", "path": "wh.duckdb"}},
        "connections": {f"c{i}": {"source": "db", "destination": "wh"} for i in range(6)},
        "channels": {"mail": {"type": "webhook", "url": "http://127.0.0.1:9/", "secret": "s"}},
        "digest": digest or {"at": ["08:00", "20:00"], "notify": ["mail"]}}))
    return load_workspace(tmp_path)


def fail(store: MetadataStore, connection: str, message: str, at: dt.datetime,
         monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(clock.ENV, at.isoformat())
    run_id = store.start_run(connection, "schedule")
    store.end_run(run_id, "failed", rows_read=0, rows_committed=0, rows_quarantined=0, attempts=1,
                  failure_class="source", failure_message=message)


def test_the_widest_cause_comes_first_then_the_long_down(
        tmp_path: Path, store_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    ws = workspace(tmp_path, store_url)
    with MetadataStore(store_url) as store:
        fail(store, "c5", "could not connect to server: Connection refused", T0 - dt.timedelta(days=3),
             monkeypatch)
        for name in ("c1", "c2", "c3"):
            fail(store, name, TOKEN.replace("orders", f"orders_{name}"), T0 - dt.timedelta(hours=2),
                 monkeypatch)
        made = build(store, ws, T0)
    assert made.title() == "Syncline digest: 4 of 6 connections failing, 2 root causes"
    assert [[d.connection for d in g.connections] for g in made.groups] == [["c1", "c2", "c3"], ["c5"]]
    assert made.groups[0].origin == "source"
    assert [d.connection for d in made.down_long] == ["c5"]
    note = made.notification("digest/test")
    text = plain(note)
    assert "3 connections" in text and "c2" in text and "token expired" in text
    assert "Down for more than 48 hours" in text and "3d" in text
    html = as_html(note)
    assert html.count("<table>") >= 3 and "c5" in html
    assert Notification.from_payload(note.payload()).body["failing"] == 4


def test_each_slot_is_sent_once_and_a_missed_one_once_when_back(
        tmp_path: Path, store_url: str) -> None:
    ws = workspace(tmp_path, store_url)
    with MetadataStore(store_url) as store:
        assert queue_if_due(store, ws, T0) == T0.replace(hour=8, minute=0)  # up was down at 08:00
        assert queue_if_due(store, ws, T0 + dt.timedelta(minutes=1)) is None
        evening = T0.replace(hour=20, minute=0)
        assert queue_if_due(store, ws, evening - dt.timedelta(seconds=1)) is None
        assert queue_if_due(store, ws, evening) == evening
    with MetadataStore(store_url) as store:  # `up` restarted: never twice
        assert queue_if_due(store, ws, evening + dt.timedelta(minutes=5)) is None
        sent = store.outbox().read()
    assert [n.key for n in reversed(sent)] == [f"digest/{T0.replace(hour=8, minute=0).isoformat()}",
                                               f"digest/{evening.isoformat()}"]
    assert all(n.kind == "digest" and n.channel == "mail" for n in sent)
    assert sent[0].payload["body"]["title"] == "Syncline digest: all 6 connections healthy"


def test_times_are_read_in_the_digest_time_zone(tmp_path: Path, store_url: str) -> None:
    ws = workspace(tmp_path, store_url, {"at": ["08:00"], "timezone": "Asia/Kolkata", "notify": ["mail"]})
    assert ws.model.digest is not None
    assert ws.model.digest.last_slot(T0) == dt.datetime(2026, 12, 7, 2, 30, tzinfo=dt.UTC)
    assert ws.model.digest.last_slot(dt.datetime(2026, 12, 7, 2, 29, tzinfo=dt.UTC)) == \
        dt.datetime(2026, 12, 6, 2, 30, tzinfo=dt.UTC)


@pytest.mark.parametrize(("digest", "expected"), [
    ({"at": ["8am"], "notify": ["mail"]}, "digest.at: got ['8am']; '8am' is not a time of day"),
    ({"timezone": "Mars/Olympus", "notify": ["mail"]}, "digest.timezone: got 'Mars/Olympus'"),
    ({"notify": ["pager"]}, "digest.notify: 'pager' is not a channel"),
    ({"at": ["08:00"]}, "digest.notify: required key is missing"),
], ids=["bad-time", "bad-zone", "unknown-channel", "no-channel"])
def test_a_bad_digest_names_its_key(tmp_path: Path, digest: dict[str, Any], expected: str) -> None:
    with pytest.raises(ConfigurationError) as info:
        workspace(tmp_path, f"sqlite:///{tmp_path / 'm.db'}", digest)
    assert expected in str(info.value)
