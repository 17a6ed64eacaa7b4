"""The outbox table: notifications written before they are sent, and what became of each.

A notification is keyed by (channel, key): putting the same key again for the same channel
is a no-op, so an evaluator that restarts and decides again never queues a second copy.
Each channel's notifications leave in the order they were put: `heads` offers a channel's
oldest pending ones only once the first of them is due.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Engine, func, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session, sessionmaker

from syncline.store.models import Base, OutboxRow

_TABLE = Base.metadata.tables[OutboxRow.__tablename__]
STATUSES = ("pending", "delivered", "failed")


@dataclass(frozen=True)
class OutboxEntry:
    id: int
    channel: str
    key: str
    kind: str
    created: dt.datetime
    payload: dict[str, Any]
    status: str
    attempts: int
    next_at: dt.datetime
    last_tried: dt.datetime | None
    last_error: str | None
    delivered_at: dt.datetime | None

    def to_json(self) -> dict[str, Any]:
        def when(t: dt.datetime | None) -> str | None:
            return t.isoformat().replace("+00:00", "Z") if t else None

        return {"id": self.id, "channel": self.channel, "key": self.key, "kind": self.kind,
                "created": when(self.created), "status": self.status, "attempts": self.attempts,
                "next_at": when(self.next_at) if self.status == "pending" else None,
                "last_tried": when(self.last_tried), "last_error": self.last_error,
                "delivered_at": when(self.delivered_at), "payload": self.payload}


def _entry(r: OutboxRow) -> OutboxEntry:
    return OutboxEntry(r.id, r.channel, r.key, r.kind, r.created, json.loads(r.payload), r.status,
                       r.attempts, r.next_at, r.last_tried, r.last_error, r.delivered_at)


class Outbox:
    def __init__(self, engine: Engine) -> None:
        self._session = sessionmaker(engine, expire_on_commit=False)

    def put(self, items: Iterable[tuple[str, str, str, dict[str, Any]]], now: dt.datetime) -> int:
        """Queue (channel, key, kind, payload) items in this order; those whose (channel, key)
        is already in the outbox are skipped. How many were queued."""
        with self._session.begin() as s:
            return put_in(s, items, now)

    def has_key(self, key: str, channels: Iterable[str]) -> bool:
        """Whether a notification with this id was ever queued for one of `channels`."""
        with self._session() as s:
            return s.scalar(select(OutboxRow.id).where(OutboxRow.channel.in_(list(channels)),
                                                       OutboxRow.key == key).limit(1)) is not None

    def heads(self, now: dt.datetime, limit: int = 100) -> dict[str, list[OutboxEntry]]:
        """For each channel whose oldest pending notification is due: up to `limit` of its
        pending ones, oldest first."""
        with self._session() as s:
            firsts = list(s.execute(select(OutboxRow.channel, func.min(OutboxRow.id))
                                    .where(OutboxRow.status == "pending")
                                    .group_by(OutboxRow.channel)))
            if not firsts:
                return {}
            due = {c for c, t in s.execute(select(OutboxRow.channel, OutboxRow.next_at).where(
                OutboxRow.id.in_([i for _, i in firsts]))) if t <= now}
            out: dict[str, list[OutboxEntry]] = {}
            for channel, first in firsts:
                if channel in due:
                    q = (select(OutboxRow).where(OutboxRow.status == "pending",
                                                 OutboxRow.channel == channel, OutboxRow.id >= first)
                         .order_by(OutboxRow.id).limit(limit))
                    out[channel] = [_entry(r) for r in s.scalars(q)]
            return out

    def delivered(self, ids: Sequence[int], now: dt.datetime) -> None:
        """Acknowledge deliveries (several in one write)."""
        if ids:
            with self._session.begin() as s:
                s.execute(update(OutboxRow).where(OutboxRow.id.in_(list(ids)),
                                                  OutboxRow.status == "pending")
                          .values(status="delivered", delivered_at=now, last_tried=now,
                                  attempts=OutboxRow.attempts + 1))

    def retry(self, entry_id: int, error: str, now: dt.datetime, at: dt.datetime) -> None:
        """A try failed: try again at `at`."""
        with self._session.begin() as s:
            s.execute(update(OutboxRow).where(OutboxRow.id == entry_id, OutboxRow.status == "pending")
                      .values(last_error=error, last_tried=now, next_at=at,
                              attempts=OutboxRow.attempts + 1))

    def failed(self, entry_id: int, error: str, now: dt.datetime, tried: bool = True) -> None:
        """Given up: the receiver refused it, or its retry window is over."""
        with self._session.begin() as s:
            s.execute(update(OutboxRow).where(OutboxRow.id == entry_id, OutboxRow.status == "pending")
                      .values(status="failed", last_error=error, last_tried=now,
                              attempts=OutboxRow.attempts + (1 if tried else 0)))

    def read(self, *, status: str | None = None, channel: str | None = None,
             limit: int = 50) -> list[OutboxEntry]:
        """The newest `limit` notifications (of `status`, of `channel`), newest first."""
        q = select(OutboxRow)
        if status is not None:
            q = q.where(OutboxRow.status == status)
        if channel is not None:
            q = q.where(OutboxRow.channel == channel)
        with self._session() as s:
            return [_entry(r) for r in s.scalars(q.order_by(OutboxRow.id.desc()).limit(limit))]

    def counts(self) -> dict[tuple[str, str], int]:
        """(channel, status) -> notifications."""
        with self._session() as s:
            return {(c, st): int(n) for c, st, n in s.execute(
                select(OutboxRow.channel, OutboxRow.status, func.count())
                .group_by(OutboxRow.channel, OutboxRow.status))}


def put_in(s: Session, items: Iterable[tuple[str, str, str, dict[str, Any]]],
           now: dt.datetime) -> int:
    """`Outbox.put` inside the caller's transaction (an alert's state and its notifications
    are written together or not at all)."""
    rows: list[dict[str, Any]] = [{"channel": c, "key": k, "kind": kind, "created": now,
                                   "status": "pending", "attempts": 0, "next_at": now,
                                   "payload": json.dumps(p, sort_keys=True, default=str)}
                                  for c, k, kind, p in items]
    if not rows:
        return 0
    dialect = s.get_bind().dialect.name
    if dialect not in ("postgresql", "sqlite"):
        raise NotImplementedError(f"the outbox needs SQLite or PostgreSQL, not {dialect}")
    known: set[tuple[str, str]] = set()
    keys = sorted({str(r["key"]) for r in rows})
    channels = sorted({str(r["channel"]) for r in rows})
    for start in range(0, len(keys), 500):
        known |= {(c, k) for c, k in s.execute(
            select(OutboxRow.channel, OutboxRow.key).where(
                OutboxRow.channel.in_(channels), OutboxRow.key.in_(keys[start:start + 500])))}
    fresh = []
    for r in rows:
        if (r["channel"], r["key"]) not in known:
            known.add((r["channel"], r["key"]))
            fresh.append(r)
    if fresh:
        maker = postgresql.insert if dialect == "postgresql" else sqlite.insert
        s.execute(maker(_TABLE).on_conflict_do_nothing(index_elements=["channel", "key"]), fresh)
    return len(fresh)
