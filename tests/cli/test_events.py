"""`syncline events`: what happened, oldest first, filtered by connection, kind and time;
`--json` bodies match their documented JSON Schemas; `--follow` prints new events as they come."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import jsonschema
from typer.testing import CliRunner, Result

import syncline.cli.app as cli
from syncline.event_kinds import KINDS

from syncfixtures import make_items, sqlite_script, write_ws

STREAMS = {"items": {"mode": "incremental", "write": "merge", "cursor": "updated_at"}}


def run(*args: str | Path) -> Result:
    return CliRunner().invoke(cli.app, [str(a) for a in args])


def test_events_tell_what_happened_and_match_their_schemas(tmp_path: Path) -> None:
    make_items(tmp_path / "src.db", 20)
    write_ws(tmp_path, STREAMS)
    assert run("sync", "c", "-w", tmp_path).exit_code == 0
    sqlite_script(tmp_path / "src.db", "DROP TABLE items")  # the next run fails
    assert run("sync", "c", "-w", tmp_path).exit_code == 2  # a configuration failure
    done = run("events", "-w", tmp_path, "--json")
    assert done.exit_code == 0, done.output
    events = json.loads(done.stdout)
    assert [e["kind"] for e in events] == ["config.applied", "run.started", "stream.finished",
                                           "run.succeeded", "run.started", "stream.failed",
                                           "run.failed"], events
    for e in events:
        jsonschema.validate(e["body"], KINDS[e["kind"]].body)
        assert e["region"] == "default" and e["severity"] == KINDS[e["kind"]].severity
    finished = events[2]
    assert (finished["connection"], finished["run"], finished["stream"]) == ("c", 1, "items")
    assert finished["body"]["rows_committed"] == 20 and finished["body"]["window"]["to"]
    failed = json.loads(run("events", "-w", tmp_path, "--kind", "run.failed", "--json").stdout)
    assert [e["run"] for e in failed] == [2] and "items" in failed[0]["body"]["message"]
    runs = json.loads(run("events", "-w", tmp_path, "--kind", "run", "-c", "c", "--json").stdout)
    assert [e["kind"] for e in runs] == ["run.started", "run.succeeded", "run.started", "run.failed"]
    table = run("events", "-w", tmp_path)
    assert "run.succeeded" in table.stdout and "20 rows committed" in table.stdout, table.stdout
    bad = run("events", "-w", tmp_path, "--kind", "runs.failed")
    assert bad.exit_code == 2 and "no event kind 'runs.failed'" in bad.output, bad.output


def test_events_follow_prints_new_events_as_they_come(tmp_path: Path) -> None:
    make_items(tmp_path / "src.db", 5)
    write_ws(tmp_path, STREAMS)
    syncline = str(Path(sys.executable).parent / "syncline")
    assert run("apply", "-w", tmp_path).exit_code == 0
    follow = subprocess.Popen([syncline, "events", "-w", str(tmp_path), "--follow", "--json",
                               "--kind", "run"], stdout=subprocess.PIPE, text=True)
    try:
        time.sleep(1.5)  # following, with no run event yet
        assert run("sync", "c", "-w", tmp_path).exit_code == 0
        assert follow.stdout is not None
        lines = [json.loads(follow.stdout.readline()) for _ in range(2)]
        assert [e["kind"] for e in lines] == ["run.started", "run.succeeded"]
    finally:
        follow.terminate()
        follow.wait(10)
