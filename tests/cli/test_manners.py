"""CLI manners a new user meets in the first hour: a typo is a usage error and never a run,
one run shown in full, `--version`, `-w` before the command, `--json` on sync."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import typer
from typer.testing import CliRunner, Result

import syncline.cli.app as cli
from syncline.cli import common

from syncfixtures import make_items, write_ws

STREAMS = {"items": {"mode": "incremental", "write": "merge", "cursor": "updated_at"}}


@pytest.fixture(autouse=True)
def _wide_console(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(common.console, "width", 400)
    monkeypatch.setattr(common.err_console, "width", 400)


def run(*args: str | Path) -> Result:
    return CliRunner().invoke(cli.app, [str(a) for a in args])


def _runs(root: Path) -> list[dict[str, object]]:
    done = run("runs", "c", "-w", root, "--json")
    assert done.exit_code == 0, done.output
    rows: list[dict[str, object]] = json.loads(done.stdout)
    return rows


@pytest.mark.parametrize("streams", [STREAMS, None], ids=["listed", "discovered"])
def test_an_unknown_stream_is_a_usage_error_that_records_no_run(
        tmp_path: Path, streams: dict[str, object] | None) -> None:
    make_items(tmp_path / "src.db", 5)
    write_ws(tmp_path, streams)
    assert run("sync", "c", "-w", tmp_path).exit_code == 0
    typo = run("sync", "c", "-w", tmp_path, "--stream", "itmes")
    assert typo.exit_code == 2
    assert "--stream itmes is not a stream of this connection" in typo.stderr
    assert "choose from: items" in typo.stderr
    runs = _runs(tmp_path)
    assert [r["status"] for r in runs] == ["succeeded"]  # the typo left no failed run behind


def test_runs_show_prints_one_run_in_full_with_every_attempt_failure(tmp_path: Path,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    make_items(tmp_path / "src.db", 30)
    write_ws(tmp_path, STREAMS, batch_size=10, max_attempts=2)
    monkeypatch.setenv("SYNCLINE_RETRY_BASE_S", "0")
    (tmp_path / "src.db").rename(tmp_path / "gone.db")  # both attempts fail: no source file
    failed = run("sync", "c", "-w", tmp_path)
    assert failed.exit_code in (1, 2)
    shown = run("runs", "show", "1", "-w", tmp_path, "--json")
    assert shown.exit_code == 0, shown.output
    record = json.loads(shown.stdout)
    assert (record["id"], record["connection"], record["status"]) == (1, "c", "failed")
    history = record["attempt_history"]
    assert [a["number"] for a in history] == list(range(1, len(history) + 1))
    assert all(a["status"] == "failed" and "src.db" in a["failure_message"] for a in history)
    table = run("runs", "show", "1", "-w", tmp_path)
    assert record["failure_message"].splitlines()[0] in table.stdout
    missing = run("runs", "show", "7", "-w", tmp_path)
    assert missing.exit_code == 2 and "no run 7" in missing.stderr


def test_runs_lists_every_connection_or_one_and_shows_the_whole_failure(tmp_path: Path) -> None:
    make_items(tmp_path / "src.db", 5)
    write_ws(tmp_path, STREAMS)
    assert run("sync", "c", "-w", tmp_path).exit_code == 0
    (tmp_path / "src.db").unlink()
    assert run("sync", "c", "-w", tmp_path).exit_code != 0
    listed = run("runs", "list", "-w", tmp_path, "--json")
    assert [(r["id"], r["connection"]) for r in json.loads(listed.stdout)] == [(2, "c"), (1, "c")]
    failure = json.loads(listed.stdout)[0]["failure_message"]
    assert len(failure) > 70  # longer than the old 70-character cut
    both = [json.loads(run("runs", *a, "-w", tmp_path, "--json").stdout) for a in (["c"], ["list", "c"])]
    assert both[0] == both[1] == json.loads(listed.stdout)
    table = run("runs", "c", "-w", tmp_path)
    assert "".join(failure.split()) in "".join(c for c in table.stdout if c not in "│ \n")
    negative = run("runs", "c", "-w", tmp_path, "--limit", "-1")
    assert negative.exit_code == 2 and "--limit" in negative.output


def test_version_and_a_workspace_given_before_the_command(tmp_path: Path) -> None:
    from importlib.metadata import version

    shown = run("--version")
    assert shown.exit_code == 0 and shown.stdout.strip() == f"syncline {version('syncline')}"
    make_items(tmp_path / "src.db", 5)
    write_ws(tmp_path, STREAMS)
    assert run("-w", tmp_path, "sync", "c").exit_code == 0
    status = run("-w", tmp_path, "status", "--json")
    assert status.exit_code == 0 and json.loads(status.stdout)[0]["connection"] == "c"


def test_sync_json_prints_the_run_record_and_no_progress(tmp_path: Path) -> None:
    make_items(tmp_path / "src.db", 12)
    write_ws(tmp_path, STREAMS)
    done = run("sync", "c", "-w", tmp_path, "--json")
    assert done.exit_code == 0, done.output
    record = json.loads(done.stdout)  # the whole of stdout is one JSON document
    assert (record["status"], record["rows_committed"]) == ("succeeded", 12)
    assert record["streams"][0]["stream"] == "items"


def test_demo_keeps_its_own_folder_and_its_closing_hint_runs_as_printed(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import shlex
    import subprocess

    monkeypatch.chdir(tmp_path)
    elsewhere = tmp_path / "a-real-workspace"
    elsewhere.mkdir()
    monkeypatch.setenv("SYNCLINE_WORKSPACE", str(elsewhere))
    done = run("demo", "--orders", "200")
    assert done.exit_code == 0, done.output
    assert (tmp_path / "syncline-demo" / "warehouse.duckdb").exists()
    assert list(elsewhere.iterdir()) == []  # the user's workspace was not touched
    hint = next(line for line in done.stdout.splitlines() if line.startswith("query it: "))
    answer = subprocess.run(shlex.split(hint.removeprefix("query it: ")), capture_output=True,
                            text=True, timeout=60, env={"PATH": "/usr/bin:/bin"})
    assert answer.returncode == 0, answer.stderr
    assert "status" in answer.stdout and "count_star()" in answer.stdout


def test_a_sync_that_fails_before_reading_prints_its_error_and_no_empty_table(tmp_path: Path) -> None:
    write_ws(tmp_path, STREAMS)  # src.db was never created
    failed = run("sync", "c", "-w", tmp_path)
    assert failed.exit_code in (1, 2)
    assert "run 1 failed after 1 attempt(s)" in failed.stderr and "src.db" in failed.stderr
    assert "quarantined" not in failed.stdout  # no table of zero streams


def test_the_last_line_says_what_the_run_was(tmp_path: Path) -> None:
    import sqlite3

    make_items(tmp_path / "src.db", 20)
    write_ws(tmp_path, STREAMS)
    plain = run("sync", "c", "-w", tmp_path)
    assert plain.stdout.strip().splitlines()[-1].startswith("run 1 succeeded: 20 rows committed")
    again = run("sync", "c", "-w", tmp_path, "--full-refresh")
    assert "run 2: succeeded (full refresh: every stream read from its start)" in again.stdout
    assert "incremental/merge (full refresh)" in again.stdout
    con = sqlite3.connect(tmp_path / "src.db")
    con.execute("UPDATE items SET born = 'not a date', updated_at = '2027-01-01 00:00:00' WHERE id = 3")
    con.commit()
    con.close()
    warned = run("sync", "c", "-w", tmp_path)
    assert warned.exit_code == 0
    assert "items: 1 row quarantined (not loaded); see them with: SELECT" in warned.stdout
    last = warned.stdout.strip().splitlines()[-1]
    assert last.startswith("run 3 warning: ") and last.endswith("1 quarantined (see the warnings above)")


def test_h_is_help_and_errors_under_json_are_json_with_the_same_exit_code(tmp_path: Path) -> None:
    for args in (["-h"], ["sync", "-h"], ["runs", "-h"], ["store", "-h"]):
        shown = run(*args)
        assert shown.exit_code == 0 and "Usage: syncline" in shown.stdout, args
    make_items(tmp_path / "src.db", 5)
    write_ws(tmp_path, STREAMS)
    for args in (["sync", "nope"], ["runs", "show", "99"], ["state", "c", "--reset", "nope"],
                 ["cancel", "99"]):
        plain = run(*args, "-w", tmp_path)
        as_json = run(*args, "-w", tmp_path, "--json")
        assert as_json.exit_code == plain.exit_code == 2, (args, as_json.output)
        error = json.loads(as_json.stdout)["error"]
        assert error["failure_class"] == "configuration" and error["fix"], args
        assert error["message"] in " ".join(plain.stderr.split()), args


def _command_paths(command: Any, path: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    below = getattr(command, "commands", {})
    return [path, *(p for name, sub in below.items() for p in _command_paths(sub, (*path, name)))]


def test_every_commands_help_shows_flags_without_a_value() -> None:
    paths = _command_paths(typer.main.get_command(cli.app))
    assert ("sync",) in paths and ("runs", "show") in paths and ("store", "upgrade") in paths
    for path in paths:
        shown = run(*path, "-h")
        assert shown.exit_code == 0, (path, shown.output)
        assert "<bool>" not in shown.stdout, path
        assert "--help" in shown.stdout and "Show this message and exit." in shown.stdout, path


def test_init_and_demo_take_json(tmp_path: Path) -> None:
    made = run("init", "-w", tmp_path / "a", "--json")
    assert made.exit_code == 0, made.output
    assert json.loads(made.stdout)["file"] == str(tmp_path / "a" / "syncline.yaml")
    again = run("init", "-w", tmp_path / "a", "--json")  # refuses to overwrite, in JSON
    assert again.exit_code == 2 and json.loads(again.stdout)["error"]["failure_class"] == "configuration"
    demo = run("demo", "-w", tmp_path / "d", "--orders", "50", "--json")
    assert demo.exit_code == 0, demo.output
    doc = json.loads(demo.stdout)  # one document: nothing else on stdout
    assert {r["status"] for r in doc["runs"]} == {"succeeded"} and doc["up"].endswith(str(tmp_path / "d"))
    assert [s["health"] for s in doc["status"]] == ["healthy"] * len(doc["runs"])
