"""`syncline silence`: add one for a connection or a rule, list it, expire it; mistakes are
refused with the fix."""

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
        "version": 1, "sources": {"db": {"type": "sqlite", "path": "src.db"}},
        "destinations": {"wh": {"type": "duckdb", "path": "wh.duckdb"}},
        "connections": {"shop": {"source": "db", "destination": "wh"}}}))
    return tmp_path


def test_add_list_and_expire(ws: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    added = run("silence", "add", "--connection", "shop", "--for", "2h", "--reason", "vendor outage",
                "-w", ws)
    assert added.exit_code == 0, added.output
    assert "silence 1: connection shop until 2026-12-07 14:00 UTC (vendor outage)" in added.output
    rule = json.loads(run("silence", "add", "--rule", "connection-down", "--for", "30m",
                          "--reason", "deploy", "--json", "-w", ws).stdout)
    assert (rule["rule"], rule["connection"], rule["active"]) == ("connection-down", None, True)
    listed = json.loads(run("silence", "--json", "-w", ws).stdout)
    assert [s["id"] for s in listed] == [1, 2]
    assert run("silence", "expire", "1", "-w", ws).exit_code == 0
    assert [s["id"] for s in json.loads(run("silence", "list", "--json", "-w", ws).stdout)] == [2]
    monkeypatch.setenv(clock.ENV, "2026-12-07T13:00:00Z")
    assert "no silences" in run("silence", "-w", ws).output
    everything = json.loads(run("silence", "list", "--all", "--json", "-w", ws).stdout)
    assert [(s["id"], s["active"]) for s in everything] == [(1, False), (2, False)]


@pytest.mark.parametrize(("args", "message"), [
    (["--for", "2h", "--reason", "x"], "say what to silence"),
    (["--connection", "shop"], "a silence needs a reason"),
    (["--connection", "shpo", "--reason", "x"], "no connection named 'shpo'"),
    (["--rule", "connection-dwn", "--reason", "x"], "no alert rule named 'connection-dwn'"),
    (["--connection", "shop", "--reason", "x", "--for", "soon"], "'soon' is not a duration"),
], ids=["nothing", "no-reason", "unknown-connection", "unknown-rule", "bad-duration"])
def test_mistakes_are_refused_with_the_fix(ws: Path, args: list[str], message: str) -> None:
    done = run("silence", "add", *args, "-w", ws)
    assert done.exit_code == 2
    assert message in done.output
    assert run("silence", "expire", "9", "-w", ws).exit_code == 2
