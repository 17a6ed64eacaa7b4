"""End to end with `syncline up`: a connection whose API is down fails; after 48 hours (the
service's clock, moved by the test) BugBot opens one incident owned by the connection's team
and pages its on-call (a signed webhook, a real SMTP server); the tracker files a ticket; the
API comes back, three runs succeed, the incident is mitigated; a person resolves it with a
note; the ticket is commented and closed."""

from __future__ import annotations

import json
import time
from pathlib import Path

import yaml
from apikit import json_api
from receivers import receiver, smtp_server
from trackerkit import fake_tracker
from typer.testing import CliRunner
from upkit import Up, free_port, wait_for

import syncline.cli.app as cli
from syncline.alerting.notification import verify

ROWS = [{"id": 1, "total": 5}]


def test_bugbot_pages_the_owner_opens_a_ticket_and_the_fix_closes_it(tmp_path: Path,
                                                                       running: list[Up]) -> None:
    api_port = free_port()
    rotation = {"every": "7d", "handoff": "2026-01-05T09:00"}
    with receiver() as hook, smtp_server(tmp_path) as mail, fake_tracker("github", "gh-e2e") as gh:
        (tmp_path / "syncline.yaml").write_text(yaml.safe_dump({
            "version": 1,
            "teams": {"platform": {"on_call": {"rotation": ["ann@example.com"], **rotation},
                                   "notify": ["team-hook", "team-mail"]}},
            "sources": {"shop_api": {
                "type": "rest", "base_url": f"http://127.0.0.1:{api_port}", "owner": "platform",
                "retry": {"max_attempts": 1, "backoff_base_s": 0.01, "max_backoff_s": 0.01},
                "streams": {"orders": {"path": "/orders", "primary_key": ["id"]}}}},
            "destinations": {"wh": {"type": "duckdb", "path": "wh.duckdb"}},
            "connections": {"shop": {"source": "shop_api", "destination": "wh", "max_attempts": 1}},
            "channels": {
                "team-hook": {"type": "webhook", "url": hook.url, "secret": "e2e-secret"},
                "team-mail": {"type": "email", "host": "127.0.0.1", "port": mail.port,
                              "ca_file": str(mail.cert), "user": "syncline",
                              "password": "mail-secret-1", "from": "syncline@example.com",
                              "to": ["platform@example.com"]},
                "tracker": {"type": "github_issues", "repo": "acme/data-incidents",
                            "token": "gh-e2e", "url": gh.url}},
            "alerts": {"connection-down": {"enabled": False}, "bugbot": {"group_wait": "0s"},
                       "tickets": {"when": "incident.opened", "notify": ["tracker"]}}}))
        up = Up(tmp_path)
        running.append(up)
        up.ready()
        env = {"SYNCLINE_CLOCK": f"file:{up.clock}"}

        def cli_run(*args: str) -> str:
            done = CliRunner().invoke(cli.app, [*args, "-w", str(tmp_path)], env=env)
            assert done.exit_code == 0, done.output
            return done.stdout

        cli_run("trigger", "shop")
        wait_for(lambda: json.loads(cli_run("runs", "--json")) and
                 json.loads(cli_run("runs", "--json"))[0]["status"] == "failed", "the failed run")
        up.move_clock(48 * 3600 + 5)  # BugBot: down for more than 48 hours
        wait_for(lambda: hook.requests, lambda: f"the page; log:\n{up.output()}", timeout=60)
        page = hook.requests[0]
        assert verify("e2e-secret", page.headers["Syncline-Signature"], page.body, int(time.time()))
        assert page.json()["body"]["page"]["person"] == "ann@example.com"
        wait_for(lambda: any("ann@example.com" in str(m["To"]) for m in mail.messages), "the page by mail")
        [inc] = json.loads(cli_run("incidents", "--json"))
        assert (inc["owner"], inc["rule"], inc["state"]) == ("platform", "bugbot", "open")
        assert inc["failure_group"] and inc["due_at"]
        wait_for(lambda: gh.tickets, lambda: f"the ticket; log:\n{up.output()}")
        with json_api(lambda _n, _p, _a: (200, ROWS), port=api_port):
            for n in range(3):
                cli_run("trigger", "shop")
                wait_for(lambda n=n: [r["status"] for r in json.loads(cli_run("runs", "--json"))
                                      ].count("succeeded") == n + 1, f"success {n + 1}", timeout=60)
                up.move_clock(48 * 3600 + 60 * (n + 1))
        up.move_clock(48 * 3600 + 600)  # past the 30 s mitigation sweep
        wait_for(lambda: json.loads(cli_run("incidents", "--json"))[0]["state"] == "mitigated",
                 lambda: f"mitigation; log:\n{up.output()}", timeout=60)
        cli_run("incidents", "resolve", str(inc["id"]), "--note", "the API was restored")
        wait_for(lambda: gh.tickets["1"]["state"] == "closed", lambda: f"the ticket closed; "
                 f"{gh.tickets}; log:\n{up.output()}", timeout=60)
        comments = gh.tickets["1"]["comments"]
        assert any("mitigate" in c for c in comments) and "the API was restored" in comments[-1]
        assert up.stop() == 0
    assert len(gh.tickets) == 1 and gh.refused == 0
