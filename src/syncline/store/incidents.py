"""Incidents in the store: opened (by hand, or by a rule with a key that joins recurrences to
the incident still unresolved), then acknowledged, assigned, noted, mitigated, resolved with
a note, reopened — each change one line of its timeline, with who and when."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Engine, select
from sqlalchemy.orm import Session, sessionmaker

from syncline.store.models import Incident, IncidentEntry

STATES = ("open", "acknowledged", "mitigated", "resolved")
UNRESOLVED = ("open", "acknowledged", "mitigated")
SEVERITIES = ("info", "warning", "error", "critical")


class IncidentRefused(ValueError):
    """A change the incident's state does not allow (resolving a resolved one...)."""


@dataclass(frozen=True)
class Entry:
    time: dt.datetime
    kind: str
    by: str
    text: str | None
    data: dict[str, Any] | None


@dataclass(frozen=True)
class IncidentRecord:
    id: int
    title: str
    severity: str
    state: str
    owner: str | None
    assignee: str | None
    connection: str | None
    failure_group: str | None
    rule: str | None
    dedup_key: str | None
    opened_at: dt.datetime
    acknowledged_at: dt.datetime | None
    mitigated_at: dt.datetime | None
    resolved_at: dt.datetime | None
    due_at: dt.datetime
    resolution: str | None
    opened_by: str
    timeline: tuple[Entry, ...] = field(default=())

    def overdue(self, now: dt.datetime) -> bool:
        return self.state != "resolved" and now >= self.due_at

    def to_json(self, now: dt.datetime) -> dict[str, Any]:
        def iso(t: dt.datetime | None) -> str | None:
            return t.isoformat().replace("+00:00", "Z") if t else None

        return {"id": self.id, "title": self.title, "severity": self.severity, "state": self.state,
                "owner": self.owner, "assignee": self.assignee, "connection": self.connection,
                "failure_group": self.failure_group, "rule": self.rule,
                "opened_at": iso(self.opened_at), "acknowledged_at": iso(self.acknowledged_at),
                "mitigated_at": iso(self.mitigated_at), "resolved_at": iso(self.resolved_at),
                "due_at": iso(self.due_at), "overdue": self.overdue(now),
                "resolution": self.resolution, "opened_by": self.opened_by,
                "timeline": [{"time": iso(e.time), "kind": e.kind, "by": e.by, "text": e.text,
                              "data": e.data} for e in self.timeline]}


def _record(row: Incident, timeline: Iterable[IncidentEntry] = ()) -> IncidentRecord:
    return IncidentRecord(
        row.id, row.title, row.severity, row.state, row.owner, row.assignee, row.connection,
        row.failure_group, row.rule, row.dedup_key, row.opened_at, row.acknowledged_at,
        row.mitigated_at, row.resolved_at, row.due_at, row.resolution, row.opened_by,
        tuple(Entry(e.time, e.kind, e.by, e.text, json.loads(e.data) if e.data else None)
              for e in timeline))


class Incidents:
    def __init__(self, engine: Engine) -> None:
        self._session = sessionmaker(engine, expire_on_commit=False)

    def open(self, *, title: str, severity: str, by: str, now: dt.datetime, due: dt.timedelta,
             owner: str | None = None, connection: str | None = None,
             failure_group: str | None = None, rule: str | None = None,
             dedup_key: str | None = None, text: str | None = None) -> tuple[IncidentRecord, bool]:
        """(the incident, whether it is new): with `dedup_key`, an unresolved incident of that key
        takes it as a recurrence instead (a mitigated one opens again)."""
        if severity not in SEVERITIES:
            raise IncidentRefused(f"severity {severity!r} is not one of {', '.join(SEVERITIES)}")
        with self._session.begin() as s:
            if dedup_key is not None:
                row = s.scalars(select(Incident).where(Incident.dedup_key == dedup_key,
                                                       Incident.state.in_(UNRESOLVED))
                                .order_by(Incident.id).limit(1)).first()
                if row is not None:
                    if row.state == "mitigated":
                        row.state, row.mitigated_at = "open", None
                    self._add(s, row.id, now, "recurred", by, text)
                    return self._get(s, row.id), False
            row = Incident(title=title, severity=severity, state="open", owner=owner,
                           connection=connection, failure_group=failure_group, rule=rule,
                           dedup_key=dedup_key, opened_at=now, due_at=now + due, opened_by=by)
            s.add(row)
            s.flush()
            self._add(s, row.id, now, "opened", by, text or title)
            return self._get(s, row.id), True

    def change(self, incident_id: int, action: str, *, by: str, now: dt.datetime,
               text: str | None = None, assignee: str | None = None) -> IncidentRecord:
        """acknowledge | assign | note | mitigate | escalate | resolve | reopen; IncidentRefused saying why
        when its state does not allow it, KeyError when there is no such incident."""
        with self._session.begin() as s:
            row = s.get(Incident, incident_id, with_for_update=s.get_bind().dialect.name == "postgresql")
            if row is None:
                raise KeyError(incident_id)
            state = row.state
            if action == "acknowledge":
                if state != "open":
                    raise IncidentRefused(f"incident {row.id} is {state}: only an open one is acknowledged")
                row.state, row.acknowledged_at = "acknowledged", now
            elif action == "assign":
                if state == "resolved" or not assignee:
                    raise IncidentRefused(f"incident {row.id} is resolved: reopen it first"
                                          if assignee else "say whom to assign it to")
                row.assignee = assignee
                text = text or f"assigned to {assignee}"
            elif action == "note":
                if not text:
                    raise IncidentRefused("a note needs its text")
            elif action == "mitigate":
                if state not in ("open", "acknowledged"):
                    raise IncidentRefused(f"incident {row.id} is {state}")
                row.state, row.mitigated_at = "mitigated", now
            elif action == "resolve":
                if state == "resolved":
                    raise IncidentRefused(f"incident {row.id} is already resolved")
                if not text:
                    raise IncidentRefused("resolving needs a note: what was wrong and what fixed it")
                row.state, row.resolved_at, row.resolution = "resolved", now, text
            elif action == "escalate":
                if state == "resolved":
                    raise IncidentRefused(f"incident {row.id} is resolved")
            elif action == "reopen":
                if state != "resolved":
                    raise IncidentRefused(f"incident {row.id} is {state}, not resolved")
                row.state, row.resolved_at, row.mitigated_at = "open", None, None
            else:
                raise ValueError(f"unknown incident action {action!r}")
            self._add(s, row.id, now, action, by, text)
            return self._get(s, row.id)

    def add_entry(self, incident_id: int, kind: str, *, by: str, now: dt.datetime,
                  text: str | None = None, data: dict[str, Any] | None = None) -> None:
        """A line on an incident's timeline that changes nothing else (runs that failed again)."""
        with self._session.begin() as s:
            self._add(s, incident_id, now, kind, by, text, data)

    def escalation_due(self, now: dt.datetime) -> list[IncidentRecord]:
        """Unresolved incidents past their due date not yet escalated."""
        escalated = select(IncidentEntry.incident_id).where(IncidentEntry.kind == "escalate")
        with self._session() as s:
            return [_record(r) for r in s.scalars(
                select(Incident).where(Incident.state.in_(UNRESOLVED), Incident.due_at <= now,
                                       Incident.id.not_in(escalated)).order_by(Incident.id))]

    def opened_since(self, since: dt.datetime, owner: str | None = None) -> list[IncidentRecord]:
        """Every incident opened at or after `since` (of team `owner`), oldest first."""
        q = select(Incident).where(Incident.opened_at >= since)
        if owner is not None:
            q = q.where(Incident.owner == owner)
        with self._session() as s:
            return [_record(r) for r in s.scalars(q.order_by(Incident.id))]

    def get(self, incident_id: int) -> IncidentRecord | None:
        with self._session() as s:
            return self._get(s, incident_id) if s.get(Incident, incident_id) else None

    def list(self, *, states: Iterable[str] = UNRESOLVED, owner: str | None = None,
             limit: int = 200) -> list[IncidentRecord]:
        """Incidents of `states` (of team `owner`), the earliest due first."""
        q = select(Incident).where(Incident.state.in_(list(states)))
        if owner is not None:
            q = q.where(Incident.owner == owner)
        with self._session() as s:
            return [_record(r) for r in s.scalars(q.order_by(Incident.due_at, Incident.id).limit(limit))]

    @staticmethod
    def _add(s: Session, incident_id: int, now: dt.datetime, kind: str, by: str,
             text: str | None, data: dict[str, Any] | None = None) -> None:
        s.add(IncidentEntry(incident_id=incident_id, time=now, kind=kind, by=by, text=text,
                            data=json.dumps(data, sort_keys=True) if data else None))

    @staticmethod
    def _get(s: Session, incident_id: int) -> IncidentRecord:
        s.flush()
        row = s.get(Incident, incident_id)
        assert row is not None
        timeline = s.scalars(select(IncidentEntry).where(IncidentEntry.incident_id == incident_id)
                             .order_by(IncidentEntry.id))
        return _record(row, timeline)
