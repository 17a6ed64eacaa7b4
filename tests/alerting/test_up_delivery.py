"""`syncline up` delivers the outbox: a receiver that is down gets its notifications once it is
back, and `up`'s log says when the channel failed and when it delivers again, once each."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import yaml
from receivers import receiver
from typer.testing import CliRunner
from upkit import Up, wait_for

import syncline.cli.app as cli


def outbox_holder(root: Path) -> str | None:
    with sqlite3.connect(root / ".syncline" / "metadata.db") as db:
        row = db.execute("SELECT holder FROM leaders WHERE role = 'outbox'").fetchone()
    return None if row is None else str(row[0])


def test_up_delivers_what_waited_once_the_receiver_is_back(tmp_path: Path, running: list[Up]) -> None:
    with receiver() as hook:
        hook.stop()
        (tmp_path / "syncline.yaml").write_text(yaml.safe_dump({"version": 1, "channels": {
            "ops": {"type": "webhook", "url": hook.url, "secret": "up-secret-0123456789"}}}))
        up = Up(tmp_path)
        running.append(up)
        up.ready()
        wait_for(lambda: outbox_holder(tmp_path), "up to hold the outbox")
        queued = CliRunner().invoke(cli.app, ["notifications", "test", "ops", "-w", str(tmp_path)],
                                    env={"SYNCLINE_CLOCK": f"file:{up.clock}"})
        assert queued.exit_code == 0, queued.output
        assert "delivers it" in queued.output  # `up` holds the outbox
        wait_for(lambda: "notifications: ops failed" in up.output(), lambda: up.output())
        hook.start()
        up.move_clock(3600)  # past any retry wait
        wait_for(lambda: hook.requests, lambda: f"the delivery; log:\n{up.output()}")
        wait_for(lambda: "notifications: ops delivers again" in up.output(), lambda: up.output())
        assert [r.json()["kind"] for r in hook.requests] == ["notification.test"]
        assert up.output().count("notifications: ops failed") == 1
        assert up.stop() == 0
        assert "up-secret-0123456789" not in up.output()
