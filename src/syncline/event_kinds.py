"""The event log's vocabulary: every kind of event, its severity and the JSON Schema of its body.

An event is one line of an append-only log in the metadata store (store/events.py), written
by one emitter and read by `syncline events`, and later by metrics, alert rules and the
dashboard. Kinds are dotted, `<subject>.<what happened>`; `docs/events.md` shows each
schema (a test holds it to this table).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any, Literal

from syncline import clock

Severity = Literal["info", "warning", "error", "critical"]
SEVERITIES: tuple[Severity, ...] = ("info", "warning", "error", "critical")

_INT = {"type": "integer", "minimum": 0}
_TEXT = {"type": "string"}
_MAYBE_TEXT = {"type": ["string", "null"]}
_TIME = {"type": "string", "format": "date-time"}
_SECONDS = {"type": "number", "minimum": 0}


def _object(required: dict[str, Any], optional: dict[str, Any] | None = None) -> dict[str, Any]:
    return {"type": "object", "properties": {**required, **(optional or {})},
            "required": sorted(required), "additionalProperties": False}


_RUN_END = _object({"rows_read": _INT, "rows_committed": _INT, "rows_quarantined": _INT,
                    "attempts": _INT, "failure_class": _MAYBE_TEXT, "message": _MAYBE_TEXT})


_INCIDENT = _object({"incident": _INT, "title": _TEXT, "severity": _TEXT, "state": _TEXT,
                     "owner": _MAYBE_TEXT, "assignee": _MAYBE_TEXT, "due_at": _TIME,
                     "text": _MAYBE_TEXT, "change": _TEXT})
_ALERT = _object({"rule": _TEXT, "subject": _TEXT, "condition": _TEXT, "value": {"type": "number"},
                  "threshold": {"type": "number"}, "since": _TIME})


@dataclass(frozen=True)
class Kind:
    severity: Severity
    summary: str
    body: dict[str, Any]


KINDS: dict[str, Kind] = {
    "run.queued": Kind("info", "A run was asked for (schedule, trigger, retry) and waits in the queue.",
                       _object({"entry": _INT, "trigger": _TEXT, "full_refresh": {"type": "boolean"},
                                "streams": {"type": "array", "items": _TEXT}, "due_at": _TIME})),
    "run.started": Kind("info", "A worker (or `sync`) started the run.",
                        _object({"trigger": _TEXT, "revision": {"type": ["integer", "null"]}})),
    "run.succeeded": Kind("info", "The run ended with every stream loaded.", _RUN_END),
    "run.warning": Kind("warning", "The run loaded every stream and has something to say "
                        "(quarantined rows, an orphaned table, a zero-row anomaly...).", _RUN_END),
    "run.partial": Kind("error", "Some streams failed; the others committed.", _RUN_END),
    "run.failed": Kind("error", "The run failed; committed batches stay, the next run resumes.", _RUN_END),
    "run.interrupted": Kind("warning", "The run was stopped (a signal, a shutdown) at a batch.", _RUN_END),
    "run.cancelled": Kind("warning", "Someone cancelled the run.", _RUN_END),
    "run.crashed": Kind("error", "The run's process died (SIGKILL, out of memory, power) before "
                        "it could record its end.", _RUN_END),
    "attempt.failed": Kind("warning", "An attempt of a run failed; `retry_in_s` says when the "
                           "next one starts (null: none).",
                           _object({"number": _INT, "failure_class": _TEXT, "message": _TEXT,
                                    "retry_in_s": {"type": ["number", "null"]},
                                    "retry_at": {"type": ["string", "null"], "format": "date-time"}})),
    "stream.finished": Kind("info", "A stream of a run committed its last batch.",
                            _object({"table": _TEXT, "mode": _TEXT, "write": _TEXT,
                                     "rows_read": _INT, "rows_committed": _INT,
                                     "rows_quarantined": _INT, "bytes": _INT, "seconds": _SECONDS,
                                     "window": {"type": ["object", "null"], "description":
                                                "the checkpoints the run read from and to"}})),
    "stream.failed": Kind("error", "A stream of a run failed (the others went on).",
                          _object({"failure_class": _TEXT, "message": _TEXT})),
    "schema.changed": Kind("warning", "A stream's columns changed (added, widened, dropped).",
                           _object({"changes": {"type": "array", "items": _TEXT}})),
    "zero_rows.anomaly": Kind("warning", "A stream read 0 rows where its recent runs read many: "
                              "a full refresh fails (the table is kept), other reads warn.",
                              _object({"expected": _INT, "rows_read": _INT,
                                       "action": {"enum": ["warned", "failed"]}})),
    "volume.anomaly": Kind("warning", "A stream read a number of rows outside the band its last "
                           "runs taught (median ± anomaly_k·MAD; the same weekday's when there "
                           "are enough).", _object({"rows_read": _INT, "expected_low": _SECONDS,
                                                    "expected_high": _SECONDS, "median": _SECONDS,
                                                    "history": _INT})),
    "freshness.anomaly": Kind("warning", "A connection went longer between successful runs than "
                              "its last runs taught.", _object({"gap_s": _SECONDS, "expected_low_s": _SECONDS,
                                                                "expected_high_s": _SECONDS,
                                                                "median_s": _SECONDS, "history": _INT})),
    "freshness.breached": Kind("error", "A connection's data (or a stream's with its own SLA) "
                               "became older than its freshness SLA.",
                               _object({"freshness_s": _SECONDS, "sla_s": _SECONDS,
                                        "streams": {"type": "array", "items": _TEXT}})),
    "freshness.restored": Kind("info", "A connection's data is within its freshness SLA again.",
                               _object({"freshness_s": _SECONDS, "sla_s": _SECONDS,
                                        "streams": {"type": "array", "items": _TEXT}})),
    "rows.quarantined": Kind("warning", "A stream's run set rows aside instead of loading them.",
                             _object({"count": _INT, "table": _TEXT})),
    "worker.lost": Kind("warning", "A worker process died or went silent; its run is queued again.",
                        _object({"worker": _TEXT, "host": _TEXT, "pid": _INT, "note": _TEXT})),
    "alert.firing": Kind("error", "An alert rule's condition has held for its `for:`: it fires "
                         "(and, while it keeps firing, again every `repeat_every`). The event's "
                         "severity is the rule's.", _ALERT),
    "alert.resolved": Kind("info", "A firing alert rule's condition no longer holds.", _ALERT),
    "incident.opened": Kind("error", "An incident was opened (by hand or by a rule with "
                            "`action: incident`); the event's severity is the incident's.", _INCIDENT),
    "incident.acknowledged": Kind("info", "Someone took an open incident in hand.", _INCIDENT),
    "incident.updated": Kind("info", "An incident was assigned, noted, or its cause recurred "
                             "(`change` says which).", _INCIDENT),
    "incident.mitigated": Kind("info", "An incident's condition cleared; it waits for a person "
                               "to resolve it.", _INCIDENT),
    "incident.resolved": Kind("info", "A person resolved an incident, with a note.", _INCIDENT),
    "incident.reopened": Kind("warning", "A resolved incident was opened again.", _INCIDENT),
    "checkpoint.moved": Kind("warning", "Someone moved a stream's checkpoint (`state --set`, to a "
                             "cursor value) or reset it (`state --reset`); the next run reads from "
                             "there.", _object({"action": {"enum": ["set", "reset"]},
                                                "from": {"type": ["string", "number", "null"]},
                                                "to": _MAYBE_TEXT}, {"at": _TIME})),
    "config.applied": Kind("info", "A new config revision was applied to the store.",
                           _object({"revision": _INT, "origin": _TEXT})),
    "config.invalid": Kind("error", "An edit of syncline.yaml was refused; the last good revision "
                           "keeps running.", _object({"message": _TEXT})),
}


def run_end_kind(status: str) -> str:
    """The event kind of a run that ended with `status`."""
    kind = f"run.{status}"
    if kind not in KINDS:
        raise ValueError(f"no event kind for run status {status!r}")
    return kind


@dataclass(frozen=True)
class Event:
    kind: str
    body: dict[str, Any]
    connection: str | None = None
    run: int | None = None
    attempt: int | None = None
    stream: str | None = None
    region: str = "default"
    severity: Severity | None = None  # None: the kind's
    time: dt.datetime = field(default_factory=clock.now)

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"unknown event kind {self.kind!r}")

    @property
    def level(self) -> Severity:
        return self.severity or KINDS[self.kind].severity
