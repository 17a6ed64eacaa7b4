"""What alert signals are computed from, in a few aggregate queries whatever the number of
connections: each connection's newest decisive run, its last success, since when it is down,
the rows of its newest ended run, the due queue, and CDC slot lag."""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass, field

from sqlalchemy import Engine, and_, func, or_, select
from sqlalchemy.orm import sessionmaker

from syncline.store.figures import checkpoint_lag, checkpoint_lags
from syncline.store.models import EventRow, QueueEntry, Run, RunTotal, StreamRun

SUCCESS = ("succeeded", "warning")
FAILED = ("failed", "partial", "crashed")
CHUNK = 200


@dataclass
class Health:
    #: connection -> the status of its newest succeeded, warning, failed, partial or crashed run
    decided: dict[str, str] = field(default_factory=dict)
    #: connection -> (started, ended) of its newest successful run
    last_ok: dict[str, tuple[dt.datetime, dt.datetime]] = field(default_factory=dict)
    #: a failing connection -> when its first failed run after its last success ended
    down_since: dict[str, dt.datetime] = field(default_factory=dict)
    #: connection -> (rows read, rows quarantined) of its newest decided run
    last_rows: dict[str, tuple[int, int]] = field(default_factory=dict)
    #: a failing connection -> (failure class, message) of its newest run
    last_failure: dict[str, tuple[str, str]] = field(default_factory=dict)
    #: queued runs already due, and the due time of the one waiting longest
    queued_due: int = 0
    oldest_due: dt.datetime | None = None
    #: (connection, stream) -> a CDC stream's replication lag in bytes at its last checkpoint
    lag_bytes: dict[tuple[str, str], int] = field(default_factory=dict)
    #: the newest decided run of any connection: what changed since a look, in one number
    newest_run: int = 0
    #: connection -> the mean seconds of its successful runs
    typical_s: dict[str, float] = field(default_factory=dict)
    #: an API connection -> the lowest share of its rate limit left (percent) its newest run saw
    rate_left: dict[str, float] = field(default_factory=dict)


#: connection -> (the newest decided run id, when it went down): what `read_health` found
#: before, so that a caller evaluating every second asks only of connections with a new run
DownCache = dict[str, tuple[int, dt.datetime]]


def read_health(engine: Engine, now: dt.datetime, cache: DownCache | None = None) -> Health:
    out = Health()
    cache = {} if cache is None else cache
    with sessionmaker(engine)() as s:
        newest: dict[str, tuple[int, str]] = {}
        ok_ids: dict[str, int] = {}
        spent: dict[str, tuple[float, int]] = {}
        for conn, status, last, seconds, runs in s.execute(
                select(RunTotal.connection, RunTotal.status, func.max(RunTotal.last_run),
                       func.sum(RunTotal.seconds), func.sum(RunTotal.runs))
                .where(RunTotal.status.in_((*SUCCESS, *FAILED)), RunTotal.runs > 0)
                .group_by(RunTotal.connection, RunTotal.status)):
            if status in SUCCESS:
                was = spent.get(conn, (0.0, 0))
                spent[conn] = (was[0] + float(seconds or 0), was[1] + int(runs or 0))
            if last > newest.get(conn, (0, ""))[0]:
                newest[conn] = (last, status)
            if status in SUCCESS and last > ok_ids.get(conn, 0):
                ok_ids[conn] = last
        out.decided = {c: st for c, (_, st) in newest.items()}
        out.newest_run = max((i for i, _ in newest.values()), default=0)
        out.typical_s = {c: total / n for c, (total, n) in spent.items() if n}
        ids = [i for i, _ in newest.values()] + list(ok_ids.values())
        rows: dict[int, tuple[str, dt.datetime, dt.datetime | None, int, int]] = {}
        for start in range(0, len(ids), CHUNK):
            for r in s.execute(select(Run.id, Run.connection, Run.started_at, Run.ended_at,
                                      Run.rows_read, Run.rows_quarantined, Run.status,
                                      Run.failure_class, Run.failure_message)
                               .where(Run.id.in_(ids[start:start + CHUNK]))):
                rows[r.id] = (r.connection, r.started_at, r.ended_at, r.rows_read or 0,
                              r.rows_quarantined or 0)
                if r.status in FAILED:
                    out.last_failure[r.connection] = (r.failure_class or "internal",
                                                      r.failure_message or "")
        for conn, run_id in ok_ids.items():
            if run_id in rows and rows[run_id][2] is not None:
                ended = rows[run_id][2]
                assert ended is not None
                out.last_ok[conn] = (rows[run_id][1], ended)
        for conn, (run_id, _) in newest.items():
            if run_id in rows:
                out.last_rows[conn] = (rows[run_id][3], rows[run_id][4])
        newest_ids = [i for i, _ in newest.values()]
        for start in range(0, len(newest_ids), CHUNK):
            for run_id, text in s.execute(
                    select(StreamRun.run_id, StreamRun.requests)
                    .where(StreamRun.run_id.in_(newest_ids[start:start + CHUNK]),
                           StreamRun.requests.like('%rate_limit_left%'))):
                left = json.loads(text or "{}").get("rate_limit_left")
                if isinstance(left, (int, float)) and run_id in rows:
                    owner = rows[run_id][0]
                    out.rate_left[owner] = min(float(left), out.rate_left.get(owner, 100.0))
        failing = sorted(c for c, st in out.decided.items() if st in FAILED)
        for conn in [c for c in cache if c not in failing]:
            del cache[conn]
        for conn in failing:
            if conn in cache and cache[conn][0] == newest[conn][0]:
                out.down_since[conn] = cache[conn][1]
        failing = [c for c in failing if c not in out.down_since]
        for start in range(0, len(failing), CHUNK):
            part = failing[start:start + CHUNK]
            for conn, since in s.execute(
                    select(Run.connection, func.min(Run.ended_at))
                    .where(Run.status.in_(FAILED),
                           or_(*(and_(Run.connection == c, Run.id > ok_ids.get(c, 0)) for c in part)))
                    .group_by(Run.connection)):
                if since is not None:
                    out.down_since[conn] = since
                    cache[conn] = (newest[conn][0], since)
        count, oldest = s.execute(select(func.count(), func.min(QueueEntry.not_before))
                                  .where(QueueEntry.state == "queued",
                                         QueueEntry.not_before <= now)).one()
        out.queued_due, out.oldest_due = int(count or 0), oldest
        out.lag_bytes = checkpoint_lags(s)
    return out


def lag_history(engine: Engine, since: dt.datetime) -> dict[tuple[str, str], list[tuple[dt.datetime, int]]]:
    """(connection, stream) -> a CDC stream's replication lag at each of its runs' ends since
    `since`, oldest first (from `stream.finished` events: their checkpoints hold it)."""
    out: dict[tuple[str, str], list[tuple[dt.datetime, int]]] = {}
    with sessionmaker(engine)() as s:
        for conn, stream, at, body in s.execute(
                select(EventRow.connection, EventRow.stream, EventRow.time, EventRow.body)
                .where(EventRow.kind == "stream.finished", EventRow.time >= since,
                       EventRow.body.like('%lag_bytes%')).order_by(EventRow.id)):
            window = json.loads(body).get("window") or {}
            lag = checkpoint_lag(window.get("to"))
            if conn is not None and stream is not None and lag is not None:
                out.setdefault((conn, stream), []).append((at, lag))
    return out
