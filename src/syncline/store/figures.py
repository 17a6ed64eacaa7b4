"""The figures metrics are made of, read from the store in a few aggregate queries, so they are
right whichever process or machine ran the runs."""

from __future__ import annotations

import datetime as dt
import json
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session, sessionmaker

from syncline.store.models import Checkpoint, QueueEntry, Run, RunTotal, StreamRun, Worker

SUCCESS = ("succeeded", "warning")
#: run duration buckets, seconds: a second to a day
BUCKETS = (1.0, 5.0, 15.0, 60.0, 300.0, 900.0, 3600.0, 4 * 3600.0, 24 * 3600.0)


LIVE_WORKERS = ("idle", "running")


@dataclass
class Figures:
    #: (connection, region, status) -> (runs, rows read, rows committed, rows quarantined)
    runs: dict[tuple[str, str, str], tuple[int, int, int, int]] = field(default_factory=dict)
    #: (connection, region) -> (ended runs at or under each of BUCKETS seconds, ended runs, their seconds)
    durations: dict[tuple[str, str], tuple[list[int], int, float]] = field(default_factory=dict)
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
        newest: dict[str, tuple[int, str]] = {}  # connection -> (its newest run id, that run's status)
        for t in s.execute(select(  # a few rows per connection, kept as runs end
                RunTotal.connection, RunTotal.region, RunTotal.status, RunTotal.runs,
                RunTotal.rows_read, RunTotal.rows_committed, RunTotal.rows_quarantined,
                RunTotal.attempts, RunTotal.seconds, RunTotal.buckets, RunTotal.last_run,
                RunTotal.last_ended)):
            if t.runs <= 0:
                continue
            conn, region = t.connection, t.region
            out.runs[(conn, region, t.status)] = (t.runs, t.rows_read, t.rows_committed, t.rows_quarantined)
            counts, runs_ended, spent = out.durations.get((conn, region), ([0] * len(BUCKETS), 0, 0.0))
            out.durations[(conn, region)] = (
                [c + u for c, u in zip(counts, json.loads(t.buckets), strict=True)],
                runs_ended + t.runs, spent + max(0.0, t.seconds))
            # a successful run's attempts all failed but its last; a failed run's all did
            failed = t.attempts - (t.runs if t.status in SUCCESS else 0)
            out.failed_attempts[conn] = out.failed_attempts.get(conn, 0) + max(0, failed)
            if t.last_run > newest.get(conn, (0, ""))[0]:
                newest[conn] = (t.last_run, t.status)
            if t.status in SUCCESS and t.last_ended is not None and (
                    conn not in out.last_success or t.last_ended > out.last_success[conn]):
                out.last_success[conn] = t.last_ended
        for conn, region, n, top in s.execute(  # runs going now (not in the totals yet)
                select(Run.connection, Run.region, func.count(), func.max(Run.id))
                .where(Run.status == "running").group_by(Run.connection, Run.region)):
            out.runs[(conn, region, "running")] = (int(n), 0, 0, 0)
            if top > newest.get(conn, (0, ""))[0]:
                newest[conn] = (top, "running")
        out.last_status = {conn: status for conn, (_, status) in newest.items()}
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
        out.lag_bytes = checkpoint_lags(s)
        for region, state, n in s.execute(select(Worker.region, Worker.state, func.count())
                                          .where(Worker.state.in_(LIVE_WORKERS))
                                          .group_by(Worker.region, Worker.state)):
            out.workers[(region, state)] = out.workers.get((region, state), 0) + n
    return out


def checkpoint_lags(s: Session) -> dict[tuple[str, str], int]:
    """(connection, stream) -> the `lag_bytes` of each CDC stream's mirrored checkpoint."""
    out: dict[tuple[str, str], int] = {}
    for conn, stream, text in s.execute(
            select(Checkpoint.connection, Checkpoint.stream, Checkpoint.state_json)
            .where(Checkpoint.state_json.like('%"lag_bytes"%'))):
        lag = checkpoint_lag(json.loads(text))
        if lag is not None:
            out[(conn, stream)] = lag
    return out


def checkpoint_lag(state: Any) -> int | None:
    """The `lag_bytes` a CDC checkpoint holds, wherever in it (the source's part or the top)."""
    if isinstance(state, dict):
        if isinstance(state.get("lag_bytes"), int):
            return int(state["lag_bytes"])
        for value in state.values():
            found = checkpoint_lag(value)
            if found is not None:
                return found
    return None


def count_run(s: Session, run: Run, sign: int) -> None:
    """Add an ended run to its connection's totals (or, -1, take it back: its status changed)."""
    key = (run.connection, run.region or "default", run.status)
    row = s.get(RunTotal, key, with_for_update=True)
    if row is None:
        row = RunTotal(connection=key[0], region=key[1], status=key[2], runs=0, rows_read=0,
                       rows_committed=0, rows_quarantined=0, attempts=0, seconds=0.0,
                       buckets=json.dumps([0] * len(BUCKETS)), last_run=0, last_ended=None)
        s.add(row)
    row.runs += sign
    row.rows_read += sign * (run.rows_read or 0)
    row.rows_committed += sign * (run.rows_committed or 0)
    row.rows_quarantined += sign * (run.rows_quarantined or 0)
    row.attempts += sign * (run.attempts or 0)
    row.seconds += sign * (run.seconds or 0.0)
    row.buckets = json.dumps([n + (sign if run.seconds is not None and run.seconds <= b else 0)
                              for n, b in zip(json.loads(row.buckets), BUCKETS, strict=True)])
    if sign > 0:
        row.last_run = max(row.last_run, run.id)
        if run.ended_at is not None and (row.last_ended is None or run.ended_at > row.last_ended):
            row.last_ended = run.ended_at


def last_successes(engine: Engine, connection: str, since: dt.datetime) -> list[tuple[dt.datetime, dt.datetime]]:
    """(started, ended) of the connection's successful runs that ended since `since`, and of
    the last one before it, oldest first."""
    ok = (Run.connection == connection, Run.status.in_(SUCCESS), Run.ended_at.is_not(None))
    with sessionmaker(engine)() as s:
        recent = s.execute(select(Run.started_at, Run.ended_at).where(*ok, Run.ended_at >= since)
                           .order_by(Run.ended_at)).all()
        before = s.execute(select(Run.started_at, Run.ended_at).where(*ok, Run.ended_at < since)
                           .order_by(Run.ended_at.desc()).limit(1)).all()
    return [(a, b) for a, b in [*before, *recent] if b is not None]

def stream_snapshots(engine: Engine, connection: str) -> dict[str, dt.datetime]:
    """When the read of each stream's last successful load began (its run's start)."""
    with sessionmaker(engine)() as s:
        rows = s.execute(select(StreamRun.stream, func.max(Run.started_at))
                         .join(Run, Run.id == StreamRun.run_id)
                         .where(Run.connection == connection, StreamRun.status == "succeeded")
                         .group_by(StreamRun.stream)).all()
    return {stream: at for stream, at in rows if at is not None}
