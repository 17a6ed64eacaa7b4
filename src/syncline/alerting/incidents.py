"""Incidents as people and rules use them: open one (owned by the connection's team, due
`incidents.due` later), change it, and say each change as an event (`incident.*`), which rules
can forward — to a tracker, a channel, a person."""

from __future__ import annotations

import datetime as dt
import math
from typing import Any

from syncline.config import Workspace
from syncline.event_kinds import Event
from syncline.schedule import parse_duration
from syncline.store.incidents import IncidentRecord
from syncline.store.store import MetadataStore

_KIND = {"acknowledge": "incident.acknowledged", "assign": "incident.updated",
         "note": "incident.updated", "escalate": "incident.updated",
         "mitigate": "incident.mitigated",
         "resolve": "incident.resolved", "reopen": "incident.reopened"}


def _event(ws: Workspace, kind: str, inc: IncidentRecord, change: str, text: str | None,
           now: dt.datetime) -> Event:
    return Event(kind, {"incident": inc.id, "title": inc.title, "severity": inc.severity,
                        "state": inc.state, "owner": inc.owner, "assignee": inc.assignee,
                        "due_at": inc.due_at.isoformat(), "text": text, "change": change},
                 connection=inc.connection,
                 region=ws.region(inc.connection) if inc.connection else "default",
                 severity=inc.severity if kind == "incident.opened" else None,  # type: ignore[arg-type]
                 time=now)


def open_incident(store: MetadataStore, ws: Workspace, *, title: str, severity: str, by: str,
                  now: dt.datetime, connection: str | None = None, owner: str | None = None,
                  failure_group: str | None = None, rule: str | None = None,
                  dedup_key: str | None = None, text: str | None = None) -> tuple[IncidentRecord, bool]:
    """Open an incident (or join the unresolved one of `dedup_key`); its owner defaults to the
    connection's team."""
    owner = owner or (ws.owners.get(connection) if connection else None)
    inc, created = store.incidents().open(
        title=title, severity=severity, by=by, now=now,
        due=parse_duration(ws.model.incidents.due), owner=owner, connection=connection,
        failure_group=failure_group, rule=rule, dedup_key=dedup_key, text=text)
    store.emitter.emit(_event(ws, "incident.opened" if created else "incident.updated", inc,
                              "opened" if created else "recurred", text, now))
    return inc, created


def change_incident(store: MetadataStore, ws: Workspace, incident_id: int, action: str, *,
                    by: str, now: dt.datetime, text: str | None = None,
                    assignee: str | None = None) -> IncidentRecord:
    inc = store.incidents().change(incident_id, action, by=by, now=now, text=text, assignee=assignee)
    store.emitter.emit(_event(ws, _KIND[action], inc, action, text, now))
    return inc


def _quantile(values: list[float], q: float) -> float | None:
    """The q-quantile (0..1) by the nearest-rank method; None for no values."""
    if not values:
        return None
    ordered = sorted(values)
    return ordered[max(0, min(len(ordered) - 1, math.ceil(q * len(ordered)) - 1))]


def incident_stats(store: MetadataStore, since: dt.datetime, now: dt.datetime,
                   team: str | None = None) -> list[dict[str, Any]]:
    """Per owner team, over the incidents opened since `since`: how many, open and overdue now,
    time to acknowledge and to resolve (median, p90, seconds), and the share resolved by their
    due date among those resolved or already past it."""
    teams: dict[str, list[IncidentRecord]] = {}
    for inc in store.incidents().opened_since(since, team):
        teams.setdefault(inc.owner or "(no team)", []).append(inc)
    out = []
    for name, found in sorted(teams.items()):
        ack = [(i.acknowledged_at - i.opened_at).total_seconds() for i in found if i.acknowledged_at]
        done = [(i.resolved_at - i.opened_at).total_seconds() for i in found if i.resolved_at]
        decided = [i for i in found if i.state == "resolved" or i.overdue(now)]
        within = [i for i in decided if i.resolved_at is not None and i.resolved_at <= i.due_at]
        out.append({
            "team": name, "opened": len(found),
            "open": sum(i.state != "resolved" for i in found),
            "overdue": sum(i.overdue(now) for i in found),
            "acknowledge_seconds": {"median": _quantile(ack, 0.5), "p90": _quantile(ack, 0.9)},
            "resolve_seconds": {"median": _quantile(done, 0.5), "p90": _quantile(done, 0.9)},
            "resolved_within_due": round(len(within) / len(decided), 4) if decided else None})
    return out
