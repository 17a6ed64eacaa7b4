"""Plain records the metadata store takes and returns: stream stats and runs."""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from syncline.store.models import Run, StreamRun

#: The one vocabulary of run outcomes, used verbatim in JSON, events, metric labels and pages.
RUN_STATUSES = frozenset({
    "queued", "running", "succeeded", "warning", "partial", "failed", "interrupted", "cancelled",
    "crashed",
})
#: The one vocabulary of connection health (``syncline status``).
HEALTH_STATES = frozenset({
    "healthy", "warning", "late", "failing", "running", "queued", "paused", "never_run",
})
RUN_TRIGGERS = frozenset({"manual", "schedule", "retry", "demo"})
ATTEMPT_STATUSES = frozenset({"running", "succeeded", "failed"})
#: `orphaned`: a stream with a loaded table that neither the source nor the connection has any more
STREAM_STATUSES = frozenset({"succeeded", "failed", "skipped", "orphaned"})


@dataclass
class StreamStats:
    """What one stream did during one run."""

    stream: str
    table_name: str
    mode: str
    write: str
    status: str
    rows_read: int
    rows_committed: int
    rows_quarantined: int
    bytes: int
    duration_s: float
    started_at: dt.datetime
    ended_at: dt.datetime
    schema_changes: list[str] = field(default_factory=list)
    message: str | None = None
    #: an API source's requests for the stream: sent, retried, by status, time waited
    requests: dict[str, Any] | None = None
    #: a failed stream's error class (its signature is kept, not the class itself)
    failure_class: str | None = None


@dataclass(frozen=True)
class RunRecord:
    """One row of ``runs`` with the streams it recorded, oldest stream first."""

    id: int
    connection: str
    status: str
    trigger: str
    started_at: dt.datetime
    ended_at: dt.datetime | None
    pid: int
    host: str
    failure_class: str | None
    failure_message: str | None
    rows_read: int
    rows_committed: int
    rows_quarantined: int
    attempts: int
    streams: list[StreamStats] = field(default_factory=list)
    revision: int | None = None


def check_aware(kind: str, value: dt.datetime) -> dt.datetime:
    """Return ``value`` if it is a timezone-aware datetime, else raise ``ValueError``."""
    if not isinstance(value, dt.datetime) or value.utcoffset() is None:
        raise ValueError(f"{kind} must be a timezone-aware datetime, not {value!r}")
    return value


def check_choice(kind: str, value: str, allowed: frozenset[str]) -> str:
    """Return ``value`` if it is one of ``allowed``, else raise ``ValueError``."""
    if value not in allowed:
        raise ValueError(f"{kind} must be one of {', '.join(sorted(allowed))}, not {value!r}")
    return value


def stats_from_row(row: StreamRun) -> StreamStats:
    return StreamStats(
        stream=row.stream,
        table_name=row.table_name,
        mode=row.mode,
        write=row.write,
        status=row.status,
        rows_read=row.rows_read,
        rows_committed=row.rows_committed,
        rows_quarantined=row.rows_quarantined,
        bytes=row.bytes,
        duration_s=row.duration_s,
        started_at=row.started_at,
        ended_at=row.ended_at,
        schema_changes=list(json.loads(row.schema_changes)),
        message=row.message,
        requests=json.loads(row.requests) if row.requests else None,
    )


def record_from_row(run: Run) -> RunRecord:
    return RunRecord(
        id=run.id,
        connection=run.connection,
        status=run.status,
        trigger=run.trigger,
        started_at=run.started_at,
        ended_at=run.ended_at,
        pid=run.pid,
        host=run.host,
        failure_class=run.failure_class,
        failure_message=run.failure_message,
        rows_read=run.rows_read,
        rows_committed=run.rows_committed,
        rows_quarantined=run.rows_quarantined,
        attempts=run.attempts,
        streams=[stats_from_row(s) for s in run.stream_rows],
        revision=run.revision,
    )
