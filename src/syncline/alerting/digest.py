"""The digest, or Wall of Shame: at fixed times of day, the overdue incidents first, then the
failing connections grouped by root cause — the causes hitting most connections first — each
with since when it is down, its last error, its owner team and its open incident, then the
connections down for more than 48 hours.

Sent by `up` at each `digest.at` (in `digest.timezone`): the notification's id is the slot it
was due at, so a restarted `up` never sends one twice, and an `up` that was down at a digest
time sends that one once when it is back (only the latest missed, not a pile).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

from syncline.alerting.notification import Notification
from syncline.alerting.rules import show
from syncline.alerting.signals import Signals
from syncline.alerting_config import DigestConfig
from syncline.config import Workspace
from syncline.failure_signature import signature
from syncline.store.incidents import IncidentRecord
from syncline.store.store import MetadataStore

LONG_DOWN = dt.timedelta(hours=48)


@dataclass
class Down:
    connection: str
    since: dt.datetime
    error: str
    owner: str | None = None
    incident: int | None = None

    def to_json(self, now: dt.datetime) -> dict[str, Any]:
        return {"connection": self.connection, "since": self.since.isoformat(),
                "down_seconds": (now - self.since).total_seconds(), "last_error": self.error,
                "owner": self.owner, "incident": self.incident}


@dataclass
class Group:
    key: str
    pattern: str
    origin: str
    failure_class: str
    connections: list[Down] = field(default_factory=list)


@dataclass
class Digest:
    at: dt.datetime
    watched: int
    groups: list[Group]
    down_long: list[Down]
    overdue: list[IncidentRecord] = field(default_factory=list)

    @property
    def failing(self) -> int:
        return sum(len(g.connections) for g in self.groups)

    def title(self) -> str:
        overdue = (f"{len(self.overdue)} overdue incident{'s' if len(self.overdue) != 1 else ''}, "
                   if self.overdue else "")
        if not self.failing:
            return f"Syncline digest: {overdue}all {self.watched} connections healthy"
        return (f"Syncline digest: {overdue}{self.failing} of {self.watched} connections failing, "
                f"{len(self.groups)} root cause{'s' if len(self.groups) != 1 else ''}")

    def to_json(self) -> dict[str, Any]:
        return {"at": self.at.isoformat(), "title": self.title(), "watched": self.watched,
                "failing": self.failing,
                "incidents_overdue": [{"id": i.id, "title": i.title, "owner": i.owner,
                                       "assignee": i.assignee, "state": i.state,
                                       "due_at": i.due_at.isoformat()} for i in self.overdue],
                "groups": [{"group": g.key, "pattern": g.pattern, "origin": g.origin,
                            "failure_class": g.failure_class, "count": len(g.connections),
                            "connections": [d.to_json(self.at) for d in g.connections]}
                           for g in self.groups],
                "down_long": [d.to_json(self.at) for d in self.down_long]}

    def notification(self, key: str) -> Notification:
        sections = [{"title": f"Overdue incidents ({len(self.overdue)})",
                     "columns": ["incident", "title", "owner", "assignee", "due"],
                     "rows": [[i.id, i.title, i.owner or "—", i.assignee or "—",
                               i.due_at.strftime("%Y-%m-%d")] for i in self.overdue]}] \
            if self.overdue else []
        sections += [{"title": f"{g.pattern[:120]} — {len(g.connections)} connection"
                     f"{'s' if len(g.connections) != 1 else ''} ({g.origin}, {g.failure_class})",
                     "columns": ["connection", "down since", "for", "owner", "incident", "last error"],
                     "rows": [[d.connection, d.since.strftime("%Y-%m-%d %H:%M UTC"),
                               show((self.at - d.since).total_seconds(), "seconds"), d.owner or "—",
                               d.incident or "—", d.error[:300]]
                              for d in g.connections]} for g in self.groups]
        if self.down_long:
            sections.append({"title": f"Down for more than {LONG_DOWN.total_seconds() / 3600:.0f} hours",
                             "columns": ["connection", "down since", "for"],
                             "rows": [[d.connection, d.since.strftime("%Y-%m-%d %H:%M UTC"),
                                       show((self.at - d.since).total_seconds(), "seconds")]
                                      for d in self.down_long]})
        body = {**self.to_json(), "sections": sections, "message": self.title()}
        return Notification(id=key, kind="digest", time=self.at,
                            severity="warning" if self.failing else "info", body=body)


def build(store: MetadataStore, ws: Workspace, now: dt.datetime) -> Digest:
    signals = Signals(store, ws, now)
    health = signals.health
    groups: dict[str, Group] = {}
    downs: list[Down] = []
    unresolved = store.incidents().list()
    incident_of: dict[str, int] = {}
    for inc in unresolved:
        if inc.connection is not None:
            incident_of.setdefault(inc.connection, inc.id)
    for name in signals.watched():
        since = health.down_since.get(name)
        if since is None:
            continue
        failure_class, message = health.last_failure.get(name, ("internal", ""))
        sig = signature(failure_class, message)
        down = Down(name, since, message.splitlines()[0] if message else "", ws.owners.get(name),
                    incident_of.get(name))
        downs.append(down)
        group = groups.setdefault(sig.key, Group(sig.key, sig.pattern, sig.origin, sig.failure_class))
        group.connections.append(down)
    for g in groups.values():
        g.connections.sort(key=lambda d: (d.since, d.connection))
    ordered = sorted(groups.values(), key=lambda g: (-len(g.connections), g.connections[0].since))
    long = sorted((d for d in downs if now - d.since > LONG_DOWN), key=lambda d: d.since)
    overdue = sorted((i for i in unresolved if i.overdue(now)), key=lambda i: (i.due_at, i.id))
    return Digest(now, len(signals.watched()), ordered, long, overdue)


def queue_if_due(store: MetadataStore, ws: Workspace, now: dt.datetime) -> dt.datetime | None:
    """Queue the digest of the latest slot at or before `now` unless it was queued already;
    the slot when it was queued now, else None."""
    cfg: DigestConfig | None = ws.model.digest
    if cfg is None:
        return None
    slot = cfg.last_slot(now)
    key = f"digest/{slot.isoformat()}"
    if store.outbox().has_key(key, cfg.notify):
        return None
    note = build(store, ws, now).notification(key)
    store.outbox().put([(c, key, note.kind, note.payload()) for c in cfg.notify], now)
    return slot
