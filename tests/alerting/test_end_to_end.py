"""End to end with `syncline up`: a connection whose API is down fails, the built-in
connection-down rule fires, a signed webhook and an email (a real SMTP server) say so; the API
comes back, the next run succeeds, and the resolution follows on both."""

from __future__ import annotations

import json
import time
from pathlib import Path

import yaml
from apikit import json_api
from receivers import receiver, smtp_server
from typer.testing import CliRunner
from upkit import Up, free_port, wait_for

import syncline.cli.app as cli
from syncline.alerting.notification import verify

SECRET = "e2e-hook-secret-0123"


def trigger(root: Path, up: Up) -> None:
    done = CliRunner().invoke(cli.app, ["trigger", "shop", "-w", str(root)],
                              env={"SYNCLINE_CLOCK": f"file:{up.clock}"})
    assert done.exit_code == 0, done.output


def test_a_failing_connection_is_told_signed_and_by_mail_then_resolved(
        tmp_path: Path, running: list[Up]) -> None:
    api_port = free_port()
    with receiver() as hook, receiver() as wall, smtp_server(tmp_path) as mail:
        (tmp_path / "syncline.yaml").write_text(yaml.safe_dump({
            "version": 1,
            "sources": {"shop_api": {
                "type": "rest", "base_url": f"http://127.0.0.1:{api_port}",
                "retry": {"max_attempts": 1, "backoff_base_s": 0.01, "max_backoff_s": 0.01},
                "streams": {"orders": {"path": "/orders", "primary_key": ["id"]}}}},
            "destinations": {"wh": {"type": "duckdb", "path": "wh.duckdb"}},
            "connections": {"shop": {"source": "shop_api", "destination": "wh", "max_attempts": 1}},
            "channels": {
                "ops": {"type": "webhook", "url": hook.url, "secret": SECRET},
                "wall": {"type": "webhook", "url": wall.url, "secret": SECRET},
                "team-mail": {"type": "email", "host": "127.0.0.1", "port": mail.port,
                              "ca_file": str(mail.cert), "user": "syncline",
                              "password": "mail-secret-1", "from": "syncline@example.com",
                              "to": ["data-team@example.com"]}},
            "alerts": {"connection-down": {"notify": ["ops", "team-mail"]}},
            "digest": {"at": ["12:01"], "notify": ["wall"]}}))
        up = Up(tmp_path)
        running.append(up)
        up.ready()
        wait_for(lambda: wall.requests, "the digest missed while `up` was down (yesterday 12:01)")
        assert wall.requests[0].json()["body"]["title"] == "Syncline digest: all 1 connections healthy"
        trigger(tmp_path, up)
        wait_for(lambda: "alert connection-down firing for shop" in up.output(),
                 lambda: f"the rule to fire; log:\n{up.output()}", timeout=60)
        assert hook.requests == []  # it waits 30 s (group_wait) for others failing the same way
        now = CliRunner().invoke(cli.app, ["digest", "--json", "-w", str(tmp_path)],
                                 env={"SYNCLINE_CLOCK": f"file:{up.clock}"})
        assert [c["connection"] for c in json.loads(now.stdout)["groups"][0]["connections"]] == ["shop"]
        up.move_clock(61)  # past group_wait, and 12:01: the digest's time
        wait_for(lambda: hook.requests, lambda: f"the firing webhook; log:\n{up.output()}", timeout=60)
        [fired] = hook.requests
        assert verify(SECRET, fired.headers["Syncline-Signature"], fired.body, int(time.time()))
        tampered = fired.body.replace(b'"connection_down', b'"freshness_breach')
        assert tampered != fired.body
        assert not verify(SECRET, fired.headers["Syncline-Signature"], tampered, int(time.time()))
        payload = fired.json()
        assert (payload["kind"], payload["connection"], payload["severity"]) == (
            "alert.firing", "shop", "error")
        assert payload["id"] == fired.headers["Syncline-Idempotency-Key"]
        wait_for(lambda: mail.messages, "the firing mail")
        wait_for(lambda: len(wall.requests) == 2, "the 12:01 digest")
        wall_of_shame = wall.requests[1].json()["body"]
        assert wall_of_shame["failing"] == 1
        assert wall_of_shame["groups"][0]["connections"][0]["connection"] == "shop"
        assert mail.messages[0]["Subject"] == "[syncline] error · connection-down firing · shop"
        with json_api(lambda _n, _path, _auth: (200, [{"id": 1, "total": 5}, {"id": 2, "total": 7}]),
                      port=api_port):
            trigger(tmp_path, up)
            wait_for(lambda: len(hook.requests) == 2, lambda: f"the resolution; log:\n{up.output()}",
                     timeout=60)
        resolved = hook.requests[1].json()
        assert (resolved["kind"], resolved["connection"]) == ("alert.resolved", "shop")
        assert resolved["body"]["since"] == payload["body"]["since"]
        wait_for(lambda: len(mail.messages) == 2, "the resolved mail")
        assert "resolved" in str(mail.messages[1]["Subject"])
        assert up.stop() == 0
    assert len(hook.requests) == 2 and len(wall.requests) == 2  # nothing twice
    assert SECRET not in up.output() and "mail-secret-1" not in up.output()
