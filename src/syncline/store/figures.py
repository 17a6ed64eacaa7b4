"""The figures metrics are made of, read from the store in a few aggregate queries, so they are
right whichever process or machine ran the runs."""

from __future__ import annotations

import datetime as dt
import json
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Engine, func, select
from sqlalchemy.orm import sessionmaker

from syncline.store.models import Attempt, Checkpoint, QueueEntry, Run, StreamRun, Worker

SUCCESS = ("succeeded", "warning")
LIVE_WORKERS = ("idle", "running")


@dataclass
class Figures:
    #: (connection, region, status) -> (runs, rows read, rows committed, rows quarantined)
    runs: dict[tuple[str, str, str], tuple[int, int, int, int]] = field(default_factory=dict)
    #: (connection, region) -> seconds of each ended run
    durations: dict[tuple[str, str], list[float]] = field(default_factory=dict)
    last_status: dict[str, str] = field(default_factory=dict)
    last_success: dict[str, dt.datetime] = field(default_factory=dict)
    failed_attempts: dict[str, int] = field(default_factory=dict)
    #: region -> (queued, oldest queued at, running)
    queue: dict[str, tuple[int, dt.datetime | None, int]] = field(default_factory=dict)
    #: (region, state) -> workers
    workers: dict[tuple[str, str], int] = field(default_factory=dict)
    #: (connection, region) -> an API source's requests: by status, and seconds waited
    requests: dict[tuple[str, str], Counter[str]] = field(default_factory=dict)
    waits: dict[tuple[str, str], tuple[float, float]] = field(default_factory=dict)
    #: (connection, stream) -> a CDC stream's replication lag in bytes at its last checkpoint
    lag_bytes: dict[tuple[str, str], int] = field(default_factory=dict)


def read(engine: Engine) -> Figures:
    out = Figures()
    with sessionmaker(engine)() as s:
        for conn, region, status, n, read_, committed, quarantined in s.execute(
                select(Run.connection, Run.region, Run.status, func.count(),
                       func.coalesce(func.sum(Run.rows_read), 0),
                       func.coalesce(func.sum(Run.rows_committed), 0),
                       func.coalesce(func.sum(Run.rows_quarantined), 0))
                .group_by(Run.connection, Run.region, Run.status)):
            out.runs[(conn, region, status)] = (n, int(read_), int(committed), int(quarantined))
        for conn, region, started, ended in s.execute(
                select(Run.connection, Run.region, Run.started_at, Run.ended_at)
                .where(Run.ended_at.is_not(None))):
            if ended is not None:
                seconds = max(0.0, (ended - started).total_seconds())
                out.durations.setdefault((conn, region), []).append(seconds)
        newest = select(func.max(Run.id)).group_by(Run.connection).scalar_subquery()
        out.last_status = dict(s.execute(select(Run.connection, Run.status).where(Run.id.in_(newest)))
                               .all())
        out.last_success = {c: t for c, t in s.execute(
            select(Run.connection, func.max(Run.ended_at)).where(Run.status.in_(SUCCESS))
            .group_by(Run.connection)) if t is not None}
        out.failed_attempts = dict(s.execute(
            select(Run.connection, func.count()).join(Attempt, Attempt.run_id == Run.id)
            .where(Attempt.status == "failed").group_by(Run.connection)).all())
        queued = {r: (n, oldest) for r, n, oldest in s.execute(
            select(QueueEntry.region, func.count(), func.min(QueueEntry.queued_at))
            .where(QueueEntry.state == "queued").group_by(QueueEntry.region))}
        running = dict(s.execute(select(QueueEntry.region, func.count())
                                 .where(QueueEntry.state == "claimed").group_by(QueueEntry.region))
                       .all())
        for region in {*queued, *running}:
            n, oldest = queued.get(region, (0, None))
            out.queue[region] = (n, oldest, running.get(region, 0))
        for conn, region, text in s.execute(
                select(Run.connection, Run.region, StreamRun.requests)
                .join(StreamRun, StreamRun.run_id == Run.id).where(StreamRun.requests.is_not(None))):
            figures = json.loads(text or "{}")
            out.requests.setdefault((conn, region), Counter()).update(figures.get("statuses") or {})
            retry, limited = out.waits.get((conn, region), (0.0, 0.0))
            out.waits[(conn, region)] = (retry + float(figures.get("retry_wait_s") or 0),
                                         limited + float(figures.get("rate_limit_wait_s") or 0))
        for conn, stream, text in s.execute(
                select(Checkpoint.connection, Checkpoint.stream, Checkpoint.state_json)
                .where(Checkpoint.state_json.like('%"lag_bytes"%'))):
            lag = _lag(json.loads(text))
            if lag is not None:
                out.lag_bytes[(conn, stream)] = lag
        for region, state, n in s.execute(select(Worker.region, Worker.state, func.count())
                                          .where(Worker.state.in_(LIVE_WORKERS))
                                          .group_by(Worker.region, Worker.state)):
            out.workers[(region, state)] = out.workers.get((region, state), 0) + n
    return out


def _lag(state: Any) -> int | None:
    """The `lag_bytes` a CDC checkpoint holds, wherever in it (the source's part or the top)."""
    if isinstance(state, dict):
        if isinstance(state.get("lag_bytes"), int):
            return int(state["lag_bytes"])
        for value in state.values():
            found = _lag(value)
            if found is not None:
                return found
    return None
