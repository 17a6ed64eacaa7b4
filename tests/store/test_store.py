"""Tests of the metadata store, each on SQLite and on a real PostgreSQL server."""

from __future__ import annotations

import datetime as dt
import os
import socket
import sqlite3
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from syncline.errors import ConfigurationError
from syncline.store.db import alembic_config, head_revision
from syncline.store.models import Base
from syncline.store.store import CRASH_MESSAGE, MetadataStore, StreamStats

UTC = dt.UTC


def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'state' / 'nested' / 'metadata.db'}"


@pytest.fixture
def store(store_url: str) -> Any:
    """An empty store on SQLite, then on PostgreSQL."""
    s = MetadataStore(store_url)
    yield s
    s.close()


def stats(stream: str = "users", **over: Any) -> StreamStats:
    start = dt.datetime(2024, 5, 1, 12, 0, 0, 123456, tzinfo=dt.timezone(dt.timedelta(hours=2)))
    values: dict[str, Any] = {
        "stream": stream,
        "table_name": f"main_{stream}",
        "mode": "incremental",
        "write": "merge",
        "status": "succeeded",
        "rows_read": 10,
        "rows_committed": 9,
        "rows_quarantined": 1,
        "bytes": 2048,
        "duration_s": 1.5,
        "started_at": start,
        "ended_at": start + dt.timedelta(seconds=1.5),
        "schema_changes": ["added column email"],
        "message": None,
    }
    values.update(over)
    return StreamStats(**values)


def finish(s: MetadataStore, run_id: int, status: str = "succeeded") -> None:
    s.end_run(run_id, status, rows_read=1, rows_committed=1, rows_quarantined=0, attempts=1)


def assert_utc(value: dt.datetime | None) -> None:
    assert value is not None and value.tzinfo is not None
    assert value.utcoffset() == dt.timedelta(0)


def test_open_twice_is_idempotent_and_at_head(tmp_path: Path, monkeypatch: Any) -> None:
    url = sqlite_url(tmp_path)
    with MetadataStore(url) as s:
        run_id = s.start_run("pg_to_duck")

    def no_upgrade(*args: Any, **kwargs: Any) -> None:
        raise AssertionError("upgrade ran although the database is current")

    monkeypatch.setattr(command, "upgrade", no_upgrade)
    with MetadataStore(url) as s:
        assert [r.id for r in s.runs()] == [run_id]
    db = sqlite3.connect(make_url(url).database or "")
    try:
        assert db.execute("SELECT version_num FROM alembic_version").fetchall() == [(head_revision(),)]
        assert db.execute("PRAGMA journal_mode").fetchone() == ("wal",)
        tables = {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    finally:
        db.close()
    expected = {"runs", "attempts", "stream_runs", "stream_schemas", "checkpoints", "leases",
                "config_revisions", "run_queue", "leaders", "schedule_state", "workers", "pauses", "budgets",
                "events", "run_logs", "run_totals", "outbox", "alert_states", "alert_cursors", "silences", "incidents", "incident_timeline", "tickets"}
    assert tables == expected | {"alembic_version"}


def test_the_head_revision_is_the_newest_migration() -> None:
    # a new migration must move HEAD too, or stores would open without it
    assert head_revision() == ScriptDirectory.from_config(alembic_config()).get_current_head()


def test_a_store_at_head_opens_without_loading_the_migrations(tmp_path: Path) -> None:
    url = sqlite_url(tmp_path)
    MetadataStore(url).close()
    opened = subprocess.run(
        [sys.executable, "-c", "import sys\nfrom syncline.store.store import MetadataStore\n"
         f"MetadataStore({url!r}).close()\nprint(sorted(m for m in sys.modules if m.startswith('alembic')))"],
        capture_output=True, text=True, check=True)
    assert opened.stdout.strip() == "[]"
    fresh = tmp_path / "fresh"
    made = subprocess.run(
        [sys.executable, "-c", "from syncline.store.store import MetadataStore\n"
         f"MetadataStore({sqlite_url(fresh)!r}).close()"], capture_output=True, text=True)
    assert made.returncode == 0, made.stderr
    db = sqlite3.connect(make_url(sqlite_url(fresh)).database or "")
    try:
        assert db.execute("SELECT version_num FROM alembic_version").fetchall() == [(head_revision(),)]
    finally:
        db.close()


def test_migration_matches_models(store: MetadataStore) -> None:
    with store._engine.connect() as conn:
        assert compare_metadata(MigrationContext.configure(conn), Base.metadata) == []


def test_concurrent_first_opens(tmp_path: Path) -> None:
    url, errors = sqlite_url(tmp_path), []

    def open_one() -> None:
        try:
            MetadataStore(url).close()
        except Exception as exc:
            errors.append(exc)

    threads = [threading.Thread(target=open_one) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []


def test_run_life_cycle_reads_back_exactly(store: MetadataStore) -> None:
    before = dt.datetime.now(UTC)
    run_id = store.start_run("pg_to_duck", trigger="schedule")
    first = store.start_attempt(run_id, 1)
    store.end_attempt(first, "failed", "transient", "connection reset")
    second = store.start_attempt(run_id, 2)
    store.end_attempt(second, "succeeded")
    users, orders = stats("users"), stats("orders", status="failed", message="boom", bytes=0)
    store.record_stream(run_id, users)
    store.record_stream(run_id, orders)
    store.end_run(
        run_id,
        "warning",
        rows_read=20,
        rows_committed=18,
        rows_quarantined=2,
        attempts=2,
        failure_class="data",
        failure_message="2 rows quarantined",
    )
    after = dt.datetime.now(UTC)

    run = store.last_run("pg_to_duck")
    assert run is not None
    assert (run.id, run.connection, run.status, run.trigger) == (
        run_id,
        "pg_to_duck",
        "warning",
        "schedule",
    )
    assert (run.pid, run.host) == (os.getpid(), socket.gethostname())
    assert (run.rows_read, run.rows_committed, run.rows_quarantined, run.attempts) == (20, 18, 2, 2)
    assert (run.failure_class, run.failure_message) == ("data", "2 rows quarantined")
    assert before <= run.started_at <= run.ended_at <= after  # type: ignore[operator]
    assert_utc(run.started_at)
    assert_utc(run.ended_at)
    assert run.streams == [users, orders]
    for s in run.streams:
        assert_utc(s.started_at)
        assert_utc(s.ended_at)
    assert run.streams[0].started_at == dt.datetime(2024, 5, 1, 10, 0, 0, 123456, tzinfo=UTC)
    with store._engine.connect() as conn:
        rows = conn.execute(
            text("SELECT number, status, failure_class, ended_at FROM attempts ORDER BY id")
        ).all()
    assert [(r[0], r[1], r[2]) for r in rows] == [
        (1, "failed", "transient"),
        (2, "succeeded", None),
    ]
    assert all(r[3] is not None for r in rows)


def test_naive_datetimes_and_unknown_statuses_are_refused(store: MetadataStore) -> None:
    run_id = store.start_run("c")
    with pytest.raises(ValueError, match="timezone-aware"):
        store.record_stream(run_id, stats(started_at=dt.datetime(2024, 1, 1)))
    with pytest.raises(ValueError, match="trigger"):
        store.start_run("c", trigger="cron")
    with pytest.raises(ValueError, match="status"):
        finish(store, run_id, status="done")
    assert store.runs("c")[0].streams == []


def test_runs_newest_first_with_limit(store: MetadataStore) -> None:
    ids = [store.start_run("a") for _ in range(5)]
    other = store.start_run("b")
    assert [r.id for r in store.runs("a")] == ids[::-1]
    assert [r.id for r in store.runs("a", limit=3)] == ids[::-1][:3]
    assert [r.id for r in store.runs(limit=2)] == [other, ids[-1]]
    assert store.last_run("a") is not None and store.last_run("a").id == ids[-1]  # type: ignore[union-attr]
    assert store.last_run("nobody") is None


def test_last_success_skips_failed_runs(store: MetadataStore) -> None:
    assert store.last_success("a") is None
    ok = store.start_run("a")
    finish(store, ok)
    for status in ("failed", "crashed"):
        finish(store, store.start_run("a"), status)
    store.start_run("a")  # still running
    finish(store, store.start_run("b"))
    success = store.last_success("a")
    assert success is not None and (success.id, success.status) == (ok, "succeeded")


def test_record_schema_only_when_changed(store: MetadataStore) -> None:
    schema = {"columns": [{"name": "id", "type": "int64"}], "key": ["id"]}
    assert store.latest_schema("c", "users") is None
    assert store.record_schema("c", "users", schema, None) is True
    reordered = {"key": ["id"], "columns": [{"type": "int64", "name": "id"}]}
    assert store.record_schema("c", "users", reordered, None) is False
    changed = {"columns": [{"name": "id", "type": "string"}], "key": ["id"]}
    run_id = store.start_run("c")
    assert store.record_schema("c", "users", changed, run_id) is True
    assert store.latest_schema("c", "users") == changed
    assert store.record_schema("c", "orders", schema, run_id) is True  # per stream
    assert store.record_schema("c", "users", schema, run_id) is True  # changed back
    assert store.latest_schema("c", "users") == schema
    with store._engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM stream_schemas")).scalar() == 4


def test_checkpoint_mirror_round_trip_and_delete(store: MetadataStore) -> None:
    assert store.checkpoints("c") == {}
    store.mirror_checkpoint("c", "users", {"cursor": "2024-01-01", "pk": [1, 2]})
    store.mirror_checkpoint("c", "orders", {"cursor": 5})
    store.mirror_checkpoint("other", "users", {"cursor": 9})
    store.mirror_checkpoint("c", "orders", {"cursor": 7})  # overwrite
    assert store.checkpoints("c") == {
        "users": {"cursor": "2024-01-01", "pk": [1, 2]},
        "orders": {"cursor": 7},
    }
    store.mirror_checkpoint("c", "users", None)
    store.mirror_checkpoint("c", "missing", None)  # deleting nothing is fine
    assert store.checkpoints("c") == {"orders": {"cursor": 7}}
    assert store.checkpoints("other") == {"users": {"cursor": 9}}


def dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_reap_stale_runs(store: MetadataStore, monkeypatch: Any) -> None:
    dead, mine, alive, elsewhere, done = (store.start_run("c") for _ in range(5))
    attempt = store.start_attempt(dead, 1)
    finish(store, done)
    pid = dead_pid()
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        with store._engine.begin() as conn:
            set_pid = text("UPDATE runs SET pid = :p WHERE id = :i")
            for run_id in (dead, elsewhere, done):
                conn.execute(set_pid, {"p": pid, "i": run_id})
            conn.execute(set_pid, {"p": sleeper.pid, "i": alive})
            conn.execute(text("UPDATE runs SET host = 'elsewhere' WHERE id = :i"), {"i": elsewhere})
        assert store.reap_stale_runs() == 1
    finally:
        sleeper.kill()
        sleeper.wait()

    by_id = {r.id: r for r in store.runs("c")}
    crashed = by_id[dead]
    assert (crashed.status, crashed.failure_class, crashed.failure_message) == (
        "crashed",
        "internal",
        CRASH_MESSAGE,
    )
    assert_utc(crashed.ended_at)
    assert by_id[mine].status == "running" and by_id[mine].ended_at is None
    assert by_id[alive].status == "running"
    assert by_id[elsewhere].status == "running"
    assert by_id[done].status == "succeeded"
    with store._engine.connect() as conn:
        row = conn.execute(text("SELECT status FROM attempts WHERE id = :i"), {"i": attempt}).one()
    assert row[0] == "failed"

    def every_pid_dead(pid: int, sig: int) -> None:
        raise ProcessLookupError(pid)

    monkeypatch.setattr(os, "kill", every_pid_dead)  # even then, this process's run stays
    assert store.reap_stale_runs() == 1  # the 'alive' run, whose sleeper is now gone
    assert {r.id: r.status for r in store.runs("c")}[mine] == "running"


def _run_ids_start_past_the_destinations(s: MetadataStore) -> None:
    assert s.start_run("c", above=41) == 42  # a new store: past the load records it never saw
    assert s.start_run("c") == 43  # and the store's own counter follows
    assert s.start_run("c", above=7) == 44  # a store ahead of the destination keeps counting


def test_a_new_store_starts_its_run_ids_past_the_destinations(store: MetadataStore) -> None:
    _run_ids_start_past_the_destinations(store)


def test_a_new_postgres_store_starts_its_run_ids_past_the_destinations(require_pg_database: str) -> None:
    with MetadataStore(require_pg_database) as s:
        _run_ids_start_past_the_destinations(s)


def test_unopenable_sqlite_path_raises_configuration_error(tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    url = f"sqlite:///{blocker / 'sub' / 'x.db'}"
    with pytest.raises(ConfigurationError) as info:
        MetadataStore(url)
    assert url in str(info.value)
    assert "SYNCLINE_METADATA_URL" in str(info.value)


def test_unreachable_postgres_raises_with_masked_url() -> None:
    url = "postgresql+psycopg://postgres:s3cret@127.0.0.1:1/x"
    with pytest.raises(ConfigurationError) as info:
        MetadataStore(url)
    message = str(info.value)
    assert "postgresql+psycopg://postgres:***@127.0.0.1:1/x" in message
    assert "s3cret" not in message
    assert "metadata:" in message


def test_postgres_server(require_pg_database: str) -> None:
    with MetadataStore(require_pg_database) as s:
        run_id = s.start_run("pg")
        s.start_attempt(run_id, 1)
        s.record_stream(run_id, stats())
        finish(s, run_id)
        assert s.record_schema("pg", "users", {"a": 1}, run_id) is True
        assert s.record_schema("pg", "users", {"a": 1}, run_id) is False
        s.mirror_checkpoint("pg", "users", {"cursor": 1})
        s.mirror_checkpoint("pg", "users", {"cursor": 2})
        assert s.checkpoints("pg") == {"users": {"cursor": 2}}
        with s._engine.connect() as conn:
            assert compare_metadata(MigrationContext.configure(conn), Base.metadata) == []
    with MetadataStore(require_pg_database) as s:  # second open: no-op migration
        run = s.last_success("pg")
        assert run is not None and run.streams == [stats()]
        assert_utc(run.started_at)
        assert_utc(run.streams[0].started_at)
    engine = create_engine(require_pg_database)
    try:
        with engine.connect() as conn:
            assert conn.execute(text("SELECT version_num FROM alembic_version")).all() == [
                (head_revision(),)
            ]
    finally:
        engine.dispose()


def _open_when_released(url: str, barrier: Any, errors: Any) -> None:
    barrier.wait()
    try:
        MetadataStore(url).close()
    except Exception as exc:
        errors.put(f"{type(exc).__name__}: {exc}")


def test_processes_opening_a_new_store_at_once_all_succeed(tmp_path: Path) -> None:
    """Two syncs started together both create the SQLite store; neither may fail on its lock."""
    import multiprocessing

    ctx = multiprocessing.get_context("fork")
    errors = ctx.Queue()
    for round_ in range(30):  # the race is narrow: many rounds
        url = f"sqlite:///{tmp_path / f'round{round_}' / 'metadata.db'}"
        barrier = ctx.Barrier(3)
        procs = [ctx.Process(target=_open_when_released, args=(url, barrier, errors)) for _ in range(3)]
        for p in procs:
            p.start()
        for p in procs:
            p.join(60)
            assert p.exitcode == 0
    found = []
    while not errors.empty():
        found.append(errors.get())
    assert found == []
