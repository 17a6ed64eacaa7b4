"""Silences: a person's "not now" for a connection, a rule, or a rule for one connection. The
rules keep judging while silenced (`syncline alerts` still says firing); only telling waits."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Engine, select
from sqlalchemy.orm import sessionmaker

from syncline.store.leases import who
from syncline.store.models import Silence


@dataclass(frozen=True)
class SilenceRecord:
    id: int
    connection: str | None
    rule: str | None
    starts: dt.datetime
    ends: dt.datetime
    reason: str
    created_by: str

    def active(self, now: dt.datetime) -> bool:
        return self.starts <= now < self.ends

    def covers(self, rule: str, connection: str | None) -> bool:
        return (self.rule is None or self.rule == rule) and \
            (self.connection is None or self.connection == connection)

    def to_json(self, now: dt.datetime) -> dict[str, Any]:
        return {"id": self.id, "connection": self.connection, "rule": self.rule,
                "starts": self.starts.isoformat(), "ends": self.ends.isoformat(),
                "reason": self.reason, "created_by": self.created_by, "active": self.active(now)}


def _record(r: Silence) -> SilenceRecord:
    return SilenceRecord(r.id, r.connection, r.rule, r.starts, r.ends, r.reason, r.created_by)


class Silences:
    def __init__(self, engine: Engine) -> None:
        self._session = sessionmaker(engine, expire_on_commit=False)

    def add(self, *, connection: str | None, rule: str | None, starts: dt.datetime,
            ends: dt.datetime, reason: str) -> SilenceRecord:
        with self._session.begin() as s:
            row = Silence(connection=connection, rule=rule, starts=starts, ends=ends,
                          reason=reason, created_by=who())
            s.add(row)
            s.flush()
            return _record(row)

    def active(self, now: dt.datetime) -> list[SilenceRecord]:
        with self._session() as s:
            return [_record(r) for r in s.scalars(select(Silence).where(Silence.starts <= now,
                                                                        Silence.ends > now))]

    def list(self, now: dt.datetime, include_ended: bool = False) -> list[SilenceRecord]:
        q = select(Silence).order_by(Silence.id)
        if not include_ended:
            q = q.where(Silence.ends > now)
        with self._session() as s:
            return [_record(r) for r in s.scalars(q)]

    def expire(self, silence_id: int, now: dt.datetime) -> SilenceRecord | None:
        """End a silence now; None when there is no such silence."""
        with self._session.begin() as s:
            row = s.get(Silence, silence_id)
            if row is None:
                return None
            if row.ends > now:
                row.ends = max(now, row.starts)
            return _record(row)
