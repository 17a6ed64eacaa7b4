"""Tolerating failure: SIGTERM, a silent source, zero-row anomalies, bad or future checkpoints."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import duckdb

from syncline.store.store import MetadataStore

from syncfixtures import dest_query, failpoints_on, make_items, run_sync, write_ws

STREAM = {"items": {"mode": "incremental", "write": "append", "cursor": "updated_at"}}


def _runs(root: Path) -> list[object]:
    store = MetadataStore(f"sqlite:///{root / '.syncline' / 'metadata.db'}")
    try:
        return list(store.runs("c"))
    finally:
        store.close()


def _latest_run(root: Path) -> tuple[int, str]:
    try:
        con = sqlite3.connect(root / ".syncline" / "metadata.db")
        row = con.execute("SELECT id, status FROM runs ORDER BY id DESC LIMIT 1").fetchone()
        con.close()
    except sqlite3.OperationalError:
        return 0, ""
    return (row[0], row[1]) if row else (0, "")


def _wait_for_new_run(root: Path, after: int) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        run_id, status = _latest_run(root)
        if run_id > after and status == "running":
            return
        time.sleep(0.05)
    raise AssertionError("the sync never started")


def test_sigterm_rolls_back_the_open_batch_and_append_mode_has_no_duplicates(tmp_path: Path) -> None:
    make_items(tmp_path / "src.db", 150_000)
    write_ws(tmp_path, STREAM, batch_size=5_000)
    env = {k: v for k, v in os.environ.items() if not k.startswith("SYNCLINE_")}
    interrupted = 0
    for delay in (0.2, 0.7, 1.2):
        before, _ = _latest_run(tmp_path)
        proc = subprocess.Popen([sys.executable, "-m", "syncline", "sync", "c", "-w", str(tmp_path)],
                                env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        _wait_for_new_run(tmp_path, before)
        time.sleep(delay)
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=60)
        if proc.returncode == 128 + signal.SIGTERM:  # stopped cleanly, not killed by the signal
            interrupted += 1
            assert b"interrupted" in err and b"resumes from the last committed checkpoint" in err
        else:  # the run had already finished and the process was on its way out
            assert proc.returncode in (0, -signal.SIGTERM), err.decode()
            assert _latest_run(tmp_path)[1] == "succeeded"
    assert interrupted >= 1
    assert run_sync(tmp_path).status == "succeeded"
    assert dest_query(tmp_path, "SELECT count(*), count(DISTINCT id) FROM dst.items") == [(150_000, 150_000)]
    statuses = [(r.status, r.failure_class) for r in _runs(tmp_path)]  # type: ignore[attr-defined]
    assert ("interrupted", "interrupted") in statuses


def test_a_silent_source_fails_the_attempt_as_transient_and_the_retry_completes(tmp_path: Path) -> None:
    make_items(tmp_path / "src.db", 300)
    write_ws(tmp_path, STREAM, batch_size=50, max_attempts=2)
    text = (tmp_path / "syncline.yaml").read_text().replace("max_attempts: 2", "max_attempts: 2\n    source_timeout_s: 1")
    (tmp_path / "syncline.yaml").write_text(text)
    with failpoints_on("source_read:3=hang"):
        started = time.monotonic()
        result = run_sync(tmp_path)
    assert result.status == "succeeded" and result.attempts == 2
    assert time.monotonic() - started < 30
    assert dest_query(tmp_path, "SELECT count(*), count(DISTINCT id) FROM dst.items") == [(300, 300)]


def _empty_source(path: Path) -> None:
    con = sqlite3.connect(path)
    con.execute("DELETE FROM items")
    con.commit()
    con.close()


def test_zero_rows_after_many_fails_a_full_refresh_and_keeps_the_table(tmp_path: Path) -> None:
    make_items(tmp_path / "src.db", 1500)
    write_ws(tmp_path, {"items": {"mode": "full_refresh", "write": "replace"}})
    assert run_sync(tmp_path).status == "succeeded"
    _empty_source(tmp_path / "src.db")
    result = run_sync(tmp_path)
    assert result.status == "failed" and result.error is not None
    assert result.error.failure_class == "data"
    assert "read 0 rows where recent runs read about 1,500" in str(result.error)
    assert dest_query(tmp_path, "SELECT count(*) FROM dst.items") == [(1500,)]
    text = (tmp_path / "syncline.yaml").read_text().replace("max_attempts: 1", "max_attempts: 1\n    zero_rows: warn")
    (tmp_path / "syncline.yaml").write_text(text)
    refused = run_sync(tmp_path)  # quieting the anomaly does not let a refresh empty the table
    assert refused.status == "failed" and "--allow-empty" in str(refused.error)
    assert dest_query(tmp_path, "SELECT count(*) FROM dst.items") == [(1500,)]
    warned = run_sync(tmp_path, allow_empty=True)
    assert warned.status == "warning" and warned.streams[0].notices
    assert dest_query(tmp_path, "SELECT count(*) FROM dst.items") == [(0,)]
    with MetadataStore(f"sqlite:///{tmp_path / '.syncline' / 'metadata.db'}") as store:
        told = [(e.run, e.stream, e.body) for e in store.events().read(kinds=["zero_rows.anomaly"])]
    assert told == [(2, "items", {"expected": 1500, "rows_read": 0, "action": "failed"}),
                    (3, "items", {"expected": 1500, "rows_read": 0, "action": "warned"}),
                    (4, "items", {"expected": 1500, "rows_read": 0, "action": "warned"})], told


def _set_state(root: Path, text: str) -> None:
    con = duckdb.connect(str(root / "wh.duckdb"))
    con.execute("UPDATE dst._syncline_state SET state = ? WHERE stream = 'items'", [text])
    con.close()


def test_a_corrupted_checkpoint_refuses_to_run_until_reset(tmp_path: Path) -> None:
    make_items(tmp_path / "src.db", 100)
    write_ws(tmp_path, STREAM)
    run_sync(tmp_path)
    _set_state(tmp_path, '{"version": 1, "mode": "incremental", "source": {"cursor"')
    result = run_sync(tmp_path)
    assert result.status == "failed" and result.error is not None
    assert result.error.failure_class == "configuration"
    assert "syncline state c --reset items" in str(result.error)
    reset = subprocess.run([sys.executable, "-m", "syncline", "state", "c", "--reset", "items", "-w",
                            str(tmp_path)], capture_output=True, text=True)
    assert reset.returncode == 0, reset.stderr
    assert run_sync(tmp_path).status == "succeeded"


def test_a_checkpoint_in_the_future_reads_nothing_and_warns(tmp_path: Path) -> None:
    make_items(tmp_path / "src.db", 100)
    write_ws(tmp_path, STREAM)
    run_sync(tmp_path)
    con = duckdb.connect(str(tmp_path / "wh.duckdb"))
    state = json.loads(con.execute("SELECT state FROM dst._syncline_state").fetchone()[0])
    con.close()
    state["source"]["cursor"] = "2999-01-01 00:00:00.000000"
    _set_state(tmp_path, json.dumps(state))
    result = run_sync(tmp_path)
    assert result.status == "warning" and result.rows_read == 0
    assert "beyond the newest source row" in result.streams[0].notices[0]


def test_two_syncs_with_no_source_change_write_nothing_the_second_time(tmp_path: Path) -> None:
    make_items(tmp_path / "src.db", 100)
    write_ws(tmp_path, STREAM)
    run_sync(tmp_path)
    loads = dest_query(tmp_path, "SELECT count(*) FROM dst._syncline_loads")
    second = run_sync(tmp_path)
    assert second.status == "succeeded" and second.rows_read == 0 and second.rows_committed == 0
    assert dest_query(tmp_path, "SELECT count(*) FROM dst._syncline_loads") == loads
    assert dest_query(tmp_path, "SELECT count(*) FROM dst.items") == [(100,)]
