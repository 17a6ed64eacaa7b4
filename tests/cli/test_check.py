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
                    "cursor": "updated_at", "cursor_nullable": False, "primary_key": ["id"],
                    "next_run": "first load"}
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


def _rewrite(root: Path, edit: Any) -> None:
    doc = yaml.safe_load((root / "syncline.yaml").read_text())
    edit(doc)
    (root / "syncline.yaml").write_text(yaml.safe_dump(doc))


def _offline_json(root: Path) -> tuple[int, list[dict[str, Any]]]:
    done = CliRunner().invoke(cli.app, ["check", "-w", str(root), "--json", "--offline"])
    outcomes: list[dict[str, Any]] = json.loads(done.stdout)
    return done.exit_code, outcomes


def test_check_offline_plans_from_the_file_without_reaching_anything(
        tmp_path: Path, monkeypatch: Any) -> None:
    # no source file, an unreachable PostgreSQL destination and an unset password: CI's case
    monkeypatch.delenv("WH_PASSWORD", raising=False)
    write_ws(tmp_path, {**STREAMS, "Order Items": {"mode": "full_refresh"}}, source_path="absent.db")
    _rewrite(tmp_path, lambda d: d["destinations"].update(wh={
        "type": "postgres", "host": "127.0.0.1", "port": 1, "user": "nobody",
        "password": "${env:WH_PASSWORD}", "database": "none"}))
    code, outcomes = _offline_json(tmp_path)
    assert code == 0
    assert [(o["kind"], o["ok"]) for o in outcomes] == [
        ("source", True), ("destination", True), ("connection", True)]
    assert "needs WH_PASSWORD at run time" in outcomes[1]["message"]
    plans = {p["stream"]: p for p in outcomes[2]["plan"]}
    items, order_items = plans["items"], plans["Order Items"]
    assert (items["table"], items["mode"], items["write"], items["cursor"]) == (
        "items", "incremental", "merge", "updated_at")
    assert (order_items["table"], order_items["write"], order_items["primary_key"]) == (
        "order_items", None, None)
    assert not (tmp_path / "wh.duckdb").exists() and not (tmp_path / "absent.db").exists()
    skipped = outcomes[2]["skipped"]  # what CI cannot know, said rather than passed in silence
    assert "privileges (with the GRANTs to run)" in skipped and "connect and authenticate" in outcomes[1]["skipped"]
    shown = CliRunner().invoke(cli.app, ["check", "-w", str(tmp_path), "--offline"])
    assert "skipped offline" in shown.stdout and "cursor columns exist and can be ordered" in shown.stdout
    # online, the same workspace cannot be reached
    assert _check_json(tmp_path)[0] == 2  # the unset variable is a configuration error there


def test_check_offline_refuses_what_the_file_alone_decides(tmp_path: Path) -> None:
    write_ws(tmp_path, {"orders": {"table": "t"}, "refunds": {"table": "t"}})
    code, outcomes = _offline_json(tmp_path)
    assert code == 2
    assert "streams 'orders' and 'refunds' would both write table 't'" in outcomes[2]["message"]
    write_ws(tmp_path, {"orders": {"mode": "incremental", "write": "replace", "cursor": "u"}})
    code, outcomes = _offline_json(tmp_path)
    assert code == 2 and "write: replace only goes with mode: full_refresh" in outcomes[2]["message"]
    write_ws(tmp_path, {"orders": {"mode": "cdc"}})  # the SQLite source reads no change log
    code, outcomes = _offline_json(tmp_path)
    assert code == 2 and "mode cdc is not supported by this source" in outcomes[2]["message"]
    write_ws(tmp_path, None)  # every discovered stream: only discovery can name them
    code, outcomes = _offline_json(tmp_path)
    assert code == 0 and outcomes[2]["plan"][0]["stream"] == "*"
