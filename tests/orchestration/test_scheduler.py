"""The scheduler, on SQLite and PostgreSQL stores, driven by the clock tests set: runs are
queued on time and once, missed ticks give one catch-up run, cron reads its time zone, jitter
spreads runs, and only the scheduler holding the leader lease queues anything."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from syncline.orchestration.scheduler import Scheduler, timings
from syncline.store.store import MetadataStore

T0 = dt.datetime(2026, 12, 7, 12, 0, tzinfo=dt.UTC)


def at(minutes: float = 0, seconds: float = 0) -> dt.datetime:
    return T0 + dt.timedelta(minutes=minutes, seconds=seconds)


def workspace(**connections: dict[str, Any]) -> dict[str, Any]:
    return {"version": 1, "connections": {
        name: {"source": "s", "destination": "d", **c} for name, c in connections.items()}}


@pytest.fixture
def store(store_url: str) -> Any:
    with MetadataStore(store_url) as s:
        yield s


def run_everything(store: MetadataStore, now: dt.datetime) -> list[str]:
    """What a worker does: claim every due run and finish it; the connections it ran."""
    ran = []
    while (entry := store.queue().claim("w", now=now)) is not None:
        store.queue().finish(entry.id, now=now)
        ran.append(entry.connection)
    return ran


def test_interval_runs_are_queued_on_time_once_and_missed_ticks_give_one_run(
        store: MetadataStore) -> None:
    store.revisions().apply(workspace(a={"schedule": "every 15m"}, m={}), "file:test")
    s = Scheduler(store, store.queue())
    first = s.tick(at(0))
    assert [(e.connection, e.not_before) for e in first.queued] == [("a", T0)]  # never ran: now
    assert s.tick(at(5)).queued == []
    late = s.tick(at(15))  # still queued: the tick is covered by the queued run
    assert (late.queued, [e.id for e in late.coalesced]) == ([], [first.queued[0].id])
    assert run_everything(store, at(16)) == ["a"]
    assert [e.not_before for e in s.tick(at(30)).queued] == [at(30)]
    assert run_everything(store, at(31)) == ["a"]
    down = s.tick(at(3 * 60 + 7))  # no scheduler for hours: one catch-up run, not twelve
    assert [e.not_before for e in down.queued] == [at(45)]  # due since the first missed tick
    assert run_everything(store, at(3 * 60 + 7)) == ["a"]
    assert s.tick(at(3 * 60 + 14)).queued == []
    assert [e.not_before for e in s.tick(at(3 * 60 + 15)).queued] == [at(3 * 60 + 15)]  # phase kept


def test_a_connection_that_ran_recently_waits_for_its_interval(store: MetadataStore) -> None:
    run_id = store.start_run("a")  # a sync before the scheduler first saw the connection
    store.end_run(run_id, "succeeded", rows_read=0, rows_committed=0, rows_quarantined=0, attempts=1)
    started = store.run(run_id).started_at  # type: ignore[union-attr]
    store.revisions().apply(workspace(a={"schedule": "every 1h"}), "file:test")
    s = Scheduler(store, store.queue())
    assert s.tick(started + dt.timedelta(minutes=59)).queued == []
    assert [e.not_before for e in s.tick(started + dt.timedelta(minutes=61)).queued] == [
        started + dt.timedelta(hours=1)]


def test_cron_reads_its_time_zone_and_jitter_spreads_runs_after_their_due_time(
        store: MetadataStore) -> None:
    doc = workspace(paris={"schedule": "0 9 * * *", "schedule_timezone": "Europe/Paris",
                           "schedule_jitter": "30s"})
    store.revisions().apply(doc, "file:test")
    s = Scheduler(store, store.queue())
    morning = dt.datetime(2026, 12, 8, 7, 59, 59, tzinfo=dt.UTC)
    s.tick(morning - dt.timedelta(hours=1))  # first sight: due at the next 9:00 in Paris
    assert s.tick(morning).queued == []
    nine_in_paris = dt.datetime(2026, 12, 8, 8, 0, tzinfo=dt.UTC)  # UTC+1 in December
    [entry] = s.tick(nine_in_paris + dt.timedelta(seconds=1)).queued
    offset = timings(doc)["paris"].jitter("paris", nine_in_paris)
    assert entry.not_before == nine_in_paris + offset
    assert dt.timedelta(0) <= offset <= dt.timedelta(seconds=30)
    if offset:
        assert store.queue().claim("w", now=nine_in_paris) is None  # not before its time
    assert store.queue().claim("w", now=nine_in_paris + offset) is not None


def test_only_the_leader_queues_and_another_takes_over_when_it_stops(store: MetadataStore) -> None:
    store.revisions().apply(workspace(a={"schedule": "every 1m"}), "file:test")
    one = Scheduler(store, store.queue(), name="one", lease_ttl=dt.timedelta(seconds=90))
    two = Scheduler(store, store.queue(), name="two", lease_ttl=dt.timedelta(seconds=90))
    first, other = one.tick(at(0)), two.tick(at(0, 1))
    assert (first.leadership.mine, len(first.queued)) == (True, 1)  # type: ignore[union-attr]
    assert (other.leadership.mine, other.queued, other.leadership.holder) == (  # type: ignore[union-attr]
        False, [], "one")
    run_everything(store, at(0, 2))
    assert two.tick(at(1, 5)).queued == []  # "one" stopped ticking, its lease has not expired
    took = two.tick(at(1, 31))
    assert took.leadership.mine and took.leadership.term == 2  # type: ignore[union-attr]
    assert [e.not_before for e in took.queued] == [at(1)]
    assert one.tick(at(1, 32)).leadership.mine is False  # type: ignore[union-attr]
    run_everything(store, at(1, 32))
    two.lease.release()  # a clean stop hands over at once
    back = one.tick(at(1, 33))
    assert back.leadership.mine is True  # type: ignore[union-attr]
    assert back.queued == []  # "two" ran the 12:01 tick: "one" reads where it left off
    assert [e.not_before for e in one.tick(at(2, 1)).queued] == [at(2)]


def test_a_schedule_removed_or_made_manual_stops_queuing(store: MetadataStore) -> None:
    store.revisions().apply(workspace(a={"schedule": "every 1m"}, b={"schedule": "every 1m"}),
                            "file:test")
    s = Scheduler(store, store.queue())
    assert len(s.tick(at(0)).queued) == 2
    run_everything(store, at(0))
    store.revisions().apply(workspace(a={"schedule": "manual"}), "file:test")
    assert s.tick(at(5)).queued == []
    assert store.schedule_states().load() == {}
