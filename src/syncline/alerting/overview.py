"""Each alert rule's state as `syncline alerts` shows it: inactive, pending or firing (or
disabled), the subjects it holds for, and the signal's value now."""

from __future__ import annotations

import datetime as dt
from typing import Any

from syncline.alerting.rules import show
from syncline.alerting.signals import Signals
from syncline.alerting_config import SIGNALS, Condition
from syncline.config import Workspace
from syncline.store.store import MetadataStore


def _iso(t: dt.datetime | None) -> str | None:
    return t.isoformat().replace("+00:00", "Z") if t else None


def rule_states(store: MetadataStore, ws: Workspace, now: dt.datetime) -> list[dict[str, Any]]:
    signals = Signals(store, ws, now)
    held = store.alert_states().all()
    out = []
    for name, rule in ws.rules.items():
        subjects = sorted(
            ({"subject": st.subject, "state": st.state, "value": st.value, "since": _iso(st.since),
              "fired_at": _iso(st.fired_at)} for (r, _), st in held.items() if r == name),
            key=lambda x: (x["state"] != "firing", str(x["subject"])))
        value: float | None = None
        worst: str | None = None
        unit = None
        signal = SIGNALS[rule.when.signal] if isinstance(rule.when, Condition) else None
        if isinstance(rule.when, Condition) and rule.enabled:
            values = signals.values(rule.when.signal)
            unit = SIGNALS[rule.when.signal].unit
            if values:
                worst = max(values, key=lambda k: values[k])
                value = values[worst]
            for entry in subjects:
                if entry["subject"] in values:
                    entry["value"] = values[str(entry["subject"])]
        states = {str(s["state"]) for s in subjects}
        state = ("disabled" if not rule.enabled else "firing" if "firing" in states
                 else "pending" if "pending" in states else "inactive")
        out.append({
            "rule": name, "when": rule.when.text if isinstance(rule.when, Condition) else rule.when,
            "for_seconds": rule.for_s, "severity": rule.severity, "notify": list(rule.notify),
            "builtin": rule.builtin, "enabled": rule.enabled, "state": state,
            "value": value, "value_text": show(value, unit) if value is not None and unit else None,
            "value_subject": worst or None, "subjects": subjects, "labels": rule.labels,
            "signal": {"name": signal.name, "per": signal.scope, "unit": signal.unit,
                       "meaning": signal.meaning} if signal else None,
            "action": rule.action})
    return out
