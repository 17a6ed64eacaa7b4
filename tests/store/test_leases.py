"""Leases: one run per connection, takeover of dead or silent holders (on SQLite and
PostgreSQL stores), fencing of zombies."""

from __future__ import annotations

import datetime as dt
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from sqlalchemy import create_engine, select, update
from sqlalchemy.exc import OperationalError, ProgrammingError

from syncline.destinations.base import LoadTarget
from syncline.destinations.duckdb.destination import DuckDBConfig, DuckDBDestination
from syncline.errors import ConcurrencyError
from syncline.schema import INT64, Column, StreamSchema
from syncline.store.models import Lease
from syncline.store.store import MetadataStore

from syncfixtures import dest_query, make_items, run_sync, write_ws

TIMEOUT = dt.timedelta(seconds=60)


def test_tokens_grow_and_a_live_holder_elsewhere_is_respected(store_url: str) -> None:
    store = MetadataStore(store_url)
    leases = store.leases(TIMEOUT)
    first = leases.acquire("c")
    leases.release(first)
    second = leases.acquire("c")
    assert second.token == first.token + 1

    def holder_elsewhere(beat: dt.datetime) -> None:
        with store._engine.begin() as conn:
            conn.execute(update(Lease).values(holder_host="worker-7", heartbeat_at=beat))

    holder_elsewhere(dt.datetime.now(dt.UTC))
    with pytest.raises(ConcurrencyError) as err:
        leases.acquire("c")
    assert "already being synced by pid" in str(err.value) and "worker-7" in str(err.value)
    holder_elsewhere(dt.datetime.now(dt.UTC) - TIMEOUT - dt.timedelta(seconds=5))
    third = leases.acquire("c")  # silent for longer than the timeout: taken over
    assert third.token == second.token + 1 and third.took_over_from is not None
    with pytest.raises(ConcurrencyError):
        leases.heartbeat(second)  # the old holder learns it lost the lease
    store.close()


def _sync_proc(root: Path, failpoints: str) -> subprocess.Popen[bytes]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SYNCLINE_")}
    env["SYNCLINE_FAILPOINTS"] = failpoints
    return subprocess.Popen([sys.executable, "-m", "syncline", "sync", "c", "--workspace", str(root)],
                            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def _wait_for_lease(url: str, pid: int) -> None:
    engine = create_engine(url)
    deadline = time.monotonic() + 60
    try:
        while time.monotonic() < deadline:
            try:
                with engine.connect() as conn:
                    if conn.execute(select(Lease.holder_pid)).scalars().all() == [pid]:
                        return
            except (OperationalError, ProgrammingError):  # the store not made yet, or busy
                pass
            time.sleep(0.1)
    finally:
        engine.dispose()
    raise AssertionError("the first sync never took its lease")


def test_second_concurrent_sync_is_refused_and_a_dead_holder_is_replaced_at_once(
        tmp_path: Path, store_url: str) -> None:
    make_items(tmp_path / "src.db", 400)
    write_ws(tmp_path, {"items": {"mode": "incremental", "write": "merge", "cursor": "updated_at"}},
             batch_size=50, metadata=store_url)
    holder = _sync_proc(tmp_path, "after_commit:2=hang")
    try:
        _wait_for_lease(store_url, holder.pid)
        with pytest.raises(ConcurrencyError) as err:
            run_sync(tmp_path)
        assert f"already being synced by pid {holder.pid}" in str(err.value)
        assert "fix:" in str(err.value)
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait()
    started = time.monotonic()
    result = run_sync(tmp_path)  # the holder is gone: no waiting for a timeout
    assert result.status == "succeeded" and time.monotonic() - started < 30
    assert dest_query(tmp_path, "SELECT count(*), count(DISTINCT id) FROM dst.items") == [(400, 400)]


def test_a_zombie_loader_cannot_commit_after_takeover(tmp_path: Path) -> None:
    import pyarrow as pa

    dest = DuckDBDestination("wh", DuckDBConfig(type="duckdb", path=str(tmp_path / "wh.duckdb")),
                             str(tmp_path))
    stream = StreamSchema("t", (Column("id", INT64),), primary_key=("id",))

    def target(token: int) -> LoadTarget:
        return LoadTarget(connection="c", schema="s", table="t", stream=stream, write="merge",
                          primary_key=("id",), cursor=None, build_beside=False, run_id=token,
                          fence_token=token)

    dest.fence("s", "c", 1)
    zombie = dest.loader(target(1))
    zombie.write(pa.record_batch({"id": pa.array([1, 2], pa.int64())}))
    dest.fence("s", "c", 2)  # a newer run took the lease while the zombie was paused
    with pytest.raises(ConcurrencyError) as err:
        zombie.commit({"version": 1})
    assert "stale" in str(err.value)
    assert dest.query("SELECT count(*) FROM s.t") == [(0,)]
    assert dest.read_state("s", "t") is None
    with pytest.raises(ConcurrencyError):
        dest.fence("s", "c", 1)  # and it cannot fence its way back in
    fresh = dest.loader(target(2))
    fresh.write(pa.record_batch({"id": pa.array([1, 2, 3], pa.int64())}))
    assert fresh.commit({"version": 1}).rows == 3
    dest.close()
