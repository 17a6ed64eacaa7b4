"""`syncline notifications`: test a channel, see the delivery log, deliver what waits, as a new
user would; the channel's secret never shows."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from receivers import Receiver, receiver
from typer.testing import CliRunner, Result

import syncline.cli.app as cli
from syncline.alerting.notification import verify

SECRET = "whsec-cli-0123456789"


def run(*args: str | Path) -> Result:
    return CliRunner().invoke(cli.app, [str(a) for a in args])


@pytest.fixture
def hook() -> Iterator[Receiver]:
    with receiver() as r:
        yield r


@pytest.fixture
def ws(tmp_path: Path, hook: Receiver, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("HOOK_SECRET", SECRET)
    (tmp_path / "syncline.yaml").write_text(yaml.safe_dump({"version": 1, "channels": {
        "ops": {"type": "webhook", "url": hook.url, "secret": "${env:HOOK_SECRET}"}}}))
    return tmp_path


def test_a_test_notification_reaches_the_receiver_signed(ws: Path, hook: Receiver) -> None:
    done = run("notifications", "test", "ops", "-w", ws)
    assert done.exit_code == 0, done.output
    assert "delivered a test notification to ops" in done.output
    [request] = hook.requests
    assert request.json()["kind"] == "notification.test"
    assert verify(SECRET, request.headers["Syncline-Signature"], request.body, int(time.time()))
    listed = run("notifications", "--json", "-w", ws)
    [entry] = json.loads(listed.stdout)
    assert (entry["channel"], entry["status"], entry["attempts"]) == ("ops", "delivered", 1)
    assert SECRET not in done.output + listed.output + run("notifications", "-w", ws).output


def test_a_receiver_down_then_back_gets_what_waited(ws: Path, hook: Receiver,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    hook.stop()
    down = run("notifications", "test", "ops", "-w", ws)
    assert down.exit_code == 1
    assert "not delivered to ops" in down.output and "ConnectError" in down.output
    pending = run("notifications", "list", "-w", ws)
    assert "pending, next try in" in pending.output
    assert "no failed notifications" in run("notifications", "--failed", "-w", ws).output
    hook.start()
    monkeypatch.setenv("SYNCLINE_CLOCK", "2099-01-01T00:00:00Z")  # past the retry wait
    sent = run("notifications", "send", "--json", "-w", ws)
    assert sent.exit_code == 0, sent.output
    assert json.loads(sent.stdout)["delivered"] == 1
    assert [r.json()["kind"] for r in hook.requests] == ["notification.test"]


def test_an_unknown_channel_lists_the_known_ones(ws: Path) -> None:
    done = run("notifications", "test", "pager", "-w", ws)
    assert done.exit_code == 2
    assert "no channel named 'pager'" in done.output and "ops" in done.output
