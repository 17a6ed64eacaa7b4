"""The run queue on the metadata store, on SQLite and PostgreSQL: what is asked for runs once,
in the order users expect, and survives the death of any process."""

from __future__ import annotations

import datetime as dt
import multiprocessing
import os
import signal
import subprocess
import sys
import textwrap

from syncline.orchestration.queue import RunQueue, RunRequest
from syncline.store.store import MetadataStore

T0 = dt.datetime(2026, 12, 7, 12, 0, tzinfo=dt.UTC)


def later(seconds: float) -> dt.datetime:
    return T0 + dt.timedelta(seconds=seconds)


def test_manual_runs_go_first_and_nothing_starts_before_it_is_due(store_url: str) -> None:
    with MetadataStore(store_url) as store:
        q: RunQueue = store.queue()
        q.put(RunRequest("a", "schedule"), now=T0)
        q.put(RunRequest("b", "schedule", not_before=later(60)), now=T0)
        q.put(RunRequest("c", "manual"), now=later(1))
        assert [w.entry.connection for w in q.pending(now=later(2))] == ["c", "a", "b"]
        assert [w.reason for w in q.pending(now=later(2))][2] == "due in 58s"
        claimed = [q.claim("w1", now=later(2)), q.claim("w1", now=later(2)),
                   q.claim("w1", now=later(2))]
        assert [c.connection if c else None for c in claimed] == ["c", "a", None]
        late = q.claim("w1", now=later(61))
        assert late is not None and (late.connection, late.state, late.worker) == ("b", "claimed", "w1")


def test_a_run_already_asked_for_is_not_queued_twice(store_url: str) -> None:
    with MetadataStore(store_url) as store:
        q = store.queue()
        first = q.put(RunRequest("a", "schedule"), now=T0)
        again = q.put(RunRequest("a", "schedule"), now=later(60))
        assert (again.id, again.coalesced, first.coalesced) == (first.id, True, False)
        lifted = q.put(RunRequest("a", "manual"), now=later(61))  # a manual trigger goes first
        assert (lifted.id, lifted.trigger) == (first.id, "manual")
        running = q.claim("w1", now=later(62))
        assert running is not None and running.id == first.id
        q.started(first.id, run_id=7)
        tick = q.put(RunRequest("a", "schedule"), now=later(120))  # the running run covers it
        assert (tick.id, tick.coalesced) == (first.id, True)
        manual = q.put(RunRequest("a", "manual", full_refresh=True), now=later(121))
        assert not manual.coalesced  # asked for by a person after the run began: it runs after
        assert q.claim("w2", now=later(122)) is None  # never two runs of one connection at once
        [waiting] = q.pending(now=later(122))
        assert (waiting.entry.id, waiting.reason) == (manual.id, "waits for run 7 of a (on w1) to end")
        q.finish(first.id, note="succeeded")
        after = q.claim("w2", now=later(123))
        assert after is not None and (after.id, after.full_refresh) == (manual.id, True)


def test_a_lost_worker_frees_its_connection_and_a_cancelled_entry_never_runs(store_url: str) -> None:
    with MetadataStore(store_url) as store:
        q = store.queue()
        q.put(RunRequest("a", "manual"), now=T0)
        entry = q.put(RunRequest("b", "manual"), now=T0)
        held = q.claim("w1", now=T0)
        assert held is not None and held.connection == "a"
        assert q.cancel(entry.id, now=later(1)).state == "cancelled"
        q.put(RunRequest("a", "schedule"), now=later(1))  # covered by the running run
        lost = q.abandon("w1", "worker w1 stopped sending heartbeats", now=later(2))
        assert [(e.id, e.state) for e in lost] == [(held.id, "lost")]
        again = q.claim("w2", now=later(3))  # its run is queued again, still a manual one
        assert again is not None and (again.connection, again.trigger, again.retry) == ("a", "manual", 1)
        assert q.claim("w3", now=later(3)) is None
        ended = {e.id: (e.state, e.note) for e in store.queue().entries(("lost", "cancelled"))}
        assert ended == {held.id: ("lost", f"worker w1 stopped sending heartbeats; queued again as "
                                           f"entry {again.id}"),
                         entry.id: ("cancelled", "cancelled")}


def test_a_run_whose_worker_is_lost_again_and_again_stops_being_queued(store_url: str) -> None:
    with MetadataStore(store_url) as store:
        q = store.queue()
        q.put(RunRequest("a", "schedule", full_refresh=True), now=T0)
        notes = []
        for n in range(3):
            held = q.claim(f"w{n}", now=later(n))
            assert held is not None and held.full_refresh, n
            [lost] = q.abandon(f"w{n}", "lost", now=later(n))
            notes.append(q.get(lost.id).note)  # type: ignore[union-attr]
        assert q.claim("w9", now=later(9)) is None
        assert "not queued again: tried 3 times" in notes[-1] and "syncline trigger a" in notes[-1]
        q.put(RunRequest("b", "schedule"), now=later(10))
        cancelled = q.claim("w1", now=later(10))
        assert cancelled is not None
        q.started(cancelled.id, run_id=5)
        q.request_cancel(5, "ann")
        q.abandon("w1", "lost", now=later(11))
        assert q.claim("w2", now=later(12)) is None  # a run being cancelled is not run again
        q.put(RunRequest("c", "schedule"), now=later(13))
        running = q.claim("w1", now=later(13))
        waiting = q.put(RunRequest("c", "manual"), now=later(14))
        q.abandon("w1", "lost", now=later(15))  # the queued manual run stands for the lost one
        assert running is not None and q.get(running.id).note == f"lost; entry {waiting.id} runs it again"  # type: ignore[union-attr]
        assert [e.id for e in q.entries(("queued",))] == [waiting.id]


def _claim_all(url: str, worker: str, start: multiprocessing.synchronize.Event, out: multiprocessing.Queue) -> None:  # type: ignore[type-arg]
    start.wait()
    got = []
    with MetadataStore(url) as store:
        q = store.queue()
        while (entry := q.claim(worker)) is not None:
            got.append(entry.id)
    out.put(got)


def test_workers_claiming_at_once_take_each_run_exactly_once(store_url: str) -> None:
    with MetadataStore(store_url) as store:
        ids = [store.queue().put(RunRequest(f"c{i}", "schedule")).id for i in range(40)]
    ctx = multiprocessing.get_context("fork")
    start, out = ctx.Event(), ctx.Queue()
    procs = [ctx.Process(target=_claim_all, args=(store_url, f"w{n}", start, out)) for n in range(3)]
    for p in procs:
        p.start()
    start.set()
    taken = [out.get(timeout=120) for _ in procs]
    for p in procs:
        p.join(60)
        assert p.exitcode == 0
    assert sorted(i for got in taken for i in got) == ids


def test_a_queued_run_survives_the_process_that_queued_it_being_killed(store_url: str) -> None:
    code = textwrap.dedent(f"""
        import os, signal
        from syncline.orchestration.queue import RunRequest
        from syncline.store.store import MetadataStore
        store = MetadataStore({store_url!r})
        store.queue().put(RunRequest("orders", "manual", streams=("items",)))
        os.kill(os.getpid(), signal.SIGKILL)
    """)
    done = subprocess.run([sys.executable, "-c", code], env=os.environ.copy(), timeout=120)
    assert done.returncode == -signal.SIGKILL
    with MetadataStore(store_url) as store:
        entry = store.queue().claim("w1")
    assert entry is not None and (entry.connection, entry.streams) == ("orders", ("items",))


def test_a_run_waits_while_a_resource_it_needs_has_no_free_slot(store_url: str) -> None:
    one_file = ("duckdb file /data/wh.duckdb", 1)
    crm = ("source crm", 2)
    needs = {"a": (one_file,), "b": (one_file,), "c": (crm,), "d": (crm,), "e": (crm,)}
    with MetadataStore(store_url) as store:
        q = store.queue()
        for name in "abcde":
            q.put(RunRequest(name, "schedule"), now=T0)
        taken = [q.claim(f"w{n}", now=later(1), resources=needs) for n in range(5)]
        assert [t.connection if t else None for t in taken] == ["a", "c", "d", None, None]
        reasons = {w.entry.connection: w.reason for w in q.pending(now=later(1), resources=needs)}
        assert reasons == {"b": "waits for a free slot of duckdb file /data/wh.duckdb (1 run at a time)",
                           "e": "waits for a free slot of source crm (2 runs at a time)"}
        q.finish(taken[0].id)  # type: ignore[union-attr]
        q.finish(taken[1].id)  # type: ignore[union-attr]
        after = [q.claim("w9", now=later(2), resources=needs) for _ in range(3)]
        assert [t.connection if t else None for t in after] == ["b", "e", None]


def test_a_run_is_claimed_only_by_a_worker_of_its_region(store_url: str) -> None:
    with MetadataStore(store_url) as store:
        q = store.queue()
        eu = q.put(RunRequest("shop_eu", "manual", region="eu"), now=T0)
        home = q.put(RunRequest("shop", "schedule"), now=T0)
        assert q.claim("w-default", now=later(1)).id == home.id  # type: ignore[union-attr]
        assert q.claim("w-default", now=later(1)) is None  # never the eu run
        [waiting] = q.pending(now=later(2), live_regions={"default"})
        assert (waiting.entry.id, waiting.reason) == (eu.id, "no live worker for region eu")
        [waiting] = q.pending(now=later(2), live_regions={"default", "eu"})
        assert waiting.reason.endswith("waits for a free worker")
        taken = q.claim("w-eu", now=later(3), regions=("us", "eu"))
        assert taken is not None and (taken.id, taken.region) == (eu.id, "eu")
        [lost] = q.abandon("w-eu", "lost", now=later(4))
        again = q.claim("w-eu2", now=later(5), regions=("eu",))  # queued again in its region
        assert again is not None and (again.connection, again.region) == ("shop_eu", "eu")
