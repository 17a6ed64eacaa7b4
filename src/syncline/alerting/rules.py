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
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from syncline import clock
from syncline.alerting.notification import Notification
from syncline.alerting.signals import Signals
from syncline.alerting_config import SIGNALS, Condition, Rule
from syncline.config import Workspace
from syncline.event_kinds import Event
from syncline.store.alerts import Changes, StateRecord
from syncline.store.store import MetadataStore

EVENTS_PER_EVALUATION = 1000


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
    forwarded: int = 0
    queued: int = 0


class Evaluator:
    def __init__(self, store: MetadataStore, now: Callable[[], dt.datetime] = clock.now) -> None:
        self.store, self.now = store, now

    def evaluate(self, ws: Workspace) -> Evaluation:
        now = self.now()
        out = Evaluation()
        states = self.store.alert_states()
        held = states.all()
        cursors = states.cursors()
        rules = {n: r for n, r in ws.rules.items() if r.enabled}
        gone = {r for r, _ in held if r not in rules} | {r for r in cursors if r not in rules}
        states.forget(gone)
        signals = Signals(self.store, ws, now)
        changes = Changes()
        events: list[Event] = []
        for rule in rules.values():
            if rule.event_kind is not None:
                out.forwarded += self._forward(rule, rule.event_kind, cursors.get(rule.name), changes)
                continue
            assert isinstance(rule.when, Condition)
            mine = {subject: st for (r, subject), st in held.items() if r == rule.name}
            self._judge(rule, rule.when, signals, mine, now, changes, events, out)
        out.queued = states.commit(changes, now) if changes else 0
        if events:
            self.store.emitter.emit_many(events)
        return out

    def _judge(self, rule: Rule, cond: Condition, signals: Signals, mine: dict[str, StateRecord],
               now: dt.datetime, changes: Changes, events: list[Event], out: Evaluation) -> None:
        values = signals.values(cond.signal)
        holding = {s: v for s, v in values.items() if cond.holds(v)}
        for subject, value in holding.items():
            st = mine.get(subject) or StateRecord(rule.name, subject, "pending", now, None, value,
                                                  None, 0)
            if st.state == "pending" and (now - st.since).total_seconds() >= rule.for_s:
                st = StateRecord(rule.name, subject, "firing", st.since, now, value, now, 1)
                out.fired.append((rule.name, subject))
            elif st.state == "firing" and st.last_notified is not None and \
                    (now - st.last_notified).total_seconds() >= rule.repeat_s:
                st = StateRecord(rule.name, subject, "firing", st.since, st.fired_at, value, now,
                                 st.told + 1)
                out.repeated.append((rule.name, subject))
            elif subject in mine:
                continue  # no change worth a write
            else:
                out.pending.append((rule.name, subject))
            changes.upsert.append(st)
            if st.state == "firing":
                self._tell(rule, cond, st, "firing", signals, changes, events)
        for subject, st in mine.items():
            if subject not in holding:
                changes.delete.append((rule.name, subject))
                if st.state == "firing":
                    value = values.get(subject, st.value)
                    self._tell(rule, cond, StateRecord(rule.name, subject, "firing", st.since,
                                                       st.fired_at, value, now, st.told),
                               "resolved", signals, changes, events)
                    out.resolved.append((rule.name, subject))

    def _tell(self, rule: Rule, cond: Condition, st: StateRecord, what: str, signals: Signals,
              changes: Changes, events: list[Event]) -> None:
        signal = SIGNALS[cond.signal]
        connection = st.subject if signal.scope == "connection" else None
        who = {"connection": st.subject, "failure_group": f"failure group {st.subject}",
               "workspace": "the workspace"}[signal.scope]
        shown = show(st.value, signal.unit)
        message = (f"{rule.name}: {cond.signal} of {who} is {shown} ({cond.text})" if what == "firing"
                   else f"{rule.name} resolved: {cond.signal} of {who} is {shown} (no longer {cond.text})")
        body: dict[str, Any] = {
            "rule": rule.name, "subject": st.subject, "condition": cond.text, "value": st.value,
            "threshold": cond.threshold, "since": st.since.isoformat(), "message": message,
            "title": f"{rule.name} {what}" + (f" · {st.subject}" if st.subject else ""),
            "labels": rule.labels, "runbook": rule.runbook or runbook_for(cond.signal)}
        if signal.scope == "failure_group" and st.subject in signals.groups:
            body["group"] = signals.groups[st.subject]
        key = f"alert/{rule.name}/{st.subject}/{st.since.isoformat()}/" + \
            (f"firing/{st.told}" if what == "firing" else "resolved")
        note = Notification(id=key, kind=f"alert.{what}", time=st.last_notified or self.now(),
                            severity=rule.severity if what == "firing" else "info",
                            connection=connection,
                            region=signals.ws.region(connection) if connection else None, body=body)
        changes.notifications += [(channel, key, note.kind, note.payload()) for channel in rule.notify]
        events.append(Event(f"alert.{what}", {k: body[k] for k in (
            "rule", "subject", "condition", "value", "threshold", "since")},
            connection=connection, severity=rule.severity if what == "firing" else None,
            region=signals.ws.region(connection) if connection else "default",
            time=st.last_notified or self.now()))

    def _forward(self, rule: Rule, kind: str, cursor: int | None, changes: Changes) -> int:
        """Queue a notification of each event of `kind` written since the rule last looked (a new
        rule starts at the end of the log: it forwards what happens from now on)."""
        log = self.store.events()
        if cursor is None:
            newest = log.read(limit=1)
            changes.cursors[rule.name] = newest[-1].id if newest else 0
            return 0
        found = log.read(kinds=[kind], after=cursor, limit=EVENTS_PER_EVALUATION, oldest=True)
        for e in found:
            key = f"event/{e.id}"
            note = Notification(id=key, kind=e.kind, time=e.time, severity=e.severity,
                                connection=e.connection, run=e.run, stream=e.stream, region=e.region,
                                body={**e.body, "rule": rule.name})
            changes.notifications += [(c, key, e.kind, note.payload()) for c in rule.notify]
        if found:
            changes.cursors[rule.name] = found[-1].id
        return len(found)


def runbook_for(name: str) -> str:
    """The shipped runbook page of a signal (docs/runbooks/<name>.md)."""
    return f"docs/runbooks/{name}.md"
