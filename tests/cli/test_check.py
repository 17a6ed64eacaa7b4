"""`check` plans every connection as `sync` would and says what the next run does; `--json`
carries the same, and the exit code tells a configuration error (2) from an unreachable
destination (1)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml
from typer.testing import CliRunner

import syncline.cli.app as cli

from syncfixtures import make_items, write_ws

STREAMS = {"items": {"mode": "incremental", "write": "merge", "cursor": "updated_at"}}


def _check_json(root: Path) -> tuple[int, list[dict[str, Any]]]:
    done = CliRunner().invoke(cli.app, ["check", "-w", str(root), "--json"])
    outcomes: list[dict[str, Any]] = json.loads(done.stdout)
    return done.exit_code, outcomes


def test_check_json_prints_the_plan_and_what_the_next_run_does(tmp_path: Path) -> None:
    make_items(tmp_path / "src.db", 8)
    write_ws(tmp_path, STREAMS)
    code, outcomes = _check_json(tmp_path)
    assert code == 0
    assert [(o["kind"], o["name"], o["ok"]) for o in outcomes] == [
        ("source", "src", True), ("destination", "wh", True), ("connection", "c", True)]
    [plan] = outcomes[2]["plan"]
    assert plan == {"stream": "items", "table": "items", "mode": "incremental", "write": "merge",
                    "cursor": "updated_at", "primary_key": ["id"], "next_run": "first load"}
    assert CliRunner().invoke(cli.app, ["sync", "c", "-w", str(tmp_path)]).exit_code == 0
    assert _check_json(tmp_path)[1][2]["plan"][0]["next_run"] == "incremental"
    table = CliRunner().invoke(cli.app, ["check", "-w", str(tmp_path)])
    assert "plan of c" in table.stdout and "updated_at" in table.stdout


def test_check_exits_2_for_a_configuration_error_and_1_for_an_unreachable_destination(
        tmp_path: Path) -> None:
    make_items(tmp_path / "src.db", 3)
    write_ws(tmp_path, {"items": {"mode": "incremental", "write": "merge", "cursor": "no_such"}})
    code, outcomes = _check_json(tmp_path)
    assert code == 2
    bad = outcomes[2]
    assert (bad["kind"], bad["ok"], bad["failure_class"]) == ("connection", False, "configuration")
    assert "no_such" in bad["message"]
    write_ws(tmp_path, STREAMS)
    doc = yaml.safe_load((tmp_path / "syncline.yaml").read_text())
    doc["destinations"]["wh"] = {"type": "postgres", "host": "127.0.0.1", "port": 1,
                                 "user": "nobody", "database": "none"}
    (tmp_path / "syncline.yaml").write_text(yaml.safe_dump(doc))
    code, outcomes = _check_json(tmp_path)
    assert code == 1
    assert [o["ok"] for o in outcomes] == [True, False, False]
    assert outcomes[1]["failure_class"] != "configuration"
