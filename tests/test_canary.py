"""No secret and no row value ever leaves a run: a canary password and a canary token set in a
workspace are absent from every line the commands print, every stored run, attempt and stream
message, every event and every table of the metadata store, even when an API echoes the token
in its errors and a database quotes the offending row in its own."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from apikit import json_api
from typer.testing import CliRunner

import syncline.cli.app as cli

TOKEN = "tok-canary-5f1e9a7c"
HOOK_SECRET = "whsec-canary-77aa01"
PASSWORD = "pw-canary-0b2d44e1"
ROW_VALUE = "ann.canary@example.com"


@pytest.fixture
def api() -> Iterator[str]:
    """An API that answers 500, then 401, each time echoing the credentials it got."""
    with json_api(lambda n, path, auth: (500 if n == 1 else 401,
                                         {"error": "no", "you_sent": auth, "query": path})) as url:
        yield url


def test_a_canary_password_token_and_row_value_never_appear(tmp_path: Path, api: str,
                                                            require_pg_database: str,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    import psycopg

    url = require_pg_database.replace("postgresql+psycopg://", "postgresql://", 1)
    with psycopg.connect(url, autocommit=True) as con:
        con.execute("CREATE TABLE people (id int PRIMARY KEY, email text NOT NULL)")
        con.execute("INSERT INTO people VALUES (1, %s), (2, %s)", (ROW_VALUE, ROW_VALUE))
    monkeypatch.setenv("CANARY_TOKEN", TOKEN)
    monkeypatch.setenv("CANARY_PASSWORD", PASSWORD)
    monkeypatch.setenv("CANARY_HOOK", HOOK_SECRET)
    dsn = url.split("://", 1)[1]  # user@host:port/db; trust auth takes any password
    user_host, db = dsn.split("/", 1)
    user, host_port = user_host.split("@")
    host, port = host_port.split(":")
    (tmp_path / "syncline.yaml").write_text(yaml.safe_dump({
        "version": 1,
        "sources": {
            "api": {"type": "rest", "base_url": api, "auth": {"type": "bearer", "token": "${env:CANARY_TOKEN}"},
                    "retry": {"max_attempts": 2, "backoff_base_s": 0.01, "max_backoff_s": 0.01},
                    "streams": {"orders": {"path": "/orders"}}},
            "db": {"type": "postgres", "host": host, "port": int(port), "user": user,
                   "password": "${env:CANARY_PASSWORD}", "database": db}},
        "destinations": {"wh": {"type": "duckdb", "path": "wh.duckdb"}},
        # a receiver that refuses each notification, echoing the credentials it got
        "channels": {"hook": {"type": "webhook", "url": f"{api}/hook", "secret": "${env:CANARY_HOOK}",
                              "headers": {"Authorization": "Bearer ${env:CANARY_TOKEN}"}}},
        "alerts": {"connection-down": {"notify": ["hook"], "group_wait": "0s"},
                   "failures": {"when": "run.failed", "notify": ["hook"]}},
        "digest": {"notify": ["hook"]},
        "connections": {
            "from_api": {"source": "api", "destination": "wh", "max_attempts": 1},
            # two rows with one key: the merge refuses it, quoting the key's value
            "from_db": {"source": "db", "destination": "wh", "max_attempts": 1, "streams": {
                "public.people": {"mode": "full_refresh", "write": "merge", "primary_key": ["email"]}}}}}))
    said: list[str] = []

    def run(*args: str) -> None:
        done = CliRunner().invoke(cli.app, [*args, "-w", str(tmp_path)])
        said.append(done.output)

    run("sync", "from_api")
    run("sync", "from_db")
    for command in (["status", "--json"], ["runs", "--json"], ["runs", "show", "1"],
                    ["runs", "show", "2"], ["events", "--json"], ["logs", "1", "--json"], ["logs", "2"], ["queue", "--json"], ["check"],
                    ["alerts", "check"], ["alerts", "--json"], ["notifications", "--json"],
                    ["notifications", "test", "hook"], ["digest", "--json", "--send"],
                    ["store", "backup", str(tmp_path / "store.jsonl")]):
        run(*command)
    from prometheus_client import generate_latest

    from syncline.monitoring.metrics import registry
    from syncline.store.store import MetadataStore

    with MetadataStore(f"sqlite:///{tmp_path / '.syncline' / 'metadata.db'}") as store:
        said.append(generate_latest(registry(store)).decode())  # the metrics too
    stored = (tmp_path / "store.jsonl").read_text()
    everything = "\n".join(said) + stored
    assert "HTTP 401" in everything and "is not unique" in everything  # the runs failed, saying why
    # `sync` shows the person at the terminal a few repeated key values (never stored)
    reported = "\n".join(said[2:]) + stored
    assert "syncline_runs_total" in said[-1]
    assert '"last_error": "HTTP 401' in everything  # told, refused, the answer echoing the token
    for canary, where in ((TOKEN, everything), (PASSWORD, everything), (HOOK_SECRET, everything),
                          (ROW_VALUE, reported)):
        assert canary not in where, f"{canary} leaked:\n" + "\n".join(
            line for line in where.splitlines() if canary in line)
