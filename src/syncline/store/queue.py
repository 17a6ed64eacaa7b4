"""The run queue on the metadata store: runs asked for, survive any process's crash.

One entry per run asked for. `put` coalesces: a connection that already has a queued entry
with the same options, or (for a scheduled or retried run) one being run, is not queued
again. `claim` hands the next entry to a worker: manual triggers first, then by due time;
never two entries of one connection at once. Claims are serialised by the database (SQLite's
write lock, a PostgreSQL advisory lock), so two workers never take one entry.
"""

from __future__ import annotations

import datetime as dt
import json
from collections import Counter
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from sqlalchemy import Engine, case, func, insert, select, text
from sqlalchemy.orm import Session, sessionmaker

from syncline.errors import ConfigurationError
from syncline.event_kinds import Event
from syncline.regions import DEFAULT as DEFAULT_REGION
from syncline.store.events import Emitter
from syncline.store.leases import now_utc
from syncline.store.models import Base, QueueEntry

TRIGGERS = ("manual", "retry", "schedule")  # claim order when several are due
CANDIDATES = 500  # due entries a claim looks through for one whose resources are free
#: a resource a run holds (its key) and how many runs may hold it at once
Slot = tuple[str, int]
ACTIVE = ("queued", "claimed")
#: a run whose worker is lost this many times in a row is not queued again
LOST_RUNS = 3
_PG_QUEUE_LOCK = 0x53594E51  # "SYNQ"


@dataclass(frozen=True)
class RunRequest:
    """A run to queue: which connection, why, and how."""

    connection: str
    trigger: str = "manual"
    full_refresh: bool = False
    streams: tuple[str, ...] = ()
    not_before: dt.datetime | None = None  # None: due at once
    retry: int = 0  # a run again after a transient failure: how many times so far
    region: str = DEFAULT_REGION  # only workers of this region claim it

    def options(self) -> dict[str, Any]:
        return {"full_refresh": self.full_refresh, "streams": sorted(self.streams),
                **({"retry": self.retry} if self.retry else {})}


@dataclass(frozen=True)
class QueuedRun:
    id: int
    connection: str
    trigger: str
    full_refresh: bool
    streams: tuple[str, ...]
    state: str  # queued | claimed | done | cancelled | lost
    queued_at: dt.datetime
    not_before: dt.datetime
    worker: str | None = None
    claimed_at: dt.datetime | None = None
    run_id: int | None = None
    ended_at: dt.datetime | None = None
    note: str | None = None
    cancel_requested_at: dt.datetime | None = None
    cancel_requested_by: str | None = None
    retry: int = 0
    region: str = DEFAULT_REGION
    #: put() found the run already asked for: this is the entry that stands for it
    coalesced: bool = field(default=False, compare=False)


@dataclass(frozen=True)
class Waiting:
    """A queued entry and, in words, why it has not started."""

    entry: QueuedRun
    reason: str


def _record(row: QueueEntry) -> QueuedRun:
    return _from(row.id, {c.key: getattr(row, c.key) for c in _TABLE.columns})


def _from(entry: int, v: Mapping[str, Any]) -> QueuedRun:
    """A record from an entry's column values (an ORM row's or an inserted dict)."""
    options = json.loads(v["options"])
    return QueuedRun(
        id=entry, connection=v["connection"], trigger=v["trigger"],
        full_refresh=bool(options.get("full_refresh")), streams=tuple(options.get("streams") or ()),
        state=v["state"], queued_at=v["queued_at"], not_before=v["not_before"],
        worker=v.get("worker"), claimed_at=v.get("claimed_at"), run_id=v.get("run_id"),
        ended_at=v.get("ended_at"), note=v.get("note"),
        cancel_requested_at=v.get("cancel_requested_at"),
        cancel_requested_by=v.get("cancel_requested_by"), retry=int(options.get("retry", 0)),
        region=v.get("region") or DEFAULT_REGION)


_TABLE = Base.metadata.tables[QueueEntry.__tablename__]


class StoreQueue:
    """The embedded run queue: a table of the metadata store (see orchestration/queue.py)."""

    name = "store"

    def __init__(self, engine: Engine, emitter: Emitter | None = None) -> None:
        self._session = sessionmaker(engine, expire_on_commit=False)
        self._emitter = emitter

    def _serialised(self, s: Session) -> None:
        if s.get_bind().dialect.name == "postgresql":  # SQLite: BEGIN IMMEDIATE already is
            s.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _PG_QUEUE_LOCK})

    def put(self, request: RunRequest, now: dt.datetime | None = None) -> QueuedRun:
        return self.put_many([request], now)[0]

    def put_many(self, requests: list[RunRequest], now: dt.datetime | None = None) -> list[QueuedRun]:
        """`put` each request, in one transaction (a scheduler tick with many due)."""
        for request in requests:
            if request.trigger not in TRIGGERS:
                raise ConfigurationError(f"a run's trigger is one of {', '.join(TRIGGERS)}, "
                                         f"not {request.trigger!r}")
        now = now or now_utc()
        out: list[QueuedRun | None] = []
        with self._session.begin() as s:
            self._serialised(s)
            active: dict[str, list[QueueEntry]] = {}
            names = sorted({r.connection for r in requests})
            for start in range(0, len(names), 500):
                for row in s.scalars(select(QueueEntry).where(
                        QueueEntry.connection.in_(names[start:start + 500]),
                        QueueEntry.state.in_(ACTIVE)).order_by(QueueEntry.id)):
                    active.setdefault(row.connection, []).append(row)
            fresh: list[dict[str, Any]] = []  # rows to insert, in order
            asked: list[RunRequest] = []  # the request of each row in fresh
            mine: dict[str, list[int]] = {}  # connection -> its rows in fresh
            slots: list[tuple[int, int, bool]] = []  # (position in out, row in fresh, coalesced)
            texts: dict[tuple[bool, tuple[str, ...], int], str] = {}  # options as stored
            for request in requests:
                key = (request.full_refresh, request.streams, request.retry)
                options = texts.get(key) or texts.setdefault(
                    key, json.dumps(request.options(), sort_keys=True))
                twin = next((i for i in mine.get(request.connection, ())
                             if fresh[i]["options"] == options or request.trigger != "manual"), None)
                if twin is not None:  # asked twice in one call: the first stands for both
                    slots.append((len(out), twin, True))
                    out.append(None)
                    continue
                found = self._coalesce(request, options, active.get(request.connection, []), now)
                if found is not None:
                    out.append(replace(_record(found), coalesced=True))
                    continue
                slots.append((len(out), len(fresh), False))
                mine.setdefault(request.connection, []).append(len(fresh))
                out.append(None)
                asked.append(request)
                fresh.append({"connection": request.connection, "trigger": request.trigger,
                              "options": options, "state": "queued", "queued_at": now,
                              "not_before": request.not_before or now, "region": request.region})
            if fresh:  # one statement for all (a tick with thousands due)
                conn = s.connection()
                # ids come in insertion order, and nobody else inserts while the queue is held
                before = conn.execute(select(func.coalesce(func.max(_TABLE.c.id), 0))).scalar_one()
                conn.execute(insert(_TABLE), fresh)
                ids = conn.execute(select(_TABLE.c.id).where(_TABLE.c.id > before)
                                   .order_by(_TABLE.c.id)).scalars().all()
                made = [QueuedRun(id=i, connection=r.connection, trigger=r.trigger,
                                  full_refresh=r.full_refresh, streams=tuple(sorted(r.streams)),
                                  state="queued", queued_at=now, not_before=f["not_before"],
                                  retry=r.retry, region=r.region)
                        for i, f, r in zip(ids, fresh, asked, strict=True)]
                for index, which, coalesced in slots:
                    out[index] = replace(made[which], coalesced=True) if coalesced else made[which]
        if fresh:
            self._queued(made)
        return [o for o in out if o is not None]

    def _queued(self, entries: list[QueuedRun]) -> None:
        if self._emitter is None:
            return
        self._emitter.emit_many(Event(
            "run.queued", {"entry": e.id, "trigger": e.trigger, "full_refresh": e.full_refresh,
                           "streams": list(e.streams), "due_at": e.not_before.isoformat()},
            connection=e.connection, region=e.region) for e in entries)

    @staticmethod
    def _coalesce(request: RunRequest, options: str, active: list[QueueEntry],
                  now: dt.datetime) -> QueueEntry | None:
        """The active entry that already stands for `request` (whose stored `options` are
        given), updated; None to queue it."""
        for row in active:
            if row.state == "queued" and row.options == options:
                if TRIGGERS.index(request.trigger) < TRIGGERS.index(row.trigger):
                    row.trigger = request.trigger  # a manual trigger lifts a scheduled entry
                row.not_before = min(row.not_before, request.not_before or now)
                row.region = request.region  # as the newest revision says
                return row
        if request.trigger != "manual" and active:  # queued or running already: covered
            return active[0]
        return None

    def claim(self, worker: str, now: dt.datetime | None = None,
              resources: Mapping[str, tuple[Slot, ...]] | None = None,
              regions: Collection[str] = (DEFAULT_REGION,)) -> QueuedRun | None:
        """The next due entry of one of `regions` whose connection is not being run and whose
        `resources` (per connection: (key, how many runs may hold it)) all have a free slot,
        claimed by `worker`."""
        now = now or now_utc()
        order = case({t: i for i, t in enumerate(TRIGGERS)}, value=QueueEntry.trigger)
        with self._session.begin() as s:
            self._serialised(s)
            running = list(s.scalars(select(QueueEntry.connection).where(QueueEntry.state == "claimed")))
            used = _usage(running, resources)
            candidates = s.scalars(select(QueueEntry).where(
                QueueEntry.state == "queued", QueueEntry.not_before <= now,
                QueueEntry.region.in_(list(regions)), QueueEntry.connection.not_in(running))
                .order_by(order, QueueEntry.not_before, QueueEntry.id).limit(CANDIDATES))
            for row in candidates:
                if _blocked(row.connection, resources, used) is None:
                    row.state, row.worker, row.claimed_at = "claimed", worker, now
                    return _record(row)
            return None

    def hold(self, request: RunRequest, holder: str, now: dt.datetime | None = None) -> QueuedRun:
        """An entry claimed at once by `holder`, a run made outside the queue (`syncline sync`),
        so the scheduler coalesces its ticks into it and `queue` shows it. It takes over a
        queued entry asking for the same run."""
        now = now or now_utc()
        options = json.dumps(request.options(), sort_keys=True)
        with self._session.begin() as s:
            self._serialised(s)
            row = s.scalars(select(QueueEntry).where(
                QueueEntry.connection == request.connection, QueueEntry.state == "queued",
                QueueEntry.options == options).order_by(QueueEntry.id).limit(1)).first()
            if row is None:
                row = QueueEntry(connection=request.connection, trigger=request.trigger,
                                 options=options, queued_at=now, not_before=now,
                                 region=request.region)
                s.add(row)
            row.state, row.worker, row.claimed_at = "claimed", holder, now
            s.flush()
            return _record(row)

    def request_cancel(self, run_id: int, by: str, now: dt.datetime | None = None) -> QueuedRun | None:
        """Ask the worker running `run_id` to stop it; the entry, or None if no worker runs it."""
        with self._session.begin() as s:
            row = s.scalars(select(QueueEntry).where(QueueEntry.run_id == run_id,
                                                     QueueEntry.state == "claimed")).first()
            if row is None:
                return None
            if row.cancel_requested_at is None:
                row.cancel_requested_at, row.cancel_requested_by = now or now_utc(), by
            return _record(row)

    def get(self, entry: int) -> QueuedRun | None:
        with self._session() as s:
            row = s.get(QueueEntry, entry)
            return _record(row) if row is not None else None

    def started(self, entry: int, run_id: int) -> None:
        """The claimed entry's run has an id: `queue` and `cancel` can name it."""
        with self._session.begin() as s:
            row = self._entry(s, entry)
            row.run_id = run_id

    def finish(self, entry: int, state: str = "done", note: str | None = None,
               now: dt.datetime | None = None) -> None:
        with self._session.begin() as s:
            row = self._entry(s, entry)
            row.state, row.ended_at, row.note = state, now or now_utc(), note

    def cancel(self, entry: int, now: dt.datetime | None = None, note: str = "cancelled") -> QueuedRun:
        """A queued entry is cancelled at once; a claimed one is left to its worker."""
        with self._session.begin() as s:
            self._serialised(s)
            row = self._entry(s, entry)
            if row.state == "queued":
                row.state, row.ended_at, row.note = "cancelled", now or now_utc(), note
            return _record(row)

    def abandon(self, worker: str, note: str, now: dt.datetime | None = None) -> list[QueuedRun]:
        """The entries a lost worker held are marked lost, freeing their connections, and each
        run is queued again at once (its next run resumes from the last committed checkpoint),
        unless someone had cancelled it or its worker was lost `LOST_RUNS` times in a row."""
        now = now or now_utc()
        with self._session.begin() as s:
            self._serialised(s)
            rows = list(s.scalars(select(QueueEntry).where(
                QueueEntry.state == "claimed", QueueEntry.worker == worker)))
            made: list[QueueEntry] = []
            for row in rows:
                row.state, row.ended_at, row.note = "lost", now, note + self._again(s, row, now, made)
            again = [_record(r) for r in made]
            lost = [_record(r) for r in rows]
        self._queued(again)
        return lost

    @staticmethod
    def _again(s: Session, lost: QueueEntry, now: dt.datetime, made: list[QueueEntry]) -> str:
        """Queue the run of a lost entry again; what was done, for its note."""
        if lost.cancel_requested_at is not None:
            return "; it was being cancelled: not queued again"
        options = json.loads(lost.options)
        tries = int(options.get("retry", 0)) + 1
        if tries >= LOST_RUNS:
            return (f"; not queued again: tried {tries} times, the last on a worker that was lost "
                    "(does the run kill its worker, e.g. out of memory?); "
                    f"`syncline trigger {lost.connection}` runs it again")
        same = {k: v for k, v in options.items() if k != "retry"}
        for row in s.scalars(select(QueueEntry).where(
                QueueEntry.connection == lost.connection, QueueEntry.state == "queued")):
            if {k: v for k, v in json.loads(row.options).items() if k != "retry"} == same:
                if TRIGGERS.index(lost.trigger) < TRIGGERS.index(row.trigger):
                    row.trigger = lost.trigger
                row.not_before = min(row.not_before, now)
                return f"; entry {row.id} runs it again"
        again = QueueEntry(connection=lost.connection, trigger=lost.trigger, state="queued",
                           options=json.dumps({**options, "retry": tries}, sort_keys=True),
                           queued_at=now, not_before=now, region=lost.region)
        s.add(again)
        s.flush()
        made.append(again)
        return f"; queued again as entry {again.id}"

    def entries(self, states: tuple[str, ...] = ACTIVE, connection: str | None = None,
                limit: int = 1000) -> list[QueuedRun]:
        q = select(QueueEntry).where(QueueEntry.state.in_(states)).order_by(QueueEntry.id).limit(limit)
        if connection is not None:
            q = q.where(QueueEntry.connection == connection)
        with self._session() as s:
            return [_record(r) for r in s.scalars(q)]

    def pending(self, now: dt.datetime | None = None,
                resources: Mapping[str, tuple[Slot, ...]] | None = None,
                live_regions: Collection[str] | None = None) -> list[Waiting]:
        """Every queued entry in the order it will be claimed, with why it waits (given the
        regions live workers serve, also that none serves its region)."""
        now = now or now_utc()
        active = self.entries()
        running = {e.connection: e for e in active if e.state == "claimed"}
        used = _usage(list(running), resources)
        queued = sorted((e for e in active if e.state == "queued"),
                        key=lambda e: (e.not_before > now, TRIGGERS.index(e.trigger),
                                       e.not_before, e.id))
        waiting = []
        for e in queued:
            if e.connection in running:
                held = running[e.connection]
                run = f"run {held.run_id}" if held.run_id else f"entry {held.id}"
                reason = f"waits for {run} of {e.connection} (on {held.worker}) to end"
            elif live_regions is not None and e.region not in live_regions:
                reason = f"no live worker for region {e.region}"
            elif e.not_before > now:
                reason = f"due in {_seconds(e.not_before - now)}"
            elif (full := _blocked(e.connection, resources, used)) is not None:
                reason = (f"waits for a free slot of {full[0]} ({full[1]} run"
                          f"{'s' if full[1] > 1 else ''} at a time)")
            else:
                reason = f"due {_seconds(now - e.not_before)} ago; waits for a free worker"
            waiting.append(Waiting(e, reason))
        return waiting

    @staticmethod
    def _entry(s: Session, entry: int) -> QueueEntry:
        row = s.get(QueueEntry, entry)
        if row is None:
            raise ConfigurationError(f"no queued run {entry}",
                                     fix="see `syncline queue` for the runs queued now")
        return row


def _usage(running: list[str], resources: Mapping[str, tuple[Slot, ...]] | None) -> Counter[str]:
    return Counter(key for c in running for key, _ in (resources or {}).get(c, ()))


def _blocked(connection: str, resources: Mapping[str, tuple[Slot, ...]] | None,
             used: Counter[str]) -> Slot | None:
    """The first resource of `connection` with no free slot, or None."""
    for key, limit in (resources or {}).get(connection, ()):
        if used[key] >= limit:
            return key, limit
    return None


def _seconds(delta: dt.timedelta) -> str:
    s = max(0, round(delta.total_seconds()))
    return f"{s}s" if s < 120 else f"{s // 60}m{s % 60:02d}s"
