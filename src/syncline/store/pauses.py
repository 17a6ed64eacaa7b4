"""Paused connections: the scheduler queues no run of them until they are resumed. A pause is
runtime state, kept apart from config revisions, so applying a file never un-pauses."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sqlalchemy import Engine, select
from sqlalchemy.orm import sessionmaker

from syncline.store.leases import now_utc, who
from syncline.store.models import Pause


@dataclass(frozen=True)
class Paused:
    connection: str
    paused_at: dt.datetime
    paused_by: str


class Pauses:
    def __init__(self, engine: Engine) -> None:
        self._session = sessionmaker(engine, expire_on_commit=False)

    def pause(self, connection: str) -> tuple[Paused, bool]:
        """(the pause, whether it is new: pausing twice keeps the first)."""
        with self._session.begin() as s:
            row = s.get(Pause, connection)
            created = row is None
            if row is None:
                row = Pause(connection=connection, paused_at=now_utc(), paused_by=who())
                s.add(row)
            return Paused(row.connection, row.paused_at, row.paused_by), created

    def resume(self, connection: str) -> Paused | None:
        """The pause lifted, or None when the connection was not paused."""
        with self._session.begin() as s:
            row = s.get(Pause, connection)
            if row is None:
                return None
            s.delete(row)
            return Paused(row.connection, row.paused_at, row.paused_by)

    def all(self) -> dict[str, Paused]:
        with self._session() as s:
            return {r.connection: Paused(r.connection, r.paused_at, r.paused_by)
                    for r in s.scalars(select(Pause))}
