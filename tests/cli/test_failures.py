"""`syncline failures`: the same cause failing several connections is one group, listed first,
with the connections it affects, how often, a sample run and the fix; another cause is another."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from apikit import json_api
from typer.testing import CliRunner, Result

import syncline.cli.app as cli

from syncfixtures import make_items, sqlite_script


@pytest.fixture
def api() -> Iterator[str]:
    """Every request refused: an expired token."""
    with json_api(lambda _n, path, _auth: (401, {"error": "token expired", "request": path})) as url:
        yield url


def run(*args: str | Path) -> Result:
    return CliRunner().invoke(cli.app, [str(a) for a in args])


def test_one_cause_failing_two_connections_is_one_group(tmp_path: Path, api: str) -> None:
    make_items(tmp_path / "src.db", 5)
    rest = {"type": "rest", "base_url": api, "streams": {"orders": {"path": "/orders", "primary_key": ["id"]}}}
    (tmp_path / "syncline.yaml").write_text(yaml.safe_dump({
        "version": 1,
        "sources": {"crm_eu": rest, "crm_us": {**rest, "base_url": api.replace("127.0.0.1", "localhost")},
                    "db": {"type": "sqlite", "path": "src.db"}},
        "destinations": {"wh": {"type": "duckdb", "path": "wh.duckdb"}},
        "connections": {"eu": {"source": "crm_eu", "destination": "wh"},
                        "us": {"source": "crm_us", "destination": "wh"},
                        "db": {"source": "db", "destination": "wh", "streams": {"items": {}}}}}))
    assert run("sync", "db", "-w", tmp_path).exit_code == 0
    sqlite_script(tmp_path / "src.db", "DROP TABLE items")
    for connection in ("eu", "us", "eu", "db"):
        assert run("sync", connection, "-w", tmp_path).exit_code != 0
    done = run("failures", "-w", tmp_path, "--json")
    assert done.exit_code == 0, done.output
    groups = json.loads(done.stdout)
    assert [(g["connections"], g["count"]) for g in groups] == [(["eu", "us"], 3), (["db"], 1)], groups
    api_401 = groups[0]
    assert (api_401["origin"], api_401["error_type"], api_401["failure_class"]) == (
        "source", "HTTP 401", "configuration")
    assert api_401["sample_run"] == 4 and "HTTP 401" in api_401["sample"]  # the newest
    assert api_401["fix"] and "credentials" in api_401["fix"]
    assert api_401["runbook"] == f"docs/runbooks/failure-{api_401['failure_class']}.md"
    assert "no such stream" in groups[1]["sample"]
    status = {c["connection"]: c for c in json.loads(run("status", "-w", tmp_path, "--json").stdout)}
    assert status["eu"]["failure_group"]["group"] == status["us"]["failure_group"]["group"] == api_401["group"]
    assert status["db"]["failure_group"]["group"] == groups[1]["group"]
    table = run("failures", "-w", tmp_path)
    assert "2: eu, us" in table.stdout and "HTTP 401" in table.stdout, table.stdout
