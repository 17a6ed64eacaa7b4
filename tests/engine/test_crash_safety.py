"""Crash safety: SIGKILL `syncline sync` at many moments, rerun, and count every row exactly once."""

from __future__ import annotations

import os
import random
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import duckdb
import pytest

from syncfixtures import write_ws

ROWS = 200_000
BATCH = 10_000


def _make_source(path: Path) -> None:
    con = sqlite3.connect(path)
    con.execute("CREATE TABLE events (id INTEGER PRIMARY KEY, version INTEGER NOT NULL, "
                "payload TEXT, updated_at TIMESTAMP NOT NULL)")
    con.executemany(
        "INSERT INTO events VALUES (?, 0, ?, ?)",
        ((i, f"payload-{i}-é", f"2026-01-01 00:{(i // 6000) % 60:02d}:{(i // 100) % 60:02d}.000000")
         for i in range(1, ROWS + 1)),
    )
    con.commit()
    con.close()


def _touch(path: Path, ids: range, version: int) -> None:
    """Bump rows to a new version with a later cursor, as an application would."""
    con = sqlite3.connect(path)
    con.execute(
        f"UPDATE events SET version = ?, updated_at = '2026-02-{version:02d} 00:00:00.000000' "
        f"WHERE id BETWEEN {ids.start} AND {ids.stop - 1}", [version],
    )
    con.commit()
    con.close()


def _sync(root: Path, failpoint: str | None = None, kill_after_s: float | None = None) -> int:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SYNCLINE_")}
    env["SYNCLINE_RETRY_BASE_S"] = "0"
    if failpoint:
        env["SYNCLINE_FAILPOINTS"] = failpoint
    proc = subprocess.Popen(
        [sys.executable, "-m", "syncline", "sync", "c", "--workspace", str(root)],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )
    if kill_after_s is not None:
        try:
            proc.wait(timeout=kill_after_s)
        except subprocess.TimeoutExpired:
            proc.send_signal(signal.SIGKILL)
    _, err = proc.communicate(timeout=300)
    if failpoint is None and kill_after_s is None:
        assert proc.returncode == 0, err.decode()
    return proc.returncode


def _dest(root: Path, sql: str) -> list[tuple[object, ...]]:
    con = duckdb.connect(str(root / "wh.duckdb"), read_only=True)
    try:
        return con.execute(sql).fetchall()
    finally:
        con.close()


def _source_versions(path: Path) -> dict[int, int]:
    con = sqlite3.connect(path)
    try:
        return dict(con.execute("SELECT id, version FROM events"))
    finally:
        con.close()


def _assert_exactly_once(root: Path, source: Path) -> None:
    rows = _dest(root, "SELECT id, version FROM dst.events")
    ids = [r[0] for r in rows]
    assert len(ids) == len(set(ids)), f"{len(ids) - len(set(ids))} duplicate rows"
    assert dict(rows) == _source_versions(source)  # no missing, no stale, nothing unexpected


KILL_POINTS = [
    "after_read:3=kill",
    "after_staging:7=kill",
    "in_commit:1=kill",   # mid-commit: inside the transaction, before COMMIT
    "in_commit:2=kill",
    "after_commit:2=kill",
    "after_record:1=kill",
]


@pytest.mark.slow
def test_merge_survives_sigkill_at_every_moment(tmp_path: Path) -> None:
    source = tmp_path / "src.db"
    _make_source(source)
    write_ws(tmp_path, {"events": {"mode": "incremental", "write": "merge", "cursor": "updated_at"}},
             batch_size=BATCH)
    for n, point in enumerate(KILL_POINTS, start=1):
        code = _sync(tmp_path, failpoint=point)
        assert code == -signal.SIGKILL, f"{point} did not fire (exit {code})"
        if n > 1:  # destination consistent right after the kill: never a duplicate key
            assert _dest(tmp_path, "SELECT count(*) - count(DISTINCT id) FROM dst.events") == [(0,)]
        _touch(source, range(n * 7000, n * 7000 + 30_000), version=n)  # the source moves on
    rng = random.Random(11)
    for _ in range(3):  # and kills at arbitrary moments
        _sync(tmp_path, kill_after_s=rng.uniform(0.8, 3.0))
    _sync(tmp_path)
    _assert_exactly_once(tmp_path, source)


@pytest.mark.slow
def test_full_refresh_survives_sigkill_and_keeps_the_old_table(tmp_path: Path) -> None:
    source = tmp_path / "src.db"
    _make_source(source)
    write_ws(tmp_path, {"events": {"mode": "full_refresh", "write": "replace"}}, batch_size=BATCH)
    _sync(tmp_path)
    _assert_exactly_once(tmp_path, source)
    old = _dest(tmp_path, "SELECT count(*), sum(version) FROM dst.events")
    _touch(source, range(1, ROWS + 1), version=1)
    for point in ["after_read:4=kill", "in_commit:2=kill", "after_commit:6=kill", "in_commit:3=kill",
                  "in_swap:1=kill"]:
        assert _sync(tmp_path, failpoint=point) == -signal.SIGKILL, point
        # readers see yesterday's complete table until the swap commits
        now = _dest(tmp_path, "SELECT count(*), sum(version) FROM dst.events")
        assert now == old, f"after kill at {point}: {now} != {old}"
    _sync(tmp_path, kill_after_s=1.5)
    _sync(tmp_path)
    _assert_exactly_once(tmp_path, source)
    assert _dest(tmp_path, "SELECT count(*) FROM information_schema.tables "
                           "WHERE table_name LIKE '%__syncline_building'") == [(0,)]


@pytest.mark.slow
def test_timed_kills_then_clean_run_in_merge_mode(tmp_path: Path) -> None:
    source = tmp_path / "src.db"
    _make_source(source)
    write_ws(tmp_path, {"events": {"mode": "incremental", "write": "merge", "cursor": "updated_at"}},
             batch_size=BATCH)
    start = time.monotonic()
    for delay in (0.9, 1.3, 1.7, 2.2, 2.6):
        _sync(tmp_path, kill_after_s=delay)
    _sync(tmp_path)
    _assert_exactly_once(tmp_path, source)
    assert time.monotonic() - start < 240
