"""Failures in the store: grouped by the root-cause signature each keeps
(failure_signature.py), in the database; and those recorded before signatures were."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import Engine, func, select, union_all
from sqlalchemy.orm import sessionmaker

from syncline.store.models import Attempt, Run, StreamRun

#: (signature, runs, first seen, last seen, newest run, connections, its class and message)
FailureGroupRow = tuple[str, int, dt.datetime, dt.datetime, int, list[str], str, str]


def failure_groups(engine: Engine, since: dt.datetime) -> list[FailureGroupRow]:
    """Failures since `since` grouped by their kept signature, in the database: (signature,
    runs, first seen, last seen, newest run, connections, its class and message)."""
    failed = union_all(
        select(Attempt.run_id.label("run"), Run.connection.label("connection"),
               Attempt.started_at.label("at"), Attempt.signature.label("signature"),
               Attempt.failure_class.label("cls"), Attempt.failure_message.label("msg"))
        .join(Run, Run.id == Attempt.run_id)
        .where(Attempt.status == "failed", Attempt.started_at >= since, Attempt.signature.is_not(None)),
        select(StreamRun.run_id, Run.connection, StreamRun.started_at, StreamRun.signature,
               Run.failure_class, StreamRun.message)
        .join(Run, Run.id == StreamRun.run_id)
        .where(StreamRun.status == "failed", StreamRun.started_at >= since,
               StreamRun.signature.is_not(None))).subquery()
    with sessionmaker(engine)() as s:
        groups = s.execute(select(failed.c.signature, func.count(func.distinct(failed.c.run)),
                                  func.min(failed.c.at), func.max(failed.c.at), func.max(failed.c.run))
                           .group_by(failed.c.signature)).all()
        affected: dict[str, list[str]] = {}
        for key, conn in s.execute(select(failed.c.signature, failed.c.connection).distinct()):
            affected.setdefault(key, []).append(conn)
        out = []
        for key, runs, first, last, newest in groups:
            cls, msg = s.execute(select(failed.c.cls, failed.c.msg).where(
                failed.c.signature == key, failed.c.run == newest).limit(1)).one()
            out.append((key, int(runs), _aware(first), _aware(last), int(newest),
                        sorted(affected.get(key, [])), cls or "internal", msg or ""))
    return out

def unsigned_failures(engine: Engine, since: dt.datetime) -> list[tuple[int, str, dt.datetime, str, str]]:
    """(run, connection, when, failure class, message) of every failed attempt and every
    stream that failed alone since `since` kept without a signature (recorded before
    signatures were), oldest first."""
    with sessionmaker(engine)() as s:
        attempts = s.execute(
            select(Attempt.run_id, Run.connection, func.coalesce(Attempt.ended_at, Attempt.started_at),
                   Attempt.failure_class, Attempt.failure_message)
            .join(Run, Run.id == Attempt.run_id)
            .where(Attempt.status == "failed", Attempt.started_at >= since,
                   Attempt.signature.is_(None))).all()
        streams = s.execute(
            select(StreamRun.run_id, Run.connection, StreamRun.ended_at, Run.failure_class,
                   StreamRun.message)
            .join(Run, Run.id == StreamRun.run_id)
            .where(StreamRun.status == "failed", StreamRun.started_at >= since,
                   StreamRun.signature.is_(None))).all()
    rows = [(r, c, t, fc or "internal", m or "") for r, c, t, fc, m in [*attempts, *streams]]
    return sorted(rows, key=lambda row: row[2])


def _aware(moment: Any) -> dt.datetime:
    """A timestamp read through a union (no column type): timezone-aware UTC."""
    found: dt.datetime = dt.datetime.fromisoformat(moment) if isinstance(moment, str) else moment
    return found if found.tzinfo else found.replace(tzinfo=dt.UTC)
