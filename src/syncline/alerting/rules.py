"""Alert rules evaluated: conditions over signals become pending, firing and resolved; event
rules forward the events of their kind. One evaluation writes the state changes and the
notifications they cause in one transaction (store/alerts.py), with keys that a restarted
evaluator would make again the same, so nothing is told twice or lost.

A condition that starts holding makes the rule pending for its subject; once it has held for
the rule's `for:` the rule fires (a notification to each of its channels, an `alert.firing`
event); while it keeps firing it is told again every `repeat_every`; when the condition no
longer holds a firing rule resolves (told too) and a pending one goes back to inactive.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

from syncline import clock, runbooks
from syncline.alerting.incident_rules import IncidentKeeper
from syncline.alerting.notification import Notification
from syncline.alerting.signals import Memory, Signals
from syncline.alerting_config import OWNER, SIGNALS, TRACKERS, Condition, EmailChannel, Rule
from syncline.config import Workspace
from syncline.event_kinds import Event
from syncline.failure_signature import signature
from syncline.store.alerts import Changes, StateRecord
from syncline.store.events import StoredEvent
from syncline.store.silences import SilenceRecord
from syncline.store.store import MetadataStore
from syncline.teams import MANAGERS, route

EVENTS_PER_EVALUATION = 1000
#: the cursor over `incident.*` events that trackers follow (not a rule's name: those are YAML keys)
FOLLOWING = "#trackers"


def show(value: float, unit: str) -> str:
    """A signal's value as a person reads it: `2h 5m`, `12.5%`, `1.2 GB`, `7`."""
    if unit == "seconds":
        s = int(value)
        parts = [(s // 86400, "d"), (s % 86400 // 3600, "h"), (s % 3600 // 60, "m"), (s % 60, "s")]
        return " ".join(f"{n}{u}" for n, u in [p for p in parts if p[0]][:2]) or "0s"
    if unit == "percent":
        return f"{value:.1f}%"
    if unit == "bytes":
        for size, name in ((1000**4, "TB"), (1000**3, "GB"), (1000**2, "MB"), (1000, "kB")):
            if value >= size:
                return f"{value / size:.1f} {name}"
        return f"{value:.0f} B"
    return f"{value:g}"


@dataclass
class Evaluation:
    fired: list[tuple[str, str]] = field(default_factory=list)
    resolved: list[tuple[str, str]] = field(default_factory=list)
    pending: list[tuple[str, str]] = field(default_factory=list)
    repeated: list[tuple[str, str]] = field(default_factory=list)
    #: firing but not told yet: waiting for its group (`group_wait`), or held back (silenced)
    waiting: list[tuple[str, str]] = field(default_factory=list)
    muted: list[tuple[str, str]] = field(default_factory=list)
    forwarded: int = 0
    incidents_opened: int = 0
    mitigated: list[int] = field(default_factory=list)
    escalated: list[int] = field(default_factory=list)
    queued: int = 0


class Evaluator:
    def __init__(self, store: MetadataStore, now: Callable[[], dt.datetime] = clock.now) -> None:
        self.store, self.now = store, now
        self.memory = Memory()
        self.keeper = IncidentKeeper(store)

    def evaluate(self, ws: Workspace) -> Evaluation:
        now = self.now()
        out = Evaluation()
        states = self.store.alert_states()
        held = states.all()
        cursors = states.cursors()
        rules = {n: r for n, r in ws.rules.items() if r.enabled}
        gone = {r for r, _ in held if r not in rules} | \
            {r for r in cursors if r not in rules and r != FOLLOWING}
        states.forget(gone)
        signals = Signals(self.store, ws, now, self.memory)
        mute = Muting(ws, self.store.silences().active(now), now)
        changes = Changes()
        events: list[Event] = []
        by_rule: dict[str, dict[str, StateRecord]] = {}
        for (r, subject), st in held.items():
            by_rule.setdefault(r, {})[subject] = st
        for rule in rules.values():
            if rule.event_kind is not None:
                out.forwarded += self._forward(ws, rule, rule.event_kind, cursors.get(rule.name),
                                               changes, mute, out)
                continue
            assert isinstance(rule.when, Condition)
            mine = by_rule.get(rule.name, {})
            judged = _Judged(rule, rule.when, signals, mute, now)
            before = len(out.fired)
            judged.judge(mine, changes, events, out)
            if rule.action == "incident" and len(out.fired) > before:
                out.incidents_opened += self.keeper.fired(
                    ws, rule, [s for _, s in out.fired[before:]], signals, now)
        out.mitigated, out.escalated = self.keeper.sweep(ws, now, changes)
        self._follow(cursors.get(FOLLOWING), changes)
        out.queued = states.commit(changes, now) if changes else 0
        if events:
            self.store.emitter.emit_many(events)
        return out

    def _forward(self, ws: Workspace, rule: Rule, kind: str, cursor: int | None, changes: Changes,
                 mute: Muting, out: Evaluation) -> int:
        """Queue a notification of each event of `kind` written since the rule last looked (a new
        rule starts at the end of the log: it forwards what happens from now on)."""
        log = self.store.events()
        if cursor is None:
            newest = log.read(limit=1)
            changes.cursors[rule.name] = newest[-1].id if newest else 0
            return 0
        found = log.read(kinds=[kind], after=cursor, limit=EVENTS_PER_EVALUATION, oldest=True)
        forwarded = 0
        for e in found:
            if any(str(e.body.get(k)) != v for k, v in rule.match):
                continue
            if rule.action == "incident":
                out.incidents_opened += self.keeper.forwarded(ws, rule, e, self.now())
            if mute.muted(rule.name, e.connection):
                continue
            forwarded += 1
            note = event_note(e, rule.name)
            changes.notifications += [(c, note.id, e.kind, note.payload()) for c in rule.notify]
            if e.kind == "incident.opened" and isinstance(e.body.get("incident"), int):
                changes.follows += [(c, e.body["incident"]) for c in rule.notify
                                    if isinstance(ws.channels.get(c), TRACKERS)]
        if found:
            changes.cursors[rule.name] = found[-1].id
        return forwarded

    def _follow(self, cursor: int | None, changes: Changes) -> None:
        """Every change of an incident a tracker follows goes to that tracker, no rule needed."""
        log = self.store.events()
        if cursor is None:
            newest = log.read(limit=1)
            changes.cursors[FOLLOWING] = newest[-1].id if newest else 0
            return
        found = [e for e in log.read(kinds=["incident."], after=cursor,
                                     limit=EVENTS_PER_EVALUATION, oldest=True)
                 if e.kind != "incident.opened" and isinstance(e.body.get("incident"), int)]
        followers = self.store.tickets().followers(e.body["incident"] for e in found)
        for channel, incident in changes.follows:
            followers.setdefault(incident, []).append(channel)
        for e in found:
            note = event_note(e, None)
            changes.notifications += [(c, note.id, e.kind, note.payload())
                                      for c in sorted(set(followers.get(e.body["incident"], [])))]
        if found:
            changes.cursors[FOLLOWING] = max(found[-1].id, cursor)


def event_note(e: StoredEvent, rule: str | None) -> Notification:
    """An event as a notification: its own kind, severity and body (with the rule that took it,
    and the runbook of its failure class)."""
    body = {**e.body, **({"rule": rule} if rule else {})}
    if isinstance(e.body.get("failure_class"), str):
        body["runbook"] = runbooks.for_failure(e.body["failure_class"])
    return Notification(id=f"event/{e.id}", kind=e.kind, time=e.time, severity=e.severity,
                        connection=e.connection, run=e.run, stream=e.stream, region=e.region,
                        body=body)


class Muting:
    """Whether a rule's notifications of a connection are held back now: an active silence
    (of the rule, the connection, or both) or the connection's maintenance window."""

    def __init__(self, ws: Workspace, silences: list[SilenceRecord], now: dt.datetime) -> None:
        self.silences = silences
        self.in_maintenance = {name for name, c in ws.connections.items()
                               if any(w.active(now) for w in c.maintenance)}

    def muted(self, rule: str, connection: str | None) -> bool:
        if connection is not None and connection in self.in_maintenance:
            return True
        return any(s.covers(rule, connection) for s in self.silences)


class _Judged:
    """One rule over its signal in one evaluation: state changes, then what to tell, grouped."""

    def __init__(self, rule: Rule, cond: Condition, signals: Signals, mute: Muting,
                 now: dt.datetime) -> None:
        self.rule, self.cond, self.signals, self.mute, self.now = rule, cond, signals, mute, now
        self.signal = SIGNALS[cond.signal]

    def connection(self, subject: str) -> str | None:
        return subject if self.signal.scope == "connection" else None

    def group_of(self, subject: str) -> str:
        """What a subject is told with: for a connection down, its failure's signature."""
        if self.signal.scope == "failure_group":
            return subject
        failure = self.signals.health.last_failure.get(subject) \
            if self.cond.signal == "connection_down" else None
        return signature(*failure).key if failure else ""

    def judge(self, mine: dict[str, StateRecord], changes: Changes, events: list[Event],
              out: Evaluation) -> None:
        rule, now = self.rule, self.now
        values = self.signals.values(self.cond.signal)
        holding = {s: v for s, v in values.items() if self.cond.holds(v)}
        firing: dict[str, StateRecord] = {}
        for subject, value in holding.items():
            st = mine.get(subject)
            new = st is None
            if st is None:
                st = StateRecord(rule.name, subject, "pending", now, None, value, None, 0,
                                 self.group_of(subject))
            if st.state == "pending" and (now - st.since).total_seconds() >= rule.for_s:
                st = replace(st, state="firing", fired_at=now, value=value)
                out.fired.append((rule.name, subject))
                changes.upsert.append(st)
                events.append(self._event("firing", st))
            elif new:
                out.pending.append((rule.name, subject))
                changes.upsert.append(st)
            if st.state == "firing":
                firing[subject] = replace(st, value=value)
        ended: list[StateRecord] = []
        for subject, st in mine.items():
            if subject not in holding:
                changes.delete.append((rule.name, subject))
                if st.state == "firing":
                    out.resolved.append((rule.name, subject))
                    events.append(self._event("resolved", st))
                    if st.told and not self.mute.muted(rule.name, self.connection(subject)):
                        ended.append(replace(st, value=values.get(subject, st.value)))
        self._tell_firing(firing, changes, out)
        for group in _by_group(ended).values():
            self._queue("resolved", group, changes)

    def _tell_firing(self, firing: dict[str, StateRecord], changes: Changes, out: Evaluation) -> None:
        rule, now = self.rule, self.now
        audible = [st for st in firing.values()
                   if not self.mute.muted(rule.name, self.connection(st.subject))]
        heard = {st.subject for st in audible}
        out.muted += [(rule.name, s) for s, st in firing.items() if s not in heard and st.told == 0]
        for group in _by_group([st for st in audible if st.told == 0]).values():
            first = min(st.fired_at or now for st in group)
            if (now - first).total_seconds() < rule.group_wait_s:
                out.waiting += [(rule.name, st.subject) for st in group]
                continue  # others of its group may follow: told together
            self._told(group, changes)
        repeat = [st for st in audible if st.told > 0 and st.last_notified is not None
                  and (now - st.last_notified).total_seconds() >= rule.repeat_s]
        for group in _by_group(repeat).values():
            out.repeated += [(rule.name, st.subject) for st in group]
            self._told(group, changes)

    def _told(self, group: list[StateRecord], changes: Changes) -> None:
        self._queue("firing", group, changes)
        changes.upsert += [replace(st, told=st.told + 1, last_notified=self.now) for st in group]

    def _queue(self, what: str, group: list[StateRecord], changes: Changes) -> None:
        """One message of the group to the rule's channels; with `notify: [owner]`, one page
        of each owner team's part to that team's channels (and its on-call person by mail)."""
        self._send(what, group, [c for c in self.rule.notify if c != OWNER], None, changes)
        if OWNER not in self.rule.notify or self.signal.scope != "connection":
            return
        teams: dict[str, list[StateRecord]] = {}
        for st in group:
            owner = self.signals.ws.owners.get(st.subject)
            if owner is not None:
                teams.setdefault(owner, []).append(st)
        for team, members in sorted(teams.items()):
            self._send(what, members, None, team, changes)

    def _send(self, what: str, group: list[StateRecord], channels: list[str] | None,
              team: str | None, changes: Changes) -> None:
        rule, ws = self.rule, self.signals.ws
        group = sorted(group, key=lambda st: st.subject)
        members = "|".join(f"{st.subject}@{st.since.isoformat()}"
                           + (f"#{st.told + 1}" if what == "firing" else "") for st in group)
        key = f"alert/{rule.name}/{what}/{hashlib.sha256(members.encode()).hexdigest()[:20]}"
        severity = rule.severity if what == "firing" else "info"
        body = self._body(what, group, max(group, key=lambda st: st.value))
        recipients: tuple[str, ...] = ()
        if team is not None:
            key += f"/page/{team}"
            page = route(dict(ws.model.teams), team, self.now)
            body["page"] = page.to_json()
            channels = list(ws.model.teams[team].notify)
            if severity == "critical" and MANAGERS in ws.model.teams:
                channels += [c for c in ws.model.teams[MANAGERS].notify if c not in channels]
            recipients = tuple(p for p in (page.person, page.manager if severity == "critical" else None) if p)
        connection = self.connection(group[0].subject) if len(group) == 1 else None
        note = Notification(id=key, kind=f"alert.{what}", time=self.now, severity=severity,
                            connection=connection,
                            region=ws.region(connection) if connection else None, body=body)
        changes.notifications += [(c, key, note.kind, note.payload()) for c in channels or []]
        mail = next((c for c in (ws.model.teams[team].notify if team else [])
                     if isinstance(ws.channels.get(c), EmailChannel)), None)
        if mail is not None and recipients and what == "firing":
            personal = replace(note, id=f"{key}/to", recipients=recipients)
            changes.notifications.append((mail, personal.id, personal.kind, personal.payload()))

    def _body(self, what: str, group: list[StateRecord], worst: StateRecord) -> dict[str, Any]:
        rule, cond, signal = self.rule, self.cond, self.signal
        who = {"connection": "connection", "failure_group": "failure group",
               "workspace": "the workspace"}[signal.scope]
        names = [st.subject for st in group]
        shown = ", ".join(names[:10]) + (f" +{len(names) - 10}" if len(names) > 10 else "")
        if len(group) == 1:
            subject = f"{who} {names[0]}" if names[0] else who
            text = f"{cond.signal} of {subject} is {show(worst.value, signal.unit)}"
        else:
            text = (f"{len(group)} {who}s: {shown}; {cond.signal} up to "
                    f"{show(worst.value, signal.unit)}")
        message = (f"{rule.name}: {text} ({cond.text})" if what == "firing"
                   else f"{rule.name} resolved: {text} (no longer {cond.text})")
        title = f"{rule.name} {what}" + (f" · {names[0]}" if len(names) == 1 and names[0]
                                          else f" · {len(names)} {who}s" if len(names) > 1 else "")
        body: dict[str, Any] = {
            "rule": rule.name, "subject": names[0], "condition": cond.text, "value": worst.value,
            "threshold": cond.threshold, "since": min(st.since for st in group).isoformat(),
            "subjects": [{"subject": st.subject, "value": st.value, "since": st.since.isoformat()}
                         for st in group],
            "count": len(group), "message": message, "title": title, "labels": rule.labels,
            "runbook": rule.runbook or runbooks.for_signal(cond.signal)}
        failure = self.signals.health.last_failure.get(names[0]) \
            if cond.signal == "connection_down" else None
        if failure:
            sig = signature(*failure)
            body["failure"] = {"group": sig.key, "pattern": sig.pattern, "origin": sig.origin,
                               "failure_class": sig.failure_class}
        if signal.scope == "failure_group" and names[0] in self.signals.groups:
            body["group"] = self.signals.groups[names[0]]
        return body

    def _event(self, what: str, st: StateRecord) -> Event:
        connection = self.connection(st.subject)
        return Event(f"alert.{what}", {"rule": self.rule.name, "subject": st.subject,
                                       "condition": self.cond.text, "value": st.value,
                                       "threshold": self.cond.threshold, "since": st.since.isoformat()},
                     connection=connection, severity=self.rule.severity if what == "firing" else None,
                     region=self.signals.ws.region(connection) if connection else "default",
                     time=self.now)


def _by_group(states: list[StateRecord]) -> dict[str, list[StateRecord]]:
    out: dict[str, list[StateRecord]] = {}
    for st in states:
        out.setdefault(st.group_key, []).append(st)
    return out
