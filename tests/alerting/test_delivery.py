"""The outbox drained into real receivers on loopback: signed, in order, retried for a day,
nothing lost and nothing twice; frozen clocks, no sleeping."""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from receivers import Receiver, receiver

from syncline.alerting.delivery import RETRY_FOR, Deliverer
from syncline.alerting.notification import Notification, verify
from syncline.config import Workspace, load_workspace
from syncline.store.store import MetadataStore

T0 = dt.datetime(2026, 12, 7, 12, tzinfo=dt.UTC)
SECRET = "hook-secret-0123456789"


class Clock:
    def __init__(self) -> None:
        self.at = T0

    def __call__(self) -> dt.datetime:
        return self.at

    def move(self, **delta: float) -> None:
        self.at += dt.timedelta(**delta)


def workspace(tmp_path: Path, store_url: str, channels: dict[str, object]) -> Workspace:
    (tmp_path / "syncline.yaml").write_text(yaml.safe_dump(
        {"version": 1, "metadata": store_url, "channels": channels}), encoding="utf-8")
    return load_workspace(tmp_path)


def note(n: int, kind: str = "run.failed") -> Notification:
    return Notification(id=f"note-{n}", kind=kind, time=T0, severity="error",
                        connection=f"conn_{n}", body={"message": f"failure {n}"})


def put(store: MetadataStore, channel: str, notes: list[Notification]) -> int:
    return store.outbox().put([(channel, n.id, n.kind, n.payload()) for n in notes], T0)


@pytest.fixture
def hook() -> Iterator[Receiver]:
    with receiver() as r:
        yield r


def test_a_webhook_gets_each_notification_once_signed_with_its_idempotency_key(
        tmp_path: Path, store_url: str, hook: Receiver) -> None:
    ws = workspace(tmp_path, store_url, {"ops": {"type": "webhook", "url": hook.url, "secret": SECRET}})
    with MetadataStore(store_url) as store:
        assert put(store, "ops", [note(1), note(2)]) == 2
        assert put(store, "ops", [note(1)]) == 0  # decided again after a restart: not queued twice
        report = Deliverer(store, Clock()).drain(ws)
        assert (report.delivered, report.retrying, report.failed) == (2, 0, 0)
        assert Deliverer(store, Clock()).drain(ws).delivered == 0
        assert [r.json()["id"] for r in hook.requests] == ["note-1", "note-2"]
        first = hook.requests[0]
        assert first.headers["Syncline-Idempotency-Key"] == "note-1"
        assert first.headers["Content-Type"] == "application/json"
        assert verify(SECRET, first.headers["Syncline-Signature"], first.body, int(time.time()))
        assert not verify(SECRET, first.headers["Syncline-Signature"],
                          first.body.replace(b"failure 1", b"failure 9"), int(time.time()))
        assert first.json()["version"] == 1 and first.json()["body"] == {"message": "failure 1"}
        assert [e.status for e in store.outbox().read()] == ["delivered", "delivered"]


def test_a_receiver_down_for_an_hour_gets_everything_afterwards_in_order_and_once(
        tmp_path: Path, store_url: str, hook: Receiver) -> None:
    ws = workspace(tmp_path, store_url, {"ops": {"type": "webhook", "url": hook.url, "secret": SECRET}})
    clock = Clock()
    with MetadataStore(store_url) as store:
        hook.stop()
        put(store, "ops", [note(1), note(2), note(3)])
        deliverer = Deliverer(store, clock)
        first = deliverer.drain(ws)
        assert (first.delivered, first.retrying) == (0, 1)
        assert "ConnectError" in first.errors["ops"]
        clock.move(seconds=4)  # before the first retry (5-10 s): nothing is tried
        assert deliverer.drain(ws).retrying == 0
        for _ in range(12):  # an hour of retries, the waits growing
            clock.move(minutes=5)
            assert deliverer.drain(ws).delivered == 0
        put(store, "ops", [note(4)])
        tries = store.outbox().read(status="pending")[-1].attempts
        assert 3 <= tries <= 9  # backed off: not one try per drain
        hook.start()
        clock.move(hours=1)
        assert deliverer.drain(ws).delivered == 4
        assert deliverer.drain(ws).delivered == 0
        assert [r.json()["id"] for r in hook.requests] == ["note-1", "note-2", "note-3", "note-4"]


def test_a_notification_is_given_up_after_a_day_and_the_next_ones_go_on(
        tmp_path: Path, store_url: str, hook: Receiver) -> None:
    ws = workspace(tmp_path, store_url, {"ops": {"type": "webhook", "url": hook.url, "secret": SECRET}})
    clock = Clock()
    with MetadataStore(store_url) as store:
        hook.status = 503
        put(store, "ops", [note(1)])
        deliverer = Deliverer(store, clock)
        while clock.at - T0 < RETRY_FOR:
            assert deliverer.drain(ws).failed == 0
            clock.move(minutes=30)
        clock.move(hours=1)
        gone = deliverer.drain(ws)
        assert gone.failed == 1
        [failed] = store.outbox().read(status="failed")
        assert failed.key == "note-1" and "HTTP 503" in (failed.last_error or "")
        assert "not delivered in" in (failed.last_error or "") and failed.attempts >= 10
        hook.status = 200
        put(store, "ops", [note(2)])
        store.outbox().put([("ops", "note-3", "run.failed", note(3).payload())], clock.at)
        assert deliverer.drain(ws).delivered == 2
        assert [r.json()["id"] for r in hook.requests] == ["note-2", "note-3"]


def test_a_refused_notification_is_given_up_at_once_and_does_not_block_the_channel(
        tmp_path: Path, store_url: str, hook: Receiver) -> None:
    ws = workspace(tmp_path, store_url, {"ops": {"type": "webhook", "url": hook.url, "secret": SECRET},
                                         "other": {"type": "webhook", "url": hook.url + "/2",
                                                   "secret": SECRET}})
    with MetadataStore(store_url) as store:
        hook.status = 422
        put(store, "ops", [note(1)])
        deliverer = Deliverer(store, Clock())
        report = deliverer.drain(ws)
        assert report.failed == 1
        hook.status = 200
        put(store, "ops", [note(2)])
        put(store, "other", [note(3)])
        assert deliverer.drain(ws).delivered == 2
        assert sorted(r.json()["id"] for r in hook.requests) == ["note-2", "note-3"]
        [refused] = store.outbox().read(status="failed")
        assert refused.last_error is not None and refused.last_error.startswith(
            "refused by the receiver: HTTP 422")


def test_slack_gets_its_incoming_webhook_format(tmp_path: Path, store_url: str, hook: Receiver) -> None:
    ws = workspace(tmp_path, store_url, {"alarm": {"type": "slack", "url": hook.url}})
    with MetadataStore(store_url) as store:
        put(store, "alarm", [note(1)])
        assert Deliverer(store, Clock()).drain(ws).delivered == 1
        message = hook.requests[0].json()
        assert "run.failed" in message["text"] and "conn_1" in message["text"]
        assert message["blocks"][1]["text"]["text"] == "failure 1"


def test_a_channel_whose_variable_is_unset_waits_and_says_which(
        tmp_path: Path, store_url: str, monkeypatch: pytest.MonkeyPatch, hook: Receiver) -> None:
    monkeypatch.delenv("HOOK_URL_NOT_SET", raising=False)
    ws = workspace(tmp_path, store_url, {"alarm": {"type": "slack", "url": "${env:HOOK_URL_NOT_SET}"}})
    with MetadataStore(store_url) as store:
        put(store, "alarm", [note(1)])
        clock = Clock()
        deliverer = Deliverer(store, clock)
        report = deliverer.drain(ws)
        assert report.retrying == 1
        assert "HOOK_URL_NOT_SET is not set" in report.errors["alarm"]
        monkeypatch.setenv("HOOK_URL_NOT_SET", hook.url)
        clock.move(minutes=1)
        assert deliverer.drain(load_workspace(tmp_path)).delivered == 1


def test_one_drainer_at_a_time(tmp_path: Path, store_url: str, hook: Receiver) -> None:
    ws = workspace(tmp_path, store_url, {"ops": {"type": "webhook", "url": hook.url, "secret": SECRET}})
    with MetadataStore(store_url) as store:
        put(store, "ops", [note(1)])
        holder = Deliverer(store, Clock())
        assert holder.drain(ws).delivered == 1
        put(store, "ops", [note(2)])
        other = Deliverer(store, Clock()).drain(ws)
        assert other.busy is not None and other.delivered == 0
        assert holder.drain(ws, release=True).delivered == 1
        put(store, "ops", [note(3)])
        assert Deliverer(store, Clock()).drain(ws).delivered == 1
