"""Fault scenarios: real `syncline sync` processes broken on purpose, then one clean run and the oracle.

Every scenario ends with a clean run after which the oracle must count 0 missing,
duplicate, stale, unexpected and resurrected rows. The ids without `full-` are the
CI subset (30k rows, batches of 3k); `pytest -m faults_full` (or `make faults`) runs
more seeds on bigger tables and the 30-kill bounce loop.
"""

from __future__ import annotations

import contextlib
import json
import random
import signal
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import duckdb
import pymysql
import pytest

from faults.harness import (
    APPEND,
    HISTORY,
    MERGE,
    REPLACE,
    Outcome,
    Pipeline,
    Scenario,
    Size,
    finish,
    killed_on_error,
    matrix,
    remount,
    sqlite_pipeline,
    tmpfs,
)
from faults.live import LiveMariaTable, LivePostgresTable, LiveTable, live_writers
from faults.oracle import Expected, PostgresTable
from faults.proxy import FaultProxy
from services import HOST, mariadb_reader, postgres_reader, postgres_schema, require_mariadb
from syncfixtures import holding_lock

MODES = {"merge": MERGE, "append": APPEND, "history": HISTORY}
INCREMENTAL_POINTS = ["source_read", "after_read", "after_staging", "in_commit", "after_commit",
                      "after_record"]
REFRESH_POINTS = ["source_read", "after_read", "after_staging", "in_commit", "after_commit", "in_swap"]


def churn(p: Pipeline, rng: random.Random, size: Size) -> None:
    """The source moves on between runs: more than a batch of updates, some inserts and deletes."""
    p.source.mutate(rng, updates=size.batch + size.rows // 20, inserts=size.rows // 20,
                    deletes=size.rows // 100)


def no_traceback(out: Outcome) -> None:
    assert "Traceback" not in out.output, f"a traceback instead of a clear error: {out}"


# -- crashes --------------------------------------------------------------------------------


@pytest.mark.parametrize("mode", ["merge", "append", "history"])
@pytest.mark.parametrize(("size", "seed"), matrix([1], [2, 3, 4]))
def test_kill_at_every_failpoint(scenario: Scenario, tmp_path: Path, mode: str, size: Size,
                                 seed: int) -> None:
    """SIGKILL at each failpoint of an incremental run in turn (`in_swap`: the full-refresh scenario)."""
    rng = random.Random(seed)
    p = sqlite_pipeline(scenario, tmp_path, MODES[mode], size, rng)
    points = list(INCREMENTAL_POINTS)
    rng.shuffle(points)
    for point in points:
        n = 1 if point == "after_record" else rng.randint(1, 2)
        out = p.sync(failpoints=f"{point}:{n}=kill")
        assert out.killed, f"failpoint {point}:{n} did not fire: {out}"
        assert p.duplicates_now() == 0, f"duplicates right after a kill at {point}:{n}"
        churn(p, rng, size)
    scenario.note(f"killed at {', '.join(points)}")
    p.finish()


def _random_kill(p: Pipeline, rng: random.Random, points: list[str], size: Size) -> bool:
    """SIGKILL at a random failpoint or a random moment of the run; True if it landed."""
    if rng.random() < 0.6:
        point = rng.choice(points)
        n = 1 if point in ("in_swap", "after_record") else rng.randint(1, 2)
        return p.sync(failpoints=f"{point}:{n}=kill").killed
    return p.sync(kill_after_s=rng.uniform(0.0, 0.4)).killed


@pytest.mark.parametrize(("kills", "size", "seed", "mode"), [
    pytest.param(6, Size(30_000, 3_000), 1, "merge", id="6kills-seed1"),
    *[pytest.param(30, Size(60_000, 3_000), s, "merge", id=f"full-30kills-seed{s}",
                   marks=pytest.mark.faults_full) for s in (2, 3, 4)],
    pytest.param(30, Size(60_000, 3_000), 5, "history", id="full-30kills-history-seed5",
                 marks=pytest.mark.faults_full),
])
def test_bounce_loop(scenario: Scenario, tmp_path: Path, kills: int, size: Size, seed: int,
                     mode: str) -> None:
    """Random kills in a row, the source changing under them, then one clean run."""
    rng = random.Random(seed)
    p = sqlite_pipeline(scenario, tmp_path, MODES[mode], size, rng)
    landed = 0
    for _ in range(kills):
        churn(p, rng, size)
        landed += _random_kill(p, rng, INCREMENTAL_POINTS, size)
        assert p.rows() is None or p.duplicates_now() == 0
    assert landed >= kills // 3, f"only {landed} of {kills} kills landed: the loop tests too little"
    scenario.note(f"{landed}/{kills} kills landed")
    p.finish()


def _old_table_until_the_swap(p: Pipeline, old: list[tuple[Any, ...]], old_source: Expected,
                              what: str) -> bool:
    """After a kill: yesterday's table, untouched, or (once the swap committed) the whole new one.

    True if the swap had committed.
    """
    state = _state(p)
    if state.get("phase") == "complete" and state.get("run_id") == p.last_run_id():
        assert p.check().clean, f"after a kill at {what} the swapped table is incomplete"
        return True
    assert p.snapshot() == old, f"the live table changed before the swap (kill at {what})"
    assert p.check(old_source).clean
    return False


@pytest.mark.parametrize("write", ["replace", pytest.param("history", marks=pytest.mark.faults_full)])
@pytest.mark.parametrize(("size", "seed"), matrix([1], [2, 3, 4]))
def test_kill_during_full_refresh_keeps_the_old_table(scenario: Scenario, tmp_path: Path, size: Size,
                                                      seed: int, write: str) -> None:
    """Until the swap commits, readers see yesterday's complete table, whatever was killed."""
    rng = random.Random(seed)
    p = sqlite_pipeline(scenario, tmp_path, {**REPLACE, "write": write}, size, rng)
    p.clean_sync()
    for _ in range(1 if size.rows <= 30_000 else 3):  # refresh rounds, each ending in a swap
        old, old_source = p.snapshot(), p.source.expected()
        churn(p, rng, size)
        for point in rng.sample(REFRESH_POINTS[:-1], 3):
            n = rng.randint(1, 3)
            out = p.sync(failpoints=f"{point}:{n}=kill")
            assert out.killed, f"failpoint {point}:{n} did not fire: {out}"
            assert not _old_table_until_the_swap(p, old, old_source, f"{point}:{n}")
        if p.sync(kill_after_s=rng.uniform(0.0, 0.5)).killed and \
                _old_table_until_the_swap(p, old, old_source, "a random moment"):
            old, old_source = p.snapshot(), p.source.expected()
        assert p.sync(failpoints="in_swap:1=kill").killed
        assert not _old_table_until_the_swap(p, old, old_source, "in_swap:1")
        p.clean_sync()
        assert p.check().clean  # the swap published the new snapshot, deletes included
    assert p.dest("SELECT count(*) FROM information_schema.tables "
                  "WHERE table_name LIKE '%__syncline_building'") == [(0,)]
    p.finish()


@pytest.mark.parametrize(("size", "seed"), matrix([1], [2]))
def test_source_changes_between_a_killed_refresh_and_its_resume(scenario: Scenario, tmp_path: Path,
                                                                size: Size, seed: int) -> None:
    """The build is resumed by key range; rows the killed run already copied must still be current."""
    rng = random.Random(seed)
    p = sqlite_pipeline(scenario, tmp_path, REPLACE, size, rng)
    p.clean_sync()
    assert p.sync(failpoints=f"after_commit:{rng.randint(2, size.batches - 2)}=kill").killed
    churn(p, rng, size)
    p.finish()


@pytest.mark.parametrize("mode", ["append", "merge"])
@pytest.mark.parametrize(("size", "seed"), matrix([1], [2, 3], ci=Size(100_000, 2_000),
                                                  full=Size(300_000, 5_000)))
def test_sigterm_mid_batch_rolls_back_and_exits_cleanly(scenario: Scenario, tmp_path: Path, mode: str,
                                                        size: Size, seed: int) -> None:
    rng = random.Random(seed)
    p = sqlite_pipeline(scenario, tmp_path, MODES[mode], size, rng)
    interrupted = late = 0
    for round_ in range(3):
        if round_ == 0:  # at an exact place: a batch staged and not committed
            out = p.sync(failpoints=f"after_staging:{rng.randint(2, 5)}=term")
            assert out.code == 128 + signal.SIGTERM, f"a SIGTERM mid-batch did not stop the run: {out}"
        else:  # wherever it lands
            out = p.sync(term_after_s=rng.uniform(0.1, 0.9))
        if out.code == -signal.SIGTERM:
            # Landed after the run had ended and restored the default handler (lease release,
            # summary output): nothing was left to roll back. See the report on this gap.
            assert p.last_run().status == "succeeded", f"SIGTERM killed a live run: {out}"
            late += 1
        else:
            assert out.code in (0, 128 + signal.SIGTERM), f"SIGTERM was not handled gracefully: {out}"
        no_traceback(out)
        if out.code == 128 + signal.SIGTERM:
            interrupted += 1
            assert "interrupted" in out.stderr and "resumes from the last committed checkpoint" in out.stderr
            assert p.last_run().failure_class == "interrupted"
        assert p.duplicates_now() == 0, "duplicates after a SIGTERM"
        committed = p.dest("SELECT coalesce(sum(rows), 0) FROM dst._syncline_loads")[0][0]
        if mode == "append":  # nothing staged survived the stop: every row came from a commit
            assert p.dest("SELECT count(*) FROM dst.events") == [(committed,)]
        p.source.mutate(rng, inserts=size.batch, updates=size.batch)
    scenario.note(f"{interrupted}/3 interrupted, {late} after the run had ended")
    p.finish()


# -- concurrency ----------------------------------------------------------------------------


@pytest.mark.parametrize(("size", "seed"), matrix([1], [2, 3]))
def test_two_concurrent_runs_of_one_connection(scenario: Scenario, tmp_path: Path, size: Size,
                                               seed: int) -> None:
    rng = random.Random(seed)
    pairs = 1 if size.rows <= 30_000 else 4
    p = sqlite_pipeline(scenario, tmp_path, MERGE, size, rng)
    # Both start together; whoever wins the lease hangs after its first commit, so the
    # other certainly finds it held.
    procs = [p.start("sync", "c", failpoints="after_commit:1=hang") for _ in range(2)]
    started = time.monotonic()
    with killed_on_error(*procs):
        while all(proc.poll() is None for proc in procs):
            assert time.monotonic() - started < 60, "neither run was refused"
            time.sleep(0.05)
        loser = next(proc for proc in procs if proc.poll() is not None)
        winner = next(proc for proc in procs if proc is not loser)
        out = finish(loser, started, 10)
        assert out.code == 1, f"the second run was not refused: {out}"
        assert f"already being synced by pid {winner.pid}" in out.stderr
        assert "concurrency error" in out.stderr
        no_traceback(out)
        time.sleep(0.5)
        assert winner.poll() is None, "the run holding the lease did not proceed"
        winner.send_signal(signal.SIGKILL)
        winner.wait()
    overlapped = 0
    for _ in range(pairs):  # plain simultaneous starts: each either runs or is refused, never worse
        churn(p, rng, size)
        procs = [p.start("sync", "c") for _ in range(2)]
        with killed_on_error(*procs):
            outs = [finish(proc, started, 300) for proc in procs]
        for o in outs:
            assert o.code == 0 or (o.code == 1 and "already being synced by pid" in o.stderr), str(o)
            no_traceback(o)
        assert any(o.code == 0 for o in outs)
        overlapped += any(o.code == 1 for o in outs)
        assert p.duplicates_now() == 0
    scenario.note(f"{overlapped}/{pairs} plain pairs overlapped")
    p.finish()


# -- the network: PostgreSQL through the fault proxy ----------------------------------------

PG_CONNINFO = f"host={HOST} port=5432 user=postgres dbname=test"


@pytest.fixture
def pg_schema() -> Iterator[str]:
    """A uniquely named schema on the test server, dropped (with its readers stopped) afterwards."""
    with postgres_schema("syncline_faults") as name:
        yield name


@pytest.mark.services
@pytest.mark.parametrize(("size", "seed"), matrix([1], [2, 3]))
def test_postgres_source_behind_a_faulty_network(scenario: Scenario, tmp_path: Path, pg_schema: str,
                                                 size: Size, seed: int) -> None:
    """Connections reset, cut mid-read, hung and slowed: every attempt fails as transient and the
    retry resumes from the last commit."""
    rng = random.Random(seed)
    source = PostgresTable(PG_CONNINFO, pg_schema)
    source.create(size.rows, rng)
    with FaultProxy(HOST, 5432) as proxy:
        p = Pipeline(
            scenario=scenario, root=tmp_path, source=source,
            source_config={"type": "postgres", "host": proxy.host, "port": proxy.port,
                           "user": "postgres", "database": "test", "schemas": [pg_schema],
                           "tables": [f"{pg_schema}.events"], "connect_timeout": 3},
            stream=f"{pg_schema}.events", stream_config=dict(MERGE), batch_size=size.batch,
            duckdb_path=tmp_path / "wh.duckdb", connection={"max_attempts": 4, "source_timeout_s": 3},
        )

        def faulty_run(expect_attempts: int) -> None:
            out = p.sync(env={"SYNCLINE_RETRY_BASE_S": "0.05"})
            assert out.code == 0, str(out)
            run = p.last_run()
            assert run.attempts == expect_attempts, f"{run}"
            assert [f for f, _ in run.attempt_failures[:-1]] == ["transient"] * (expect_attempts - 1)

        proxy.cut_after(rng.randint(100_000, 400_000), times=2)  # the read stream dies, twice
        faulty_run(3)
        assert proxy.stats.cuts == 2
        churn(p, rng, size)
        proxy.reset(times=1)  # the first connection of the run is reset on accept
        faulty_run(2)
        assert proxy.stats.resets == 1
        churn(p, rng, size)
        proxy.hang(after_bytes=rng.randint(30_000, 60_000), times=1)  # the source goes silent
        faulty_run(2)
        assert proxy.stats.hangs == 1
        assert "sent nothing for 3s" in (p.last_run().attempt_failures[0][1] or "")
        churn(p, rng, size)
        proxy.latency(0.002)
        faulty_run(1)
        proxy.pass_through()
        scenario.note(f"proxy: {proxy.stats.cuts} cuts, {proxy.stats.resets} resets, "
                      f"{proxy.stats.hangs} hangs over {proxy.stats.connections} connections")
        p.finish()


@pytest.mark.services
@pytest.mark.parametrize(("size", "seed"), matrix([1], [2, 3]))
def test_postgres_refresh_killed_while_the_source_changes(scenario: Scenario, tmp_path: Path,
                                                          pg_schema: str, size: Size, seed: int) -> None:
    """A PostgreSQL full refresh killed mid-build twice, the table changing after each kill."""
    rng = random.Random(seed)
    source = PostgresTable(PG_CONNINFO, pg_schema)
    source.create(size.rows, rng)
    p = Pipeline(
        scenario=scenario, root=tmp_path, source=source,
        source_config={"type": "postgres", "host": HOST, "port": 5432, "user": "postgres",
                       "database": "test", "schemas": [pg_schema], "tables": [f"{pg_schema}.events"]},
        stream=f"{pg_schema}.events", stream_config=dict(REPLACE), batch_size=size.batch,
        duckdb_path=tmp_path / "wh.duckdb",
    )
    p.clean_sync()
    for point in ("source_read", "after_commit"):
        n = rng.randint(2, size.batches - 2)
        assert p.sync(failpoints=f"{point}:{n}=kill").killed, f"{point}:{n} did not fire"
        churn(p, rng, size)
    p.finish()


# -- the destination ------------------------------------------------------------------------


@pytest.mark.parametrize(("size", "seed"), matrix([1], [2, 3]))
def test_destination_unavailable_for_a_while(scenario: Scenario, tmp_path: Path, size: Size,
                                             seed: int) -> None:
    """Another process holds the DuckDB file; the run waits for it (`lock_timeout_s`) and
    writes once it is free, in its first attempt."""
    rng = random.Random(seed)
    p = sqlite_pipeline(scenario, tmp_path, MERGE, size, rng, max_attempts=25)
    p.clean_sync()
    churn(p, rng, size)
    with holding_lock(p.duckdb_path) as holder:
        since, started = p.last_run_id(), time.monotonic()
        proc = p.start("sync", "c", env={"SYNCLINE_RETRY_BASE_S": "0.2"})
        with killed_on_error(proc):
            while p.last_run_id() == since:  # the run has started and is waiting for the file
                assert proc.poll() is None and time.monotonic() - started < 60, "the run never started"
                time.sleep(0.05)
            time.sleep(rng.uniform(0.5, 2.5))
            holder.kill()  # the destination comes back
            out = finish(proc, started, 300)
    assert out.code == 0, str(out)
    run = p.last_run()
    assert run.status == "succeeded" and run.attempts == 1, f"{run}"
    scenario.note(f"{run.attempts} attempts")
    p.finish()


@pytest.mark.parametrize("mode", ["merge", "replace"])
@pytest.mark.parametrize(("size", "seed"), matrix([1], [2], ci=Size(3_000, 5_000), full=Size(6_000, 5_000)))
def test_disk_full_fails_clearly_and_keeps_committed_data(scenario: Scenario, tmp_path: Path, mode: str,
                                                          size: Size, seed: int) -> None:
    rng = random.Random(seed)
    with tmpfs(tmp_path / "disk", "4m") as disk:
        stream = MERGE if mode == "merge" else REPLACE
        p = sqlite_pipeline(scenario, tmp_path, stream, size, rng, payload_bytes=50,
                            duckdb_path=disk / "wh.duckdb", max_attempts=3)
        p.clean_sync()
        old, old_source = p.snapshot(), p.source.expected()
        p.source.mutate(rng, inserts=60_000, updates=size.rows // 2, payload_bytes=100)  # ~15 MB
        out = p.sync()
        assert out.code == 1, f"a full disk did not fail the run: {out}"
        no_traceback(out)
        run = p.last_run()
        assert run.failure_class == "destination" and run.attempts == 1, f"{run}"
        assert "No space left" in out.stderr
        # what earlier runs committed is intact: no key lost, none older, no duplicate
        before = p.check(old_source, observe_deletes=False)
        assert (before.missing, before.stale, before.duplicate) == (0, 0, 0), before.describe()
        if mode == "replace":
            assert p.snapshot() == old
        remount(disk, "64m")
        p.finish()


# -- checkpoints ----------------------------------------------------------------------------

CORRUPTIONS = [
    '{"version": 1, "mode": "incremental", "source": {"cursor"',  # truncated write
    "[1, 2, 3]",
    '{"version": 99, "mode": "incremental"}',
    "",
    "\x00\x7f garbage \ufffd",
]


def _set_state(p: Pipeline, text: str) -> None:
    con = duckdb.connect(str(p.duckdb_path))
    try:
        con.execute("UPDATE dst._syncline_state SET state = ? WHERE stream = 'events'", [text])
    finally:
        con.close()


def _state(p: Pipeline) -> dict[str, Any]:
    return dict(json.loads(p.dest("SELECT state FROM dst._syncline_state WHERE stream = 'events'")[0][0]))


@pytest.mark.parametrize(("size", "seed"), matrix([1], [2, 3, 4, 5]))
def test_corrupted_checkpoint_refuses_to_run_until_reset(scenario: Scenario, tmp_path: Path, size: Size,
                                                         seed: int) -> None:
    rng = random.Random(seed)
    p = sqlite_pipeline(scenario, tmp_path, MERGE, size, rng)
    p.clean_sync()
    churn(p, rng, size)
    before = p.snapshot()
    corruption = CORRUPTIONS[seed % len(CORRUPTIONS)]
    _set_state(p, corruption)
    out = p.sync()
    assert out.code == 2, f"a corrupt checkpoint did not stop the run: {out}"
    no_traceback(out)
    assert "checkpoint row in the destination is unreadable" in out.stderr
    assert "syncline state c --reset events" in out.stderr
    assert p.snapshot() == before
    reset = p.cli("state", "c", "--reset", "events")
    assert reset.code == 0, str(reset)
    scenario.note(f"corruption {corruption[:20]!r}")
    p.finish()


@pytest.mark.parametrize(("size", "seed"), matrix([1], [2]))
def test_checkpoint_in_the_future_reads_nothing_and_warns(scenario: Scenario, tmp_path: Path, size: Size,
                                                          seed: int) -> None:
    rng = random.Random(seed)
    p = sqlite_pipeline(scenario, tmp_path, MERGE, size, rng)
    p.clean_sync()
    churn(p, rng, size)
    before = p.snapshot()
    state = _state(p)
    state["source"]["cursor"] = f"{rng.randint(2100, 2999)}-01-01 00:00:00.000000"
    _set_state(p, json.dumps(state))
    out = p.sync()
    assert out.code == 0, str(out)
    assert "beyond the newest source row" in out.output
    run = p.last_run()
    assert (run.status, run.rows_read, run.rows_committed) == ("warning", 0, 0), f"{run}"
    assert p.snapshot() == before
    assert p.cli("state", "c", "--reset", "events").code == 0
    p.finish()


@pytest.mark.parametrize("mode", ["merge", pytest.param("append", marks=pytest.mark.faults_full)])
@pytest.mark.parametrize(("size", "seed"), matrix([1], [2]))
def test_no_source_change_reads_and_writes_nothing(scenario: Scenario, tmp_path: Path, mode: str,
                                                   size: Size, seed: int) -> None:
    rng = random.Random(seed)
    p = sqlite_pipeline(scenario, tmp_path, MODES[mode], size, rng)
    p.clean_sync()
    # under merge a SQLite read takes the checkpoint's cursor value again (a writer may still
    # stamp a row with it): those rows, and nothing else, are read and merged unchanged
    again = p.dest("SELECT count(*) FROM dst.events WHERE updated_at = (SELECT max(updated_at) "
                   "FROM dst.events)")[0][0] if mode == "merge" else 0
    values = "SELECT * EXCLUDE (_syncline_synced_at) FROM dst.events ORDER BY id"
    table = p.dest(values if again else "SELECT * FROM dst.events ORDER BY id")
    loads = p.dest("SELECT * FROM dst._syncline_loads ORDER BY committed_at")
    position = _state(p)["source"]
    p.clean_sync()
    run = p.last_run()
    assert (run.rows_read, run.rows_committed) == (again, again), f"{run}"
    assert run.status == "succeeded", f"{run}"  # nothing new after a big first load is no anomaly
    assert p.dest(values if again else "SELECT * FROM dst.events ORDER BY id") == table
    if not again:
        assert p.dest("SELECT * FROM dst._syncline_loads ORDER BY committed_at") == loads
    assert _state(p)["source"] == position
    p.finish()


# -- the source -----------------------------------------------------------------------------


@pytest.mark.parametrize(("size", "seed"), matrix([1], [2, 3]))
def test_silent_source_fails_the_attempt_as_transient(scenario: Scenario, tmp_path: Path, size: Size,
                                                      seed: int) -> None:
    rng = random.Random(seed)
    timeout = 1.5
    p = sqlite_pipeline(scenario, tmp_path, MERGE, size, rng, max_attempts=2, source_timeout_s=timeout)
    hit = rng.randint(2, size.batches)
    out = p.sync(failpoints=f"source_read:{hit}=hang")
    assert out.code == 0, str(out)
    run = p.last_run()
    assert run.attempts == 2, f"{run}"
    failure_class, message = run.attempt_failures[0]
    assert failure_class == "transient" and f"the source sent nothing for {timeout:g}s" in (message or "")
    assert out.seconds < 30
    assert p.duplicates_now() == 0
    p.finish()


def test_oracle_counts_each_kind_of_damage(tmp_path: Path) -> None:
    """The oracle is only worth its zeros if it sees damage: break a good destination five ways."""
    from faults.harness import Totals

    rng = random.Random(7)
    p = sqlite_pipeline(Scenario("oracle-self-check", Totals()), tmp_path, REPLACE, Size(100, 40), rng)
    p.clean_sync()
    p.source.mutate(rng, deletes=3)
    assert p.check().resurrected == 3  # full refresh sees deletes; the table has not caught up
    assert p.check(observe_deletes=False).clean  # a cursor read could not have known
    p.clean_sync()
    assert p.check().clean
    con = duckdb.connect(str(p.duckdb_path))
    try:
        con.execute("DELETE FROM dst.events WHERE id IN (1, 2)")  # missing
        con.execute("INSERT INTO dst.events SELECT * FROM dst.events WHERE id = 3")  # duplicate
        con.execute("UPDATE dst.events SET version = version - 1 WHERE id IN (4, 5, 6)")  # stale
        con.execute("UPDATE dst.events SET version = version + 1 WHERE id = 7")  # unexpected
        con.execute("INSERT INTO dst.events SELECT * REPLACE (100000 AS id) FROM dst.events "
                    "WHERE id = 8")  # unexpected
    finally:
        con.close()
    counts = p.check()
    assert (counts.missing, counts.duplicate, counts.stale, counts.unexpected, counts.resurrected) == \
        (2, 1, 3, 2, 0), counts.describe()


def test_oracle_sees_a_broken_history(tmp_path: Path) -> None:
    """Versions repeated, overlapping or two current: each is a broken key."""
    from faults.harness import Totals

    rng = random.Random(7)
    p = sqlite_pipeline(Scenario("oracle-history-check", Totals()), tmp_path, HISTORY, Size(100, 40), rng)
    p.clean_sync()
    p.source.mutate(rng, updates=30)
    p.clean_sync()
    assert p.check().clean
    con = duckdb.connect(str(p.duckdb_path))
    try:
        changed = [i for (i,) in con.execute(
            "SELECT id FROM dst.events GROUP BY id HAVING count(*) > 1 ORDER BY id LIMIT 3").fetchall()]
        assert len(changed) == 3
        con.execute("INSERT INTO dst.events SELECT * FROM dst.events WHERE id = ? AND "
                    "_syncline_is_current", [changed[0]])  # the current version twice
        con.execute("UPDATE dst.events SET _syncline_valid_to = _syncline_valid_to + INTERVAL 1 "
                    "SECOND WHERE id = ? AND NOT _syncline_is_current", [changed[1]])  # overlap
        con.execute("UPDATE dst.events SET version = 0 WHERE id = ? AND _syncline_is_current",
                    [changed[2]])  # goes back
    finally:
        con.close()
    counts = p.check()
    assert counts.broken == 3 and counts.duplicate == 1, counts.describe()


def test_lock_holder_really_blocks_the_destination(tmp_path: Path) -> None:
    """The destination-unavailable scenario is only honest if the lock helper does lock."""
    path = tmp_path / "x.duckdb"
    with holding_lock(path, 30), pytest.raises(duckdb.IOException, match="(?i)lock"):
        duckdb.connect(str(path))


def test_tmpfs_is_really_small(tmp_path: Path) -> None:
    with tmpfs(tmp_path / "disk", "1m") as disk:
        with pytest.raises(OSError, match="No space left"):
            (disk / "big").write_bytes(b"x" * 2_000_000)
        remount(disk, "4m")
        (disk / "big").write_bytes(b"x" * 2_000_000)
    assert not (tmp_path / "disk" / "big").exists()



# -- live writers ---------------------------------------------------------------------------


@pytest.mark.services
@pytest.mark.parametrize(("engine", "write"), [("postgres", "merge"), ("postgres", "append"),
                                               ("mariadb", "merge")])
@pytest.mark.parametrize(("size", "seed"), matrix([1], [2, 3], ci=Size(3_000, 500),
                                                  full=Size(20_000, 2_000)))
def test_live_writers_during_kills_and_syncs(scenario: Scenario, tmp_path: Path, engine: str,
                                             write: str, size: Size, seed: int) -> None:
    """Applications write (late commits, database-clock stamps) while syncs run and are killed."""
    rng = random.Random(seed)
    with _live_source(engine, size, rng) as (source, config, stream):
        p = Pipeline(scenario=scenario, root=tmp_path, source=source, source_config=config,
                     stream=stream, stream_config={"mode": "incremental", "write": write,
                                                   "cursor": "updated_at"},
                     batch_size=size.batch, duckdb_path=tmp_path / "wh.duckdb")
        # append keeps every version it reads: only new rows, so that each key has one
        with live_writers(source, seed, updates=write == "merge") as commits:
            p.clean_sync()
            for _ in range(3):
                point = rng.choice(["source_read", "after_staging", "after_commit", "in_commit"])
                p.sync(failpoints=f"{point}:{rng.randint(1, 2)}=kill")
                p.sync()  # under way while the writers go on: it may or may not be clean
        scenario.note(f"{commits[0]} writer commits")
        time.sleep(2.1)  # past the late-commit bound's margin (whole seconds on MariaDB)
        p.finish()


@contextlib.contextmanager
def _live_source(engine: str, size: Size, rng: random.Random
                 ) -> Iterator[tuple[LiveTable, dict[str, Any], str]]:
    if engine == "postgres":
        with postgres_schema("syncline_live") as schema:
            source: LiveTable = LivePostgresTable(PG_CONNINFO, schema)
            source.create(size.rows, rng)
            yield source, {"type": "postgres", "host": HOST, "port": 5432,
                           "user": postgres_reader(schema), "database": "test",
                           "schemas": [schema]}, f"{schema}.events"
        return
    require_mariadb()
    name = f"syncline_live_{rng.randrange(16**8):08x}"
    admin = pymysql.connect(host=HOST, port=3306, user="root", autocommit=True)
    try:
        with admin.cursor() as cur:
            cur.execute(f"CREATE DATABASE `{name}`")
        source = LiveMariaTable(name)
        source.create(size.rows, rng)
        yield source, {"type": "mysql", "host": HOST, "port": 3306, "user": mariadb_reader(name),
                       "database": name}, f"{name}.events"
    finally:
        with admin.cursor() as cur:
            cur.execute(f"DROP DATABASE IF EXISTS `{name}`")
        admin.close()
