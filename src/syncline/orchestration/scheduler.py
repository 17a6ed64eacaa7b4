"""The scheduler: every connection's run queued when its schedule says, once.

Each tick (every second in `up`) the scheduler that holds the leader lease reads the
newest config revision and, for each connection whose schedule is not `manual`:

* a connection seen for the first time (or whose schedule changed) is due at once when
  its interval has passed since its last run (or it never ran), else at the next tick of
  its interval or cron expression;
* a due connection is put on the run queue, `schedule_jitter` after its due time (the same
  offset for the same tick); the queue coalesces it with a run already queued or running;
* the next due time is the first tick of the schedule after now: ticks missed while no
  scheduler ran give one catch-up run, never a storm;
* a paused connection is not queued; resumed, it is due at once if a tick was missed.

Schedulers that do not hold the lease do nothing but wait for it: two never queue at once.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import os
import socket
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.exc import SQLAlchemyError

from syncline import clock
from syncline.errors import SynclineError
from syncline.orchestration.queue import QueuedRun, RunQueue, RunRequest
from syncline.regions import DEFAULT as DEFAULT_REGION
from syncline.regions import connection_regions
from syncline.schedule import Schedule, parse_duration
from syncline.store.leader import Leadership
from syncline.store.schedules import Due
from syncline.store.store import MetadataStore

ROLE = "scheduler"
LEASE_TTL = dt.timedelta(seconds=30)


@dataclass(frozen=True)
class Timing:
    """A connection's schedule as the scheduler follows it."""

    text: str  # the schedule as written, with its time zone: a change restarts its timing
    schedule: Schedule
    timezone: str
    jitter_s: int

    def next_after(self, moment: dt.datetime, since: dt.datetime | None = None) -> dt.datetime:
        """The first tick after `moment`: an interval keeps its phase from `since`."""
        interval = self.schedule.interval
        if interval is not None and since is not None and since <= moment:
            return since + interval * ((moment - since) // interval + 1)
        nxt = self.schedule.next_after(moment, self.timezone)
        assert nxt is not None
        return nxt

    def jitter(self, connection: str, due: dt.datetime) -> dt.timedelta:
        if not self.jitter_s:
            return dt.timedelta(0)
        seed = hashlib.sha256(f"{connection}|{due.isoformat()}".encode()).digest()
        return dt.timedelta(seconds=int.from_bytes(seed[:8], "big") % (self.jitter_s + 1))


def timings(document: dict[str, Any]) -> dict[str, Timing]:
    """The scheduled connections of a revision's document (validated when it was applied)."""
    out = {}
    seen: dict[tuple[str, str, str], Timing | None] = {}  # thousands of connections, few schedules
    for name, conn in (document.get("connections") or {}).items():
        key = (str(conn.get("schedule") or "manual"), str(conn.get("schedule_timezone") or "UTC"),
               str(conn.get("schedule_jitter") or ""))
        if key not in seen:
            seen[key] = _timing(*key)
        if (timing := seen[key]) is not None:
            out[str(name)] = timing
    return out


def _timing(text: str, tz: str, jitter: str) -> Timing | None:
    schedule = Schedule.parse(text)
    if schedule.interval is None and schedule.cron is None:
        return None  # manual
    jitter_s = int(parse_duration(jitter).total_seconds()) if jitter else 0
    return Timing(f"{text} [{tz}]", schedule, tz, jitter_s)


@dataclass
class Tick:
    at: dt.datetime
    leadership: Leadership | None = None
    revision: int | None = None
    queued: list[QueuedRun] = field(default_factory=list)
    coalesced: list[QueuedRun] = field(default_factory=list)
    error: str | None = None


class Scheduler:
    def __init__(self, store: MetadataStore, queue: RunQueue, name: str | None = None,
                 lease_ttl: dt.timedelta = LEASE_TTL) -> None:
        self.store, self.queue = store, queue
        self.name = name or f"{socket.gethostname()} pid {os.getpid()} {uuid.uuid4().hex[:6]}"
        self.lease = store.leader(ROLE, self.name, lease_ttl)
        self.states = store.schedule_states()
        self._timings: tuple[int, dict[str, Timing]] | None = None
        self._regions: dict[str, str] = {}  # of the revision of _timings
        #: the schedule states as this scheduler last wrote them, and the leader term they
        #: belong to: nobody else writes them while the term lasts, so a tick need not re-read
        self._states: tuple[int, dict[str, Due]] | None = None

    def tick(self, now: dt.datetime | None = None) -> Tick:
        now = now or clock.now()
        done = Tick(now, self.lease.hold(now))
        if not done.leadership or not done.leadership.mine:
            return done
        number = self.store.revisions().latest_number()
        if number is None:
            return done
        if self._timings is None or self._timings[0] != number:  # read once per revision
            revision = self.store.revisions().get(number)
            assert revision is not None
            self._timings = (number, timings(revision.document))
            self._regions = connection_regions(revision.document)
        done.revision = number
        scheduled = self._timings[1]
        term = done.leadership.term
        if self._states is None or self._states[0] != term:
            self._states = (term, self.states.load())
        states = self._states[1]
        paused = self.store.pauses().all()
        fresh = [n for n, t in scheduled.items() if n not in states or states[n].schedule != t.text]
        started = self.store.last_started(fresh) if fresh else {}
        changed: list[Due] = []
        due: list[tuple[str, Timing, dt.datetime]] = []
        for name, timing in scheduled.items():
            state = states.get(name)
            if state is None or state.schedule != timing.text:
                state = Due(name, timing.text, self._first_due(timing, now, started.get(name)),
                            state.last_due_at if state else None, state.last_entry if state else None)
                changed.append(state)
            if state.next_due_at > now or name in paused:  # resumed: one catch-up run
                continue
            due.append((name, timing, state.next_due_at))
        entries = self.queue.put_many([
            RunRequest(name, "schedule", not_before=at + timing.jitter(name, at),
                       region=self._regions.get(name, DEFAULT_REGION))
            for name, timing, at in due], now=now) if due else []
        for (name, timing, at), entry in zip(due, entries, strict=True):
            (done.coalesced if entry.coalesced else done.queued).append(entry)
            changed.append(Due(name, timing.text, timing.next_after(now, since=at), at, entry.id))
        dropped = [n for n in states if n not in scheduled]
        self._states = None  # unknown until the write below succeeds
        self.states.save(changed, dropped=dropped, stored=states)
        kept = {n: d for n, d in states.items() if n in scheduled}
        kept.update((d.connection, d) for d in changed)
        self._states = (term, kept)
        return done

    @staticmethod
    def _first_due(timing: Timing, now: dt.datetime, last_started: dt.datetime | None) -> dt.datetime:
        if timing.schedule.interval is not None:
            return last_started + timing.schedule.interval if last_started else now
        return timing.next_after(now)

    def run(self, stop: threading.Event, every_s: float = 1.0,
            on_tick: Callable[[Tick], None] | None = None) -> None:
        """Tick until `stop` is set, then step down so another scheduler takes over at once.
        A tick that fails (the store unreachable for a moment) is reported and retried."""
        try:
            while not stop.is_set():
                try:
                    done = self.tick()
                except (SynclineError, SQLAlchemyError) as exc:
                    done = Tick(dt.datetime.now(dt.UTC), error=f"{type(exc).__name__}: {exc}")
                if on_tick is not None:
                    on_tick(done)
                stop.wait(every_s)
        finally:
            try:
                self.lease.release()
            except SQLAlchemyError:
                pass  # the lease expires by itself
