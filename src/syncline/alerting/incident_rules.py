"""Rules that open incidents (`action: incident`): BugBot (a connection down for more than 48
hours), a freshness breach, a stream failing on a contract change — one incident per connection
and failure group (or rule) while unresolved; then each incident mitigated once its connection
has run successfully `incidents.mitigate_after` times, and escalated to the managers' on-call
once it is overdue."""

from __future__ import annotations

import datetime as dt
from typing import Any

from syncline.alerting.incidents import change_incident, open_incident
from syncline.alerting.notification import Notification
from syncline.alerting.signals import Signals
from syncline.alerting_config import SIGNALS, Condition, EmailChannel, Rule
from syncline.config import Workspace
from syncline.failure_signature import signature
from syncline.store.alerts import Changes
from syncline.store.events import StoredEvent
from syncline.store.incidents import IncidentRefused
from syncline.store.store import MetadataStore
from syncline.teams import MANAGERS

SWEEP_EVERY_S = 30.0


def _key(connection: str | None, group: str | None, rule: str) -> str:
    where = connection or "workspace"
    return f"{where}/group:{group}" if group else f"{where}/rule:{rule}"


class IncidentKeeper:
    def __init__(self, store: MetadataStore) -> None:
        self.store = store
        self._swept: dt.datetime | None = None

    def fired(self, ws: Workspace, rule: Rule, subjects: list[str], signals: Signals,
              now: dt.datetime) -> int:
        """Open (or join) the incidents of a condition rule's subjects that started firing."""
        assert isinstance(rule.when, Condition)
        signal = SIGNALS[rule.when.signal]
        opened = 0
        for subject in subjects:
            if signal.scope == "connection":
                connections: list[str | None] = [subject]
            elif signal.scope == "failure_group":
                affected = signals.groups.get(subject, {}).get("connections")
                connections = [str(c) for c in affected] if isinstance(affected, list) else [None]
            elif rule.when.signal == "failing_connections":
                connections = [c for c in sorted(signals.watched()) if c in signals.health.down_since]
            else:
                connections = [None]
            for conn in connections:
                failure = signals.health.last_failure.get(conn) if conn else None
                group = signature(*failure).key if failure else None
                title = f"{rule.name}: {conn or 'the workspace'} ({rule.when.text})"
                _, new = open_incident(self.store, ws, title=title, severity=rule.severity,
                                       by=f"rule {rule.name}", now=now, connection=conn,
                                       failure_group=group, rule=rule.name,
                                       dedup_key=_key(conn, group, rule.name),
                                       text=f"{rule.when.signal} of {subject or 'the workspace'} "
                                       f"holds: {rule.when.text}")
                opened += new
        return opened

    def forwarded(self, ws: Workspace, rule: Rule, event: StoredEvent, now: dt.datetime) -> bool:
        """Open (or join) the incident of an event an event rule with `action: incident` took."""
        body: dict[str, Any] = event.body
        group = None
        if isinstance(body.get("failure_class"), str) and isinstance(body.get("message"), str):
            group = signature(body["failure_class"], body["message"]).key
        where = event.connection or "the workspace"
        title = f"{rule.name}: {where}" + (f", stream {event.stream}" if event.stream else "")
        _, new = open_incident(self.store, ws, title=title, severity=rule.severity,
                               by=f"rule {rule.name}", now=now, connection=event.connection,
                               failure_group=group, rule=rule.name,
                               dedup_key=_key(event.connection, group, rule.name),
                               text=str(body.get("message") or event.kind))
        return new

    def sweep(self, ws: Workspace, now: dt.datetime, changes: Changes) -> tuple[list[int], list[int]]:
        """Every SWEEP_EVERY_S: mitigate the incidents whose connection has run successfully
        `mitigate_after` times since it last failed them; escalate the overdue ones to the
        managers' on-call (once). (mitigated ids, escalated ids)."""
        if self._swept is not None and 0 <= (now - self._swept).total_seconds() < SWEEP_EVERY_S:
            return [], []
        self._swept = now
        box = self.store.incidents()
        mitigated: list[int] = []
        needed = ws.model.incidents.mitigate_after
        for inc in box.list(states=("open", "acknowledged")):
            if inc.rule is None or inc.connection is None:
                continue
            full = box.get(inc.id)
            timeline = full.timeline if full else ()
            if self._failed_again(inc.id, inc.connection, max(e.time for e in timeline)
                                  if timeline else inc.opened_at, now):
                continue  # it failed again: count successes from now on
            since = max((e.time for e in timeline if e.kind in ("opened", "recurred", "failed_again")),
                        default=inc.opened_at)
            if len(self.store.successes(inc.connection, since)) >= needed:
                try:
                    change_incident(self.store, ws, inc.id, "mitigate", by="syncline", now=now,
                                    text=f"{needed} successful run(s) of {inc.connection} since")
                    mitigated.append(inc.id)
                except IncidentRefused:
                    pass  # a person changed it meanwhile
        escalated: list[int] = []
        for inc in box.escalation_due(now):
            change_incident(self.store, ws, inc.id, "escalate", by="syncline", now=now,
                            text=f"overdue since {inc.due_at:%Y-%m-%d %H:%M} UTC: escalated to "
                            "the managers' on-call")
            escalated.append(inc.id)
            self._page_managers(ws, inc.id, inc.title, inc.owner, inc.connection, now, changes)
        return mitigated, escalated

    def _failed_again(self, incident: int, connection: str, after: dt.datetime,
                      now: dt.datetime) -> bool:
        """Runs of the incident's connection that failed since its last timeline line: one
        line naming them (the runs linked to the incident)."""
        failed = [r for r in self.store.runs(connection, limit=50)
                  if r.status in ("failed", "partial", "crashed") and r.ended_at and r.ended_at > after]
        if failed:
            runs = sorted(r.id for r in failed)
            self.store.incidents().add_entry(
                incident, "failed_again", by="syncline", now=now,
                text=f"{len(runs)} more failed run(s): {', '.join(map(str, runs))}; last: "
                f"{(failed[0].failure_message or '').splitlines()[0][:200] if failed[0].failure_message else ''}",
                data={"runs": runs})
        return bool(failed)

    def _page_managers(self, ws: Workspace, incident: int, title: str, owner: str | None,
                       connection: str | None, now: dt.datetime, changes: Changes) -> None:
        managers = ws.model.teams.get(MANAGERS)
        if managers is None:
            return
        person = managers.on_call_person(now)
        key = f"incident/{incident}/overdue"
        note = Notification(id=key, kind="incident.updated", time=now, severity="critical",
                            connection=connection, body={
                                "incident": incident, "title": f"overdue incident {incident}: {title}",
                                "message": f"Incident {incident} ({title}) of team {owner or '—'} "
                                "is past its due date.", "change": "escalated",
                                "page": {"team": MANAGERS, "person": person, "via": MANAGERS,
                                         "reason": "overdue", "manager": person}})
        changes.notifications += [(c, key, note.kind, note.payload()) for c in managers.notify]
        mail = next((c for c in managers.notify if isinstance(ws.channels.get(c), EmailChannel)), None)
        if mail is not None and person:
            changes.notifications.append((mail, f"{key}/to", note.kind,
                                          {**note.payload(), "recipients": [person]}))
