"""`sync --stream S --since VALUE` re-reads an incremental stream from a cursor value without a
full refresh; `state --set S=VALUE` moves its checkpoint by hand, said in an event and by the
next run."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

import syncline.cli.app as cli

from warehouse import Warehouse


@pytest.fixture
def wh(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Warehouse:
    monkeypatch.setattr(cli.console, "width", 400)
    monkeypatch.setattr(cli.err_console, "width", 400)
    w = Warehouse(tmp_path, "duckdb", "dst")
    w.source("CREATE TABLE items (id INTEGER PRIMARY KEY, v TEXT, updated_at TEXT NOT NULL);"
             "INSERT INTO items VALUES " + ", ".join(f"({i}, 'v{i}', '2026-01-0{i}')" for i in range(1, 6)))
    return w


def loaded(wh: Warehouse, write: str = "merge") -> None:
    wh.streams({"items": {"mode": "incremental", "cursor": "updated_at", "write": write}})
    code, out = wh.sync()
    assert code == 0, out
    # a fix at the source that did not touch the cursor: the next reads cannot see it
    wh.source("UPDATE items SET v = 'fixed' WHERE id IN (2, 4);")


def cli_run(wh: Warehouse, *args: str) -> tuple[int, str]:
    result = CliRunner().invoke(cli.app, [*args, "--workspace", str(wh.root)])
    return result.exit_code, " ".join(result.output.split())


def test_since_rereads_the_rows_at_or_after_a_cursor_value(wh: Warehouse) -> None:
    loaded(wh)
    assert wh.sync()[0] == 0 and dict(wh.query("SELECT id, v FROM {s}.items"))[4] == "v4"
    code, out = wh.sync("--stream", "items", "--since", "2026-01-03")
    assert code == 0, out
    assert dict(wh.query("SELECT id, v FROM {s}.items")) == {
        1: "v1", 2: "v2", 3: "v3", 4: "fixed", 5: "v5"}  # 2 is below the value: not read
    assert "| 3 | 3 | 0 |" in out.replace("│", "|")  # rows 3, 4 and 5 read again
    assert "run 3 succeeded" in out  # asked for: not a warning
    runs = json.loads(cli_run(wh, "runs", "show", "3", "--json")[1])
    assert "re-read from updated_at >= 2026-01-03 (--since)" in json.dumps(runs)
    state = json.loads(cli_run(wh, "state", "c", "--json")[1])["items"]
    assert state["source"]["cursor"] == "2026-01-05"  # the checkpoint is where it was


def test_since_is_refused_where_it_would_skip_or_duplicate_rows(wh: Warehouse) -> None:
    loaded(wh)
    code, out = wh.sync("--stream", "items", "--since", "2026-02-01")
    assert code == 2 and "past the stream's checkpoint (2026-01-05)" in out and "--set" in out, out
    code, out = wh.sync("--since", "2026-01-01")
    assert code == 2 and "name exactly one stream with --stream" in out, out
    loaded(wh, write="append")
    code, out = wh.sync("--stream", "items", "--since", "2026-01-01")
    assert code == 2 and "write: append would add them again" in out, out


def test_state_set_moves_the_checkpoint_and_says_so(wh: Warehouse) -> None:
    loaded(wh, write="history")
    code, out = cli_run(wh, "state", "c", "--set", "items=2026-01-01")
    assert code == 0 and "from 2026-01-05 to 2026-01-01" in out, out
    code, out = cli_run(wh, "state", "c")
    assert "moved by state --set from 2026-01-05" in out, out
    events = json.loads(cli_run(wh, "events", "--kind", "checkpoint.moved", "--json")[1])
    assert [(e["stream"], e["body"]["action"], e["body"]["from"], e["body"]["to"]) for e in events] \
        == [("items", "set", "2026-01-05", "2026-01-01")]
    code, out = wh.sync()
    assert code == 0, out
    current = dict(wh.query("SELECT id, v FROM {s}.items WHERE _syncline_is_current"))
    assert current == {1: "v1", 2: "fixed", 3: "v3", 4: "fixed", 5: "v5"}
    # the re-read rows that did not change add no version
    assert wh.query("SELECT count(*) FROM {s}.items") == [(7,)]
    assert "moved from 2026-01-05 to 2026-01-01" in json.dumps(
        json.loads(cli_run(wh, "runs", "show", "2", "--json")[1]))
    code, out = cli_run(wh, "state", "c", "--set", "nope=1")
    assert code == 2 and "no checkpoint for stream 'nope'" in out, out
