"""The worker registry: every worker process says who and where it is, beats every few
seconds, and says what it runs; one that stops beating is marked lost."""

from __future__ import annotations

import datetime as dt
import os
import socket
from dataclasses import dataclass

from sqlalchemy import Engine, select
from sqlalchemy.orm import sessionmaker

from syncline.store.leases import now_utc
from syncline.store.models import Worker

LIVE = ("idle", "running")


@dataclass(frozen=True)
class WorkerRecord:
    name: str
    host: str
    pid: int
    region: str
    queue: str
    state: str
    started_at: dt.datetime
    heartbeat_at: dt.datetime
    run_id: int | None
    connection: str | None
    note: str | None


def _record(w: Worker) -> WorkerRecord:
    return WorkerRecord(w.name, w.host, w.pid, w.region, w.queue, w.state, w.started_at,
                        w.heartbeat_at, w.run_id, w.connection, w.note)


class Workers:
    def __init__(self, engine: Engine) -> None:
        self._session = sessionmaker(engine, expire_on_commit=False)

    def register(self, name: str, region: str = "default", queue: str = "store") -> None:
        now = now_utc()
        with self._session.begin() as s:
            s.merge(Worker(name=name, host=socket.gethostname(), pid=os.getpid(), region=region,
                           queue=queue, state="idle", started_at=now, heartbeat_at=now,
                           run_id=None, connection=None, note=None))

    def beat(self, name: str, *, connection: str | None = None, run_id: int | None = None,
             running: bool | None = None) -> None:
        """A heartbeat; with `running`, also what the worker runs now (False: nothing)."""
        with self._session.begin() as s:
            w = s.get(Worker, name)
            if w is None:
                return
            w.heartbeat_at = now_utc()
            if running is not None:
                w.state = "running" if running else "idle"
                w.connection, w.run_id = (connection, run_id) if running else (None, None)

    def ended(self, name: str, state: str, note: str | None = None) -> None:
        """The worker stopped (`stopped`), died (`crashed`) or went silent (`lost`)."""
        with self._session.begin() as s:
            w = s.get(Worker, name)
            if w is not None:
                w.state, w.note, w.connection, w.run_id = state, note, None, None

    def silent(self, timeout: dt.timedelta, now: dt.datetime | None = None) -> list[WorkerRecord]:
        """Live workers whose last heartbeat is older than `timeout`."""
        now = now or now_utc()
        with self._session() as s:
            return [_record(w) for w in s.scalars(select(Worker).where(
                Worker.state.in_(LIVE), Worker.heartbeat_at < now - timeout))]

    def live_regions(self) -> set[str]:
        """The regions whose runs a live worker takes (a `sync` in a shell takes none)."""
        return {r for w in self.list() if w.queue != "inline" for r in w.region.split(",")}

    def list(self, include_ended: bool = False) -> list[WorkerRecord]:
        q = select(Worker).order_by(Worker.started_at, Worker.name)
        if not include_ended:
            q = q.where(Worker.state.in_(LIVE))
        with self._session() as s:
            return [_record(w) for w in s.scalars(q)]
