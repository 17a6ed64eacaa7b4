"""Retention: what the store forgets, and when (`retention:`, default 90 days).

Events, run logs, runs (with their attempts and stream stats), ended queue entries and sent or
failed notifications and ended silences older than the retention are deleted by `syncline store vacuum` and,
every hour, by `syncline up`'s leading scheduler. Each connection's newest run and newest successful run are kept
whatever their age: `status` still says when a connection last succeeded.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import CursorResult, Delete, Engine, delete, func, select
from sqlalchemy.orm import Session, sessionmaker

from syncline.store.models import (
    Attempt,
    EventRow,
    OutboxRow,
    QueueEntry,
    Run,
    RunLogRow,
    Silence,
    StreamRun,
)

DEFAULT = "90d"
SUCCESS = ("succeeded", "warning")
CHUNK = 500


def _deleted(s: Session, statement: Delete) -> int:
    result: CursorResult[Any] = s.execute(statement)  # type: ignore[assignment]
    return int(result.rowcount)


def vacuum(engine: Engine, cutoff: dt.datetime) -> dict[str, int]:
    """Delete what ended before `cutoff`; rows deleted per table."""
    session = sessionmaker(engine)
    with session.begin() as s:
        keep = set(s.scalars(select(func.max(Run.id)).group_by(Run.connection)))
        keep |= set(s.scalars(select(func.max(Run.id)).where(Run.status.in_(SUCCESS))
                              .group_by(Run.connection)))
        old = [r for r in s.scalars(select(Run.id).where(Run.ended_at < cutoff)) if r not in keep]
        counts = {"runs": 0, "attempts": 0, "stream_runs": 0}
        for start in range(0, len(old), CHUNK):
            ids = old[start:start + CHUNK]
            counts["stream_runs"] += _deleted(s, delete(StreamRun).where(StreamRun.run_id.in_(ids)))
            counts["attempts"] += _deleted(s, delete(Attempt).where(Attempt.run_id.in_(ids)))
            counts["runs"] += _deleted(s, delete(Run).where(Run.id.in_(ids)))
        counts["run_logs"] = _deleted(s, delete(RunLogRow).where(
            RunLogRow.time < cutoff, RunLogRow.run_id.not_in(keep) if keep else RunLogRow.id > 0))
        counts["events"] = _deleted(s, delete(EventRow).where(EventRow.time < cutoff))
        counts["run_queue"] = _deleted(s, delete(QueueEntry).where(
            QueueEntry.state.in_(("done", "lost", "cancelled")), QueueEntry.ended_at < cutoff))
        counts["outbox"] = _deleted(s, delete(OutboxRow).where(
            OutboxRow.status.in_(("delivered", "failed")), OutboxRow.created < cutoff))
        counts["silences"] = _deleted(s, delete(Silence).where(Silence.ends < cutoff))
    return counts
