"""Alert rule states and event rules' cursors; a rule's state changes are written in one
transaction with the notifications they cause, so a crash never loses or doubles one."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Engine, delete, func, select
from sqlalchemy.orm import sessionmaker

from syncline.store.models import AlertCursor, AlertState
from syncline.store.outbox import put_in
from syncline.store.tickets import follow_in


@dataclass(frozen=True)
class StateRecord:
    rule: str
    subject: str
    state: str  # pending | firing
    since: dt.datetime
    fired_at: dt.datetime | None
    value: float
    last_notified: dt.datetime | None
    told: int
    group_key: str = ""


@dataclass
class Changes:
    upsert: list[StateRecord] = field(default_factory=list)
    delete: list[tuple[str, str]] = field(default_factory=list)
    cursors: dict[str, int] = field(default_factory=dict)
    #: (channel, key, kind, payload) for the outbox
    notifications: list[tuple[str, str, str, dict[str, Any]]] = field(default_factory=list)
    #: (tracker channel, incident): the channel follows the incident from now on
    follows: list[tuple[str, int]] = field(default_factory=list)

    def __bool__(self) -> bool:
        return bool(self.upsert or self.delete or self.cursors or self.notifications or self.follows)


class AlertStates:
    def __init__(self, engine: Engine) -> None:
        self._session = sessionmaker(engine, expire_on_commit=False)

    def all(self) -> dict[tuple[str, str], StateRecord]:
        t = AlertState
        with self._session() as s:
            return {(r[0], r[1]): StateRecord(*r) for r in s.execute(select(
                t.rule, t.subject, t.state, t.since, t.fired_at, t.value, t.last_notified, t.told,
                t.group_key))}

    def counts(self) -> dict[tuple[str, str], int]:
        """(rule, state) -> subjects."""
        with self._session() as s:
            return {(r, st): int(n) for r, st, n in s.execute(
                select(AlertState.rule, AlertState.state, func.count())
                .group_by(AlertState.rule, AlertState.state))}

    def cursors(self) -> dict[str, int]:
        with self._session() as s:
            return {r.rule: r.event_id for r in s.scalars(select(AlertCursor))}

    def commit(self, changes: Changes, now: dt.datetime) -> int:
        """Write the changes and queue their notifications, all or nothing; how many queued."""
        with self._session.begin() as s:
            for rule, subject in changes.delete:
                s.execute(delete(AlertState).where(AlertState.rule == rule,
                                                   AlertState.subject == subject))
            for r in changes.upsert:
                s.merge(AlertState(rule=r.rule, subject=r.subject, state=r.state, since=r.since,
                                   fired_at=r.fired_at, value=r.value,
                                   last_notified=r.last_notified, told=r.told,
                                   group_key=r.group_key))
            for rule, event_id in changes.cursors.items():
                s.merge(AlertCursor(rule=rule, event_id=event_id))
            follow_in(s, changes.follows)
            return put_in(s, changes.notifications, now)

    def forget(self, rules: Iterable[str]) -> None:
        """Drop the states and cursors of rules that no longer exist or are disabled."""
        names = list(rules)
        if names:
            with self._session.begin() as s:
                s.execute(delete(AlertState).where(AlertState.rule.in_(names)))
                s.execute(delete(AlertCursor).where(AlertCursor.rule.in_(names)))
