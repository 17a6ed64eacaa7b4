"""SQLAlchemy ORM tables of the metadata store; migrations/versions must match them."""

from __future__ import annotations

import datetime as dt
import functools
from collections.abc import Callable
from typing import Any

from sqlalchemy import DateTime, Dialect, ForeignKey, Index, Integer, MetaData, String, Text
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship
from sqlalchemy.types import BigInteger, Float, TypeDecorator

NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class UTCDateTime(TypeDecorator[dt.datetime]):
    """A timestamp stored as UTC and always read back timezone-aware UTC.

    Naive datetimes are refused: their zone is unknown. SQLite drops tzinfo, so
    values are written there as naive UTC and made aware again on read.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: Any, dialect: Dialect) -> dt.datetime | None:
        if value is None:
            return None
        if not isinstance(value, dt.datetime) or value.tzinfo is None:
            raise ValueError(f"metadata store timestamps must be timezone-aware, got {value!r}")
        utc = value.astimezone(dt.UTC)
        return utc.replace(tzinfo=None) if dialect.name == "sqlite" else utc

    def bind_processor(self, dialect: Dialect) -> Callable[[Any], Any] | None:
        """The conversion above, remembered for recent values: a scheduler tick writes
        thousands of rows that share a few timestamps (the tick's time, the due times)."""
        convert = super().bind_processor(dialect)
        if convert is None:
            return None
        remembered = functools.lru_cache(maxsize=512)(convert)

        def process(value: Any) -> Any:
            return None if value is None else remembered(value)
        return process

    def process_result_value(self, value: Any, dialect: Dialect) -> dt.datetime | None:
        if value is None:
            return None
        assert isinstance(value, dt.datetime)
        if value.tzinfo is None:
            return value.replace(tzinfo=dt.UTC)
        return value.astimezone(dt.UTC)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


class Run(Base):
    __tablename__ = "runs"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    connection: Mapped[str] = mapped_column(String(255), index=True)
    status: Mapped[str] = mapped_column(String(16), index=True)
    trigger: Mapped[str] = mapped_column(String(16))
    started_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    ended_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    pid: Mapped[int] = mapped_column(Integer)
    host: Mapped[str] = mapped_column(String(255))
    failure_class: Mapped[str | None] = mapped_column(String(32))
    failure_message: Mapped[str | None] = mapped_column(Text)
    rows_read: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")
    rows_committed: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")
    rows_quarantined: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")
    attempts: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    #: the config revision the run ran (None: a run recorded before revisions existed)
    revision: Mapped[int | None] = mapped_column(Integer)
    #: the region of its connection when it started (events carry it)
    region: Mapped[str] = mapped_column(String(64), default="default", server_default="default")
    #: how long it ran, once it ended (metrics add these)
    seconds: Mapped[float | None] = mapped_column(Float)

    attempt_rows: Mapped[list[Attempt]] = relationship(
        back_populates="run", order_by="Attempt.id", cascade="all, delete-orphan"
    )
    stream_rows: Mapped[list[StreamRun]] = relationship(
        back_populates="run", order_by="StreamRun.id", cascade="all, delete-orphan"
    )


class Attempt(Base):
    __tablename__ = "attempts"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    run_id: Mapped[int] = mapped_column(ForeignKey("runs.id"), index=True)
    number: Mapped[int] = mapped_column(Integer)
    started_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    ended_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    status: Mapped[str] = mapped_column(String(16))
    failure_class: Mapped[str | None] = mapped_column(String(32))
    failure_message: Mapped[str | None] = mapped_column(Text)
    #: a failed attempt's root-cause signature (failure_signature.py)
    signature: Mapped[str | None] = mapped_column(String(16), index=True)

    run: Mapped[Run] = relationship(back_populates="attempt_rows")


class StreamRun(Base):
    __tablename__ = "stream_runs"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    run_id: Mapped[int] = mapped_column(ForeignKey("runs.id"), index=True)
    stream: Mapped[str] = mapped_column(String(255))
    table_name: Mapped[str] = mapped_column(String(255))
    mode: Mapped[str] = mapped_column(String(32))
    write: Mapped[str] = mapped_column(String(32))
    status: Mapped[str] = mapped_column(String(16))
    rows_read: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")
    rows_committed: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")
    rows_quarantined: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")
    bytes: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")
    duration_s: Mapped[float] = mapped_column(Float, default=0.0, server_default="0")
    started_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    ended_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    schema_changes: Mapped[str] = mapped_column(Text, default="[]", server_default="[]")
    message: Mapped[str | None] = mapped_column(Text)
    #: an API source's request figures for the stream, as JSON (None: not an API source)
    requests: Mapped[str | None] = mapped_column(Text)
    #: a failed stream's root-cause signature (failure_signature.py)
    signature: Mapped[str | None] = mapped_column(String(16), index=True)

    run: Mapped[Run] = relationship(back_populates="stream_rows")


class StreamSchema(Base):
    __tablename__ = "stream_schemas"
    __table_args__ = (Index("ix_stream_schemas_connection_stream", "connection", "stream"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    connection: Mapped[str] = mapped_column(String(255))
    stream: Mapped[str] = mapped_column(String(255))
    fingerprint: Mapped[str] = mapped_column(String(64))
    schema_json: Mapped[str] = mapped_column(Text)
    run_id: Mapped[int | None] = mapped_column(ForeignKey("runs.id"))
    seen_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())


class Checkpoint(Base):
    __tablename__ = "checkpoints"

    connection: Mapped[str] = mapped_column(String(255), primary_key=True)
    stream: Mapped[str] = mapped_column(String(255), primary_key=True)
    state_json: Mapped[str] = mapped_column(Text)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())


class Lease(Base):
    """Who may run a connection now; ``token`` only ever grows (the fencing token)."""

    __tablename__ = "leases"

    connection: Mapped[str] = mapped_column(String(255), primary_key=True)
    token: Mapped[int] = mapped_column(BigInteger)
    holder_host: Mapped[str | None] = mapped_column(String(255))
    holder_pid: Mapped[int | None] = mapped_column(Integer)
    run_id: Mapped[int | None] = mapped_column(Integer)
    acquired_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    heartbeat_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())


class ConfigRevision(Base):
    """One applied version of the workspace file: numbered, hashed, `${env:...}` unresolved."""

    __tablename__ = "config_revisions"

    number: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    digest: Mapped[str] = mapped_column(String(64))
    document: Mapped[str] = mapped_column(Text)
    origin: Mapped[str] = mapped_column(Text)
    applied_by: Mapped[str] = mapped_column(String(255))
    applied_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())


class QueueEntry(Base):
    """A run asked for and not yet finished: the store's run queue."""

    __tablename__ = "run_queue"
    __table_args__ = (Index("ix_run_queue_state_connection", "state", "connection"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    connection: Mapped[str] = mapped_column(String(255))
    trigger: Mapped[str] = mapped_column(String(16))
    options: Mapped[str] = mapped_column(Text, default="{}", server_default="{}")
    state: Mapped[str] = mapped_column(String(16))
    queued_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    not_before: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    worker: Mapped[str | None] = mapped_column(String(255))
    claimed_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    run_id: Mapped[int | None] = mapped_column(Integer)
    ended_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    note: Mapped[str | None] = mapped_column(Text)
    #: `syncline cancel` asked the worker running it to stop it (who, and when)
    cancel_requested_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    cancel_requested_by: Mapped[str | None] = mapped_column(String(255))
    #: only workers of this region claim it (regions.py)
    region: Mapped[str] = mapped_column(String(64), default="default", server_default="default")


class Leader(Base):
    """Who leads a singleton role (the scheduler) until when; `term` grows with each new holder."""

    __tablename__ = "leaders"

    role: Mapped[str] = mapped_column(String(64), primary_key=True)
    holder: Mapped[str] = mapped_column(String(255))
    term: Mapped[int] = mapped_column(BigInteger)
    expires_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())


class ScheduleState(Base):
    """Where the scheduler is for one connection: when it is next due, what it last queued."""

    __tablename__ = "schedule_state"

    connection: Mapped[str] = mapped_column(String(255), primary_key=True)
    schedule: Mapped[str] = mapped_column(String(255))
    next_due_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    last_due_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    last_entry: Mapped[int | None] = mapped_column(Integer)


class Worker(Base):
    """A worker process: where it runs, what it takes runs from, what it runs now, when it last
    said so."""

    __tablename__ = "workers"

    name: Mapped[str] = mapped_column(String(255), primary_key=True)
    host: Mapped[str] = mapped_column(String(255))
    pid: Mapped[int] = mapped_column(Integer)
    region: Mapped[str] = mapped_column(String(64))
    queue: Mapped[str] = mapped_column(String(64))
    state: Mapped[str] = mapped_column(String(16))  # idle | running | stopped | crashed | lost
    started_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    heartbeat_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    run_id: Mapped[int | None] = mapped_column(Integer)
    connection: Mapped[str | None] = mapped_column(String(255))
    note: Mapped[str | None] = mapped_column(Text)


class Pause(Base):
    """A paused connection: runtime state, not part of any config revision."""

    __tablename__ = "pauses"

    connection: Mapped[str] = mapped_column(String(255), primary_key=True)
    paused_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    paused_by: Mapped[str] = mapped_column(String(255))


class Budget(Base):
    """A token bucket kept in the store, so every process drawing on it shares one budget."""

    __tablename__ = "budgets"

    name: Mapped[str] = mapped_column(String(255), primary_key=True)
    level: Mapped[float] = mapped_column(Float)
    updated: Mapped[float] = mapped_column(Float)  # seconds since the epoch


class EventRow(Base):
    """One event of the append-only event log (event_kinds.py names the kinds)."""

    __tablename__ = "events"
    __table_args__ = (Index("ix_events_connection_id", "connection", "id"),
                      Index("ix_events_kind_id", "kind", "id"), Index("ix_events_time", "time"))

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    time: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    kind: Mapped[str] = mapped_column(String(64))
    severity: Mapped[str] = mapped_column(String(16))
    connection: Mapped[str | None] = mapped_column(String(255))
    run_id: Mapped[int | None] = mapped_column(Integer)
    attempt: Mapped[int | None] = mapped_column(Integer)
    stream: Mapped[str | None] = mapped_column(String(255))
    region: Mapped[str] = mapped_column(String(64))
    body: Mapped[str] = mapped_column(Text)


class RunLogRow(Base):
    """One line a run logged: the engine's, a source's HTTP request summary, a tap's stderr."""

    __tablename__ = "run_logs"
    __table_args__ = (Index("ix_run_logs_run_id", "run_id", "id"), Index("ix_run_logs_time", "time"))

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    run_id: Mapped[int] = mapped_column(Integer)
    attempt: Mapped[int | None] = mapped_column(Integer)
    stream: Mapped[str | None] = mapped_column(String(255))
    time: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    level: Mapped[str] = mapped_column(String(16))
    logger: Mapped[str] = mapped_column(String(128))
    message: Mapped[str] = mapped_column(Text)
    fields: Mapped[str | None] = mapped_column(Text)


class RunTotal(Base):
    """What a connection's ended runs of one status add up to, kept as they end (metrics read
    these few rows, not every run; retention leaves them, so counters only grow)."""

    __tablename__ = "run_totals"

    connection: Mapped[str] = mapped_column(String(255), primary_key=True)
    region: Mapped[str] = mapped_column(String(64), primary_key=True)
    status: Mapped[str] = mapped_column(String(16), primary_key=True)
    runs: Mapped[int] = mapped_column(BigInteger, default=0)
    rows_read: Mapped[int] = mapped_column(BigInteger, default=0)
    rows_committed: Mapped[int] = mapped_column(BigInteger, default=0)
    rows_quarantined: Mapped[int] = mapped_column(BigInteger, default=0)
    attempts: Mapped[int] = mapped_column(BigInteger, default=0)
    seconds: Mapped[float] = mapped_column(Float, default=0.0)
    #: runs that took at most each of figures.BUCKETS seconds, as JSON counts
    buckets: Mapped[str] = mapped_column(Text, default="[]")
    last_run: Mapped[int] = mapped_column(Integer, default=0)
    last_ended: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())


class OutboxRow(Base):
    """One notification for one channel: written before it is sent, then its delivery's fate
    (pending → delivered, or failed once its retry window is over)."""

    __tablename__ = "outbox"
    __table_args__ = (Index("uq_outbox_channel_key", "channel", "key", unique=True),
                      Index("ix_outbox_status_channel_id", "status", "channel", "id"),
                      Index("ix_outbox_created", "created"))

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    channel: Mapped[str] = mapped_column(String(255))
    key: Mapped[str] = mapped_column(String(255))
    kind: Mapped[str] = mapped_column(String(64))
    created: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    payload: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(16))
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    last_tried: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    last_error: Mapped[str | None] = mapped_column(Text)
    delivered_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())


class AlertState(Base):
    """A rule's condition holding for one subject (a connection, a failure group, or '' for the
    workspace): pending until it has held for the rule's `for:`, then firing. Gone: inactive."""

    __tablename__ = "alert_states"

    rule: Mapped[str] = mapped_column(String(255), primary_key=True)
    subject: Mapped[str] = mapped_column(String(255), primary_key=True)
    state: Mapped[str] = mapped_column(String(16))
    since: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    fired_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    value: Mapped[float] = mapped_column(Float)
    last_notified: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    #: how many firing notifications it has sent (the first, then repeats); 0: not yet told
    #: (waiting for its group, or silenced)
    told: Mapped[int] = mapped_column(Integer, default=0)
    #: what it is told together with: the rule's other subjects of the same group (for a
    #: connection down, its failure's signature)
    group_key: Mapped[str] = mapped_column(String(64), default="", server_default="")


class AlertCursor(Base):
    """How far an event rule has read the event log: the last event id it forwarded or passed."""

    __tablename__ = "alert_cursors"

    rule: Mapped[str] = mapped_column(String(255), primary_key=True)
    event_id: Mapped[int] = mapped_column(Integer)


class Silence(Base):
    """A person's "not now": no notification of a connection, a rule, or a rule for a connection,
    until `ends` (or until it is expired early)."""

    __tablename__ = "silences"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    connection: Mapped[str | None] = mapped_column(String(255))
    rule: Mapped[str | None] = mapped_column(String(255))
    starts: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    ends: Mapped[dt.datetime] = mapped_column(UTCDateTime(), index=True)
    reason: Mapped[str] = mapped_column(Text)
    created_by: Mapped[str] = mapped_column(String(255))


class Incident(Base):
    """A tracked problem: open → acknowledged → mitigated → resolved (and reopened), owned by a
    team, due `incidents.due` after it opened. `dedup_key` joins what recurs to the incident
    still unresolved with the same key (one per connection and failure group, or rule)."""

    __tablename__ = "incidents"
    __table_args__ = (Index("ix_incidents_state", "state"), Index("ix_incidents_dedup_key", "dedup_key"))

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    title: Mapped[str] = mapped_column(Text)
    severity: Mapped[str] = mapped_column(String(16))
    state: Mapped[str] = mapped_column(String(16))
    owner: Mapped[str | None] = mapped_column(String(255))
    assignee: Mapped[str | None] = mapped_column(String(255))
    connection: Mapped[str | None] = mapped_column(String(255))
    failure_group: Mapped[str | None] = mapped_column(String(64))
    rule: Mapped[str | None] = mapped_column(String(255))
    dedup_key: Mapped[str | None] = mapped_column(String(512))
    opened_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    acknowledged_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    mitigated_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    resolved_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    due_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    resolution: Mapped[str | None] = mapped_column(Text)
    opened_by: Mapped[str] = mapped_column(String(255))


class IncidentEntry(Base):
    """One line of an incident's timeline: every change, note and recurrence, with who and when."""

    __tablename__ = "incident_timeline"
    __table_args__ = (Index("ix_incident_timeline_incident_id", "incident_id", "id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    incident_id: Mapped[int] = mapped_column(ForeignKey("incidents.id"))
    time: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    kind: Mapped[str] = mapped_column(String(32))
    by: Mapped[str] = mapped_column(String(255))
    text: Mapped[str | None] = mapped_column(Text)
    data: Mapped[str | None] = mapped_column(Text)


class Ticket(Base):
    """A tracker channel following an incident: its ticket there (`ref`: an issue number, a Jira
    key), once filed."""

    __tablename__ = "tickets"

    channel: Mapped[str] = mapped_column(String(255), primary_key=True)
    incident: Mapped[int] = mapped_column(Integer, primary_key=True)
    ref: Mapped[str | None] = mapped_column(String(255))
    url: Mapped[str | None] = mapped_column(Text)
