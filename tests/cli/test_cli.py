"""The `syncline` command line as a user drives it: exit codes (0 ok, 1 run failed, 2 usage or
configuration), the messages, and the JSON views of discover, status, runs and state."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner, Result

import syncline.cli.app as cli
from syncline.config import load_workspace

from syncfixtures import dest_query, make_items, write_ws

STREAMS = {"items": {"mode": "incremental", "write": "merge", "cursor": "updated_at"}}


@pytest.fixture(autouse=True)
def _wide_console(monkeypatch: pytest.MonkeyPatch) -> None:
    """Rich wraps at 80 columns when not on a terminal; keep paths and messages on one line."""
    monkeypatch.setattr(cli.console, "width", 400)
    monkeypatch.setattr(cli.err_console, "width", 400)


@pytest.fixture
def ws(tmp_path: Path) -> Path:
    """A workspace with 20 typed rows in src.db and connection c → wh.duckdb, schema dst."""
    make_items(tmp_path / "src.db", 20)
    return write_ws(tmp_path, STREAMS)


def run(*args: str | Path, env: dict[str, str] | None = None) -> Result:
    return CliRunner().invoke(cli.app, [str(a) for a in args], env=env)


def run_json(*args: str | Path) -> Any:
    result = run(*args, "--json")
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def one_line(text: str) -> str:
    return " ".join(text.split())


# -- init -------------------------------------------------------------------------------------


def test_init_writes_a_loadable_workspace_and_refuses_to_overwrite(tmp_path: Path) -> None:
    first = run("init", "--workspace", tmp_path)
    assert first.exit_code == 0, first.output
    assert f"wrote {tmp_path / 'syncline.yaml'}" in first.stdout
    assert load_workspace(tmp_path).connections == {}
    (tmp_path / "syncline.yaml").write_text("version: 1  # mine\n", encoding="utf-8")
    again = run("init", "--workspace", tmp_path)
    assert again.exit_code == 2
    assert f"{tmp_path / 'syncline.yaml'} already exists" in again.stderr
    assert "fix:" in again.stderr
    assert (tmp_path / "syncline.yaml").read_text(encoding="utf-8") == "version: 1  # mine\n"


# -- check and discover --------------------------------------------------------------------------


def test_check_passes_on_a_good_workspace(ws: Path) -> None:
    result = run("check", "--workspace", ws)
    assert result.exit_code == 0, result.output
    rows = [one_line(line) for line in result.stdout.splitlines()]
    assert any("source │ src │ ok" in r for r in rows)
    assert any("destination │ wh │ ok" in r for r in rows)


def test_check_fails_with_the_path_of_a_missing_source_file(ws: Path) -> None:
    (ws / "src.db").rename(ws / "moved.db")
    result = run("check", "--workspace", ws)
    assert result.exit_code == 2
    out = one_line(result.stdout)
    assert f"configuration: source 'src': database file {ws / 'src.db'} does not exist" in out
    assert "fix: check `path:` of source 'src'" in out


def test_check_of_an_unknown_name_is_a_usage_error(ws: Path) -> None:
    result = run("check", "nothing", "--workspace", ws)
    assert result.exit_code == 2
    assert "nothing named 'nothing' in syncline.yaml" in result.stderr


def test_discover_json_lists_the_stream_with_columns_and_types(ws: Path) -> None:
    streams = run_json("discover", "src", "--workspace", ws)
    assert [s["name"] for s in streams] == ["items"]
    items = streams[0]
    assert {c["name"]: c["type"] for c in items["columns"]} == {
        "id": "int64", "name": "string", "price": "decimal(10,2)", "ratio": "float64",
        "active": "boolean", "meta": "json", "born": "date", "created": "timestamptz",
        "updated_at": "timestamp",
    }
    assert items["primary_key"] == ["id"]
    assert items["cursor_candidates"][0] == "updated_at"
    assert {c["name"]: c["nullable"] for c in items["columns"]}["updated_at"] is False


def test_discover_unknown_source_exits_2(ws: Path) -> None:
    result = run("discover", "shop", "--workspace", ws)
    assert result.exit_code == 2
    assert "no source named 'shop'" in result.stderr and "use one of: src" in result.stderr


# -- sync, status, runs, state --------------------------------------------------------------------


def test_sync_loads_the_rows_and_prints_the_summary(ws: Path) -> None:
    result = run("sync", "c", "--workspace", ws)
    assert result.exit_code == 0, result.output
    out = one_line(result.stdout)
    assert "run 1 succeeded: 20 rows committed, 0 quarantined" in out
    assert "│ items │ items │ incremental/merge │ 20 │ 20 │ 0 │" in out
    assert dest_query(ws, "SELECT count(*), count(DISTINCT id) FROM dst.items") == [(20, 20)]


def test_status_json_shows_health_and_rows(ws: Path) -> None:
    [before] = run_json("status", "--workspace", ws)
    assert before["health"] == "never_run" and before["last_run"] is None
    assert run("sync", "c", "--workspace", ws).exit_code == 0
    [after] = run_json("status", "--workspace", ws)
    assert after["connection"] == "c"
    assert after["health"] == "healthy"
    assert after["last_run"]["status"] == "succeeded"
    assert after["last_run"]["rows_committed"] == 20
    assert after["last_success_at"] == after["last_run"]["ended_at"]


def test_runs_json_lists_the_run_with_per_stream_stats(ws: Path) -> None:
    assert run("sync", "c", "--workspace", ws).exit_code == 0
    [r] = run_json("runs", "c", "--workspace", ws)
    assert (r["id"], r["status"], r["attempts"], r["rows_read"], r["rows_committed"]) == (1, "succeeded", 1, 20, 20)
    [s] = r["streams"]
    assert (s["stream"], s["table"], s["mode"], s["write"], s["status"]) == \
           ("items", "items", "incremental", "merge", "succeeded")
    assert (s["rows_read"], s["rows_committed"], s["rows_quarantined"]) == (20, 20, 0)


def test_runs_of_an_unknown_connection_exits_2(ws: Path) -> None:
    result = run("runs", "nope", "--workspace", ws)
    assert result.exit_code == 2
    assert "no connection named 'nope'" in result.stderr


def _rows_read(ws: Path) -> list[int]:
    return [r["rows_read"] for r in run_json("runs", "c", "--workspace", ws)][::-1]  # oldest first


def test_state_shows_the_checkpoint_and_reset_reads_everything_again(ws: Path) -> None:
    assert run("sync", "c", "--workspace", ws).exit_code == 0
    states = run_json("state", "c", "--workspace", ws)
    assert list(states) == ["items"]
    assert states["items"]["phase"] == "complete"
    assert states["items"]["cursor_field"] == "updated_at"
    assert states["items"]["source"]["cursor"].startswith("2026-01-01 00:00:20")  # the newest row
    assert run("sync", "c", "--workspace", ws).exit_code == 0
    # the checkpoint holds: nothing new, only the newest cursor value again (merge, SQLite)
    assert _rows_read(ws) == [20, 1]

    reset = run("state", "c", "--reset", "items", "--workspace", ws)
    assert reset.exit_code == 0, reset.output
    assert "reset c/items" in reset.stdout
    assert run_json("state", "c", "--workspace", ws) == {}
    assert run("sync", "c", "--workspace", ws).exit_code == 0
    assert _rows_read(ws) == [20, 1, 20]
    assert dest_query(ws, "SELECT count(*), count(DISTINCT id) FROM dst.items") == [(20, 20)]  # merged


def test_state_reset_of_a_stream_without_checkpoint_exits_2(ws: Path) -> None:
    assert run("sync", "c", "--workspace", ws).exit_code == 0
    result = run("state", "c", "--reset", "orders", "--workspace", ws)
    assert result.exit_code == 2
    assert "no checkpoint for stream 'orders' of c" in result.stderr
    assert "fix: reset one of: items" in result.stderr
    shown = run("state", "c", "--workspace", ws)  # the whole position, never cut short
    position = json.dumps(run_json("state", "c", "--workspace", ws)["items"]["source"])
    assert position.replace(" ", "") in "".join(shown.stdout.split()).replace("│", "")
    assert list(run_json("state", "c", "--workspace", ws)) == ["items"]  # the real one is untouched


def test_failing_run_exits_1_with_the_failure(tmp_path: Path) -> None:
    db = tmp_path / "src.db"
    con = sqlite3.connect(db)
    con.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, seen TIMESTAMP, updated_at TIMESTAMP)")
    con.execute("INSERT INTO t VALUES (1, '2026-01-01 00:00:00', '2026-01-01 00:00:00')")
    con.commit()
    write_ws(tmp_path, {"t": {"mode": "incremental", "cursor": "updated_at"}})
    assert run("sync", "c", "--workspace", tmp_path).exit_code == 0
    con.executescript("""
        DROP TABLE t;
        CREATE TABLE t (id INTEGER PRIMARY KEY, seen BOOLEAN, updated_at TIMESTAMP);
        INSERT INTO t VALUES (2, 1, '2026-01-02 00:00:00');
    """)
    con.close()
    result = run("sync", "c", "--workspace", tmp_path)
    assert result.exit_code == 1
    err = one_line(result.stderr)
    assert "run 2 failed after 1 attempt(s): contract error:" in err
    assert "column seen changed timestamp -> boolean" in err
    shown = run("status", "--workspace", tmp_path, "--json")
    assert shown.exit_code == 1  # status is a health check: a failing connection fails it
    [status] = json.loads(shown.stdout)
    assert status["health"] == "failing"
    assert status["last_run"]["failure_class"] == "contract"


def test_sync_with_a_missing_source_file_exits_2_not_a_traceback(ws: Path) -> None:
    (ws / "src.db").unlink()
    result = run("sync", "c", "--workspace", ws)
    assert result.exit_code == 2
    assert "Traceback" not in result.output
    assert f"configuration error: connection 'c': source 'src': database file {ws / 'src.db'} does not exist" \
        in one_line(result.stderr)


def test_sync_of_an_unknown_connection_exits_2(ws: Path) -> None:
    result = run("sync", "shop_to_wh", "--workspace", ws)
    assert result.exit_code == 2
    assert "no connection named 'shop_to_wh'" in result.stderr and "use one of: c" in result.stderr


# -- usage and where the workspace is ---------------------------------------------------------------


@pytest.mark.parametrize(
    "args",
    [["sync", "c", "--bogus"], ["frobnicate"], ["sync"], ["runs", "c", "--limit", "many"]],
    ids=["unknown-option", "unknown-command", "missing-argument", "bad-option-value"],
)
def test_usage_errors_exit_2(ws: Path, args: list[str]) -> None:
    result = run(*args, "--workspace", ws) if args[0] != "frobnicate" else run(*args)
    assert result.exit_code == 2
    assert "Usage: syncline" in result.stderr
    assert not (ws / ".syncline").exists()  # nothing ran


def test_workspace_from_option_or_environment(ws: Path, tmp_path_factory: pytest.TempPathFactory,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path_factory.mktemp("elsewhere"))
    assert run("status", "--json").exit_code == 2  # no workspace in the current folder
    via_option = run("sync", "c", "--workspace", ws)
    assert via_option.exit_code == 0, via_option.output
    via_env = run("status", "--json", env={"SYNCLINE_WORKSPACE": str(ws)})
    assert via_env.exit_code == 0, via_env.output
    assert json.loads(via_env.stdout)[0]["last_run"]["rows_committed"] == 20


def _python_m(args: list[str], cwd: Path, workspace: Path | None = None) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SYNCLINE_")}
    env["COLUMNS"] = "400"
    if workspace is not None:
        env["SYNCLINE_WORKSPACE"] = str(workspace)
    return subprocess.run([sys.executable, "-m", "syncline", *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=120)


def test_python_m_syncline_with_syncline_workspace(ws: Path, tmp_path_factory: pytest.TempPathFactory) -> None:
    elsewhere = tmp_path_factory.mktemp("cwd")
    missing = _python_m(["status"], cwd=elsewhere)
    assert missing.returncode == 2
    assert "no syncline.yaml in" in missing.stderr and "syncline init" in missing.stderr
    assert "Traceback" not in missing.stderr
    synced = _python_m(["sync", "c"], cwd=elsewhere, workspace=ws)
    assert synced.returncode == 0, synced.stderr
    assert "run 1 succeeded: 20 rows committed" in synced.stdout
    status = _python_m(["status", "--json"], cwd=elsewhere, workspace=ws)
    assert json.loads(status.stdout)[0]["health"] == "healthy"
