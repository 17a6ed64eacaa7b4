"""Where the scheduler is for each connection: the schedule it follows, when the connection is
next due, the due time it last queued and the queue entry that stands for it."""

from __future__ import annotations

import datetime as dt
from collections.abc import Container, Iterable
from dataclasses import dataclass

from sqlalchemy import Engine, delete, insert, select
from sqlalchemy.orm import sessionmaker

from syncline.store.models import Base, ScheduleState


@dataclass(frozen=True)
class Due:
    connection: str
    schedule: str
    next_due_at: dt.datetime
    last_due_at: dt.datetime | None = None
    last_entry: int | None = None


class ScheduleStates:
    def __init__(self, engine: Engine) -> None:
        self._session = sessionmaker(engine, expire_on_commit=False)

    def load(self) -> dict[str, Due]:
        with self._session() as s:  # core rows, not ORM objects: thousands each tick
            return {r.connection: Due(r.connection, r.schedule, r.next_due_at, r.last_due_at,
                                      r.last_entry)
                    for r in s.execute(select(*ScheduleState.__table__.c))}

    def save(self, changed: Iterable[Due], dropped: Iterable[str] = (),
             stored: Container[str] | None = None) -> None:
        """Write what one tick changed, in one transaction; `stored`: the connections that
        have a row now (None: unknown), whose rows are replaced."""
        changed, dropped = list(changed), list(dropped)
        if not changed and not dropped:
            return
        latest = {d.connection: d for d in changed}  # the last word on each connection
        gone = [*dropped, *(n for n in latest if stored is None or n in stored)]
        with self._session.begin() as s:
            for start in range(0, len(gone), 500):
                s.execute(delete(ScheduleState).where(
                    ScheduleState.connection.in_(gone[start:start + 500])))
            if latest:  # core, not the ORM's bulk path: thousands of rows in one statement
                s.connection().execute(insert(Base.metadata.tables[ScheduleState.__tablename__]), [
                    {"connection": d.connection, "schedule": d.schedule, "next_due_at": d.next_due_at,
                     "last_due_at": d.last_due_at, "last_entry": d.last_entry} for d in latest.values()])
