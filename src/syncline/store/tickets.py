"""Tickets: the tracker channels following each incident, and the ticket each filed."""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import Engine, select
from sqlalchemy.orm import Session, sessionmaker

from syncline.store.models import Ticket


def follow_in(s: Session, pairs: Iterable[tuple[str, int]]) -> None:
    """(channel, incident): the channel follows the incident from now on (in the caller's
    transaction, with the notification that files its ticket)."""
    for channel, incident in pairs:
        if s.get(Ticket, (channel, incident)) is None:
            s.add(Ticket(channel=channel, incident=incident))


class Tickets:
    def __init__(self, engine: Engine) -> None:
        self._session = sessionmaker(engine, expire_on_commit=False)

    def followers(self, incidents: Iterable[int]) -> dict[int, list[str]]:
        ids = list(set(incidents))
        if not ids:
            return {}
        out: dict[int, list[str]] = {}
        with self._session() as s:
            for t in s.scalars(select(Ticket).where(Ticket.incident.in_(ids)).order_by(Ticket.channel)):
                out.setdefault(t.incident, []).append(t.channel)
        return out

    def ref(self, channel: str, incident: int) -> tuple[str | None, str | None]:
        """(its ticket's ref, url) in `channel`, or (None, None) before it is filed."""
        with self._session() as s:
            t = s.get(Ticket, (channel, incident))
            return (t.ref, t.url) if t is not None else (None, None)

    def filed(self, channel: str, incident: int, ref: str, url: str | None) -> None:
        with self._session.begin() as s:
            t = s.get(Ticket, (channel, incident))
            if t is None:
                s.add(Ticket(channel=channel, incident=incident, ref=ref, url=url))
            else:
                t.ref, t.url = ref, url
