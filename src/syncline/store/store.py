"""MetadataStore: runs, attempts, stream stats, schema history and checkpoint mirrors."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import socket
import sys
from collections.abc import Iterable
from dataclasses import asdict
from pathlib import Path
from typing import Any, Self, TextIO

from sqlalchemy import delete, func, make_url, select, text, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session, selectinload, sessionmaker

from syncline.errors import InternalError
from syncline.event_kinds import Event, run_end_kind
from syncline.failure_signature import remembered
from syncline.redact import redact
from syncline.store.alerting_parts import AlertingParts
from syncline.store.backup import backup, restore
from syncline.store.budgets import StoreBucket
from syncline.store.db import mask_url, open_engine
from syncline.store.events import Emitter, EventLog
from syncline.store.failures import FailureGroupRow, failure_groups, unsigned_failures
from syncline.store.figures import Figures, count_run, last_successes, stream_snapshots
from syncline.store.figures import read as read_figures
from syncline.store.leader import LeaderLease
from syncline.store.leases import Leases, now_utc, pid_alive
from syncline.store.models import Attempt, Checkpoint, Run, StreamRun, StreamSchema
from syncline.store.pauses import Pauses
from syncline.store.queue import StoreQueue
from syncline.store.records import (
    ATTEMPT_STATUSES,
    RUN_STATUSES,
    RUN_TRIGGERS,
    STREAM_STATUSES,
    RunRecord,
    StreamStats,
    check_aware,
    check_choice,
    record_from_row,
)
from syncline.store.retention import vacuum
from syncline.store.revisions import Revisions
from syncline.store.run_logs import RunLogs
from syncline.store.schedules import ScheduleStates
from syncline.store.workers import Workers

__all__ = ["CRASH_MESSAGE", "MetadataStore", "RunRecord", "StreamStats"]

CRASH_MESSAGE = (
    "the process running this sync died (killed or crashed); "
    "the next run resumes from the last committed checkpoint"
)
SUCCESS_STATUSES = ("succeeded", "warning")


def _seconds(run: Run) -> float | None:
    return max(0.0, (run.ended_at - run.started_at).total_seconds()) if run.ended_at else None


def _signature(status: str, failure_class: str | None, message: str | None) -> str | None:
    """A failure's root-cause key, kept with it (failure_signature.py)."""
    if status != "failed" or not message:
        return None
    return remembered(failure_class or "internal", message).key


def _redacted(text: str | None) -> str | None:
    """Stored error texts hold no secret and no row value (see redact.py)."""
    return redact(text) if text else text


def run_ended(run: Run) -> Event:
    """The event of a run that ended as its row says."""
    return Event(run_end_kind(run.status), {
        "rows_read": run.rows_read, "rows_committed": run.rows_committed,
        "rows_quarantined": run.rows_quarantined, "attempts": run.attempts,
        "failure_class": run.failure_class, "message": run.failure_message},
        connection=run.connection, run=run.id, region=run.region or "default")


def canonical_json(value: Any) -> str:
    """JSON with sorted keys and no insignificant whitespace: equal values, equal text."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


class MetadataStore(AlertingParts):
    """The metadata database of a workspace; migrated to the latest schema on open."""

    def __init__(self, url: str, spool: Path | None = None) -> None:
        """`spool`: where events the store cannot take now wait for the next process
        (default: beside a SQLite store's file; none for a server's)."""
        self.url = mask_url(url)
        self._engine = open_engine(url)
        self._session = sessionmaker(self._engine, expire_on_commit=False)
        database = make_url(url).database if url.startswith("sqlite") else None
        if spool is None and database and database != ":memory:":
            spool = Path(database).parent
        #: the one writer of events of this process's uses of the store (store/events.py)
        self.emitter = Emitter(EventLog(self._engine), spool)

    def __repr__(self) -> str:
        return f"MetadataStore({self.url!r})"

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self.emitter.close()
        self._engine.dispose()

    def leases(self, timeout: dt.timedelta) -> Leases:
        """Lease management on the same database (see store/leases.py)."""
        return Leases(self._engine, timeout)

    def backup(self, out: TextIO) -> dict[str, int]:
        """Every table as JSON lines (see store/backup.py); rows per table."""
        return backup(self._engine, out)

    def restore(self, lines: Iterable[str]) -> dict[str, int]:
        """Load a backup into this store, which must be empty; rows per table."""
        return restore(self._engine, lines)

    def revisions(self) -> Revisions:
        """The config revisions applied to this store (see store/revisions.py)."""
        return Revisions(self._engine, self.emitter)

    def queue(self) -> StoreQueue:
        """The run queue kept in this store (see store/queue.py)."""
        return StoreQueue(self._engine, self.emitter)

    def vacuum(self, older_than: dt.timedelta, now: dt.datetime | None = None) -> dict[str, int]:
        """Forget what ended more than `older_than` ago (see store/retention.py); rows deleted
        per table."""
        return vacuum(self._engine, (now or now_utc()) - older_than)

    def figures(self) -> Figures:
        """What metrics are made of, in a few aggregate queries (see store/figures.py)."""
        return read_figures(self._engine)

    def failure_groups(self, since: dt.datetime) -> list[FailureGroupRow]:
        """Failures since `since` grouped by their kept signature (see store/failures.py)."""
        return failure_groups(self._engine, since)

    def failures(self, since: dt.datetime) -> list[tuple[int, str, dt.datetime, str, str]]:
        """Failures since `since` kept without a signature (see store/failures.py)."""
        return unsigned_failures(self._engine, since)

    def run_logs(self) -> RunLogs:
        """The lines runs logged (see store/run_logs.py)."""
        return RunLogs(self._engine)

    def events(self) -> EventLog:
        """The event log (see store/events.py); write through `emitter`."""
        return EventLog(self._engine)

    def leader(self, role: str, holder: str, ttl: dt.timedelta) -> LeaderLease:
        """The lease of a singleton role such as the scheduler (see store/leader.py)."""
        return LeaderLease(self._engine, role, holder, ttl)

    def bucket(self, name: str, requests: int, per_seconds: float) -> StoreBucket:
        """A request budget every process shares (see store/budgets.py)."""
        return StoreBucket(self._engine, name, requests, per_seconds)

    def pauses(self) -> Pauses:
        """Paused connections (see store/pauses.py)."""
        return Pauses(self._engine)

    def workers(self) -> Workers:
        """The worker registry (see store/workers.py)."""
        return Workers(self._engine)

    def schedule_states(self) -> ScheduleStates:
        """Where the scheduler is for each connection (see store/schedules.py)."""
        return ScheduleStates(self._engine)

    # runs and attempts

    def start_run(self, connection: str, trigger: str = "manual", above: int = 0,
                  revision: int | None = None, region: str = "default") -> int:
        """A new run's id: the store's next, or past `above` (the newest run id the destination
        has load records of), so a new store's runs never share an id with older ones.
        `revision`: the config revision it runs; `region`: its connection's."""
        check_choice("trigger", trigger, RUN_TRIGGERS)
        run = Run(
            connection=connection,
            status="running",
            trigger=trigger,
            started_at=now_utc(),
            pid=os.getpid(),
            host=socket.gethostname(),
            rows_read=0,
            rows_committed=0,
            rows_quarantined=0,
            attempts=0,
            revision=revision,
            region=region,
        )
        with self._session.begin() as s:
            newest = s.scalar(select(func.max(Run.id))) or 0
            if newest < above:
                run.id = above + 1
            s.add(run)
            s.flush()
            if newest < above and s.get_bind().dialect.name == "postgresql":
                # an explicit id does not move the sequence: move it past this one
                s.execute(text("SELECT setval(pg_get_serial_sequence('runs', 'id'), :id)"),
                          {"id": run.id})
        self.emitter.emit(Event("run.started", {"trigger": trigger, "revision": revision},
                                connection=connection, run=run.id, region=region))
        return run.id

    def start_attempt(self, run_id: int, number: int) -> int:
        attempt = Attempt(run_id=run_id, number=number, started_at=now_utc(), status="running")
        with self._session.begin() as s:
            self._run(s, run_id)
            s.add(attempt)
            s.flush()
            return attempt.id

    def end_attempt(
        self,
        attempt_id: int,
        status: str,
        failure_class: str | None = None,
        failure_message: str | None = None,
    ) -> None:
        check_choice("attempt status", status, ATTEMPT_STATUSES)
        with self._session.begin() as s:
            attempt = s.get(Attempt, attempt_id)
            if attempt is None:
                raise InternalError(f"metadata store has no attempt {attempt_id}")
            attempt.status = status
            attempt.ended_at = now_utc()
            attempt.failure_class = failure_class
            attempt.failure_message = _redacted(failure_message)
            attempt.signature = _signature(status, failure_class, attempt.failure_message)

    def record_stream(self, run_id: int, stats: StreamStats) -> None:
        check_choice("stream status", stats.status, STREAM_STATUSES)
        check_aware("started_at", stats.started_at)
        check_aware("ended_at", stats.ended_at)
        with self._session.begin() as s:
            self._run(s, run_id)
            fields = asdict(stats)
            fields["schema_changes"] = json.dumps([str(c) for c in stats.schema_changes])
            fields["duration_s"] = float(stats.duration_s)
            fields["message"] = _redacted(stats.message)
            fields["signature"] = _signature(stats.status, fields.pop("failure_class"), fields["message"])
            fields["requests"] = json.dumps(stats.requests, sort_keys=True) if stats.requests else None
            s.add(StreamRun(run_id=run_id, **fields))

    def end_run(
        self,
        run_id: int,
        status: str,
        *,
        rows_read: int,
        rows_committed: int,
        rows_quarantined: int,
        attempts: int,
        failure_class: str | None = None,
        failure_message: str | None = None,
    ) -> None:
        check_choice("run status", status, RUN_STATUSES - {"running"})
        with self._session.begin() as s:
            run = self._run(s, run_id)
            run.status = status
            run.ended_at = now_utc()
            run.seconds = _seconds(run)
            run.rows_read = rows_read
            run.rows_committed = rows_committed
            run.rows_quarantined = rows_quarantined
            run.attempts = attempts
            run.failure_class = failure_class
            run.failure_message = _redacted(failure_message)
            count_run(s, run, +1)
            ended = run_ended(run)
        self.emitter.emit(ended)

    def overrule(self, run_id: int, status: str, failure_class: str | None, message: str) -> None:
        """Say why a run the service stopped ended (cancelled, past its deadline, killed): the
        engine ended it as interrupted, or it did not end at all."""
        check_choice("run status", status, RUN_STATUSES - {"running"})
        with self._session.begin() as s:
            run = self._run(s, run_id)
            if run.ended_at is not None and run.status != "running":
                count_run(s, run, -1)  # counted as it ended; counted again as it is now
            run.status, run.failure_class, run.failure_message = status, failure_class, redact(message)
            if run.ended_at is None:
                run.ended_at = now_utc()
                run.seconds = _seconds(run)
            count_run(s, run, +1)
            ended = run_ended(run)
        self.emitter.emit(ended)

    @staticmethod
    def _run(s: Session, run_id: int) -> Run:
        run = s.get(Run, run_id)
        if run is None:
            raise InternalError(f"metadata store has no run {run_id}")
        return run

    # reading runs

    def runs(self, connection: str | None = None, limit: int = 20) -> list[RunRecord]:
        """Runs newest first, with their streams."""
        q = select(Run).options(selectinload(Run.stream_rows)).order_by(Run.id.desc()).limit(limit)
        if connection is not None:
            q = q.where(Run.connection == connection)
        with self._session() as s:
            return [record_from_row(r) for r in s.scalars(q)]

    def run(self, run_id: int) -> RunRecord | None:
        """One run with its streams, or None when there is no such run."""
        q = select(Run).options(selectinload(Run.stream_rows)).where(Run.id == run_id)
        with self._session() as s:
            run = s.scalars(q).first()
            return record_from_row(run) if run is not None else None

    def attempts(self, run_id: int) -> list[dict[str, Any]]:
        """The attempts of a run, first first: number, status, times and failure."""
        q = select(Attempt).where(Attempt.run_id == run_id).order_by(Attempt.number)
        with self._session() as s:
            return [
                {"number": a.number, "status": a.status, "started_at": a.started_at,
                 "ended_at": a.ended_at, "failure_class": a.failure_class,
                 "failure_message": a.failure_message}
                for a in s.scalars(q)
            ]

    def last_started(self, connections: list[str]) -> dict[str, dt.datetime]:
        """When the newest run of each connection started (those that ran), in one query."""
        found: dict[str, dt.datetime] = {}
        with self._session() as s:
            for start in range(0, len(connections), 500):
                part = connections[start:start + 500]
                for name, at in s.execute(select(Run.connection, func.max(Run.started_at))
                                          .where(Run.connection.in_(part)).group_by(Run.connection)):
                    found[name] = at
        return found

    def successes(self, connection: str, since: dt.datetime) -> list[tuple[dt.datetime, dt.datetime]]:
        """(started, ended) of the connection's successes since `since` (see store/figures.py)."""
        return last_successes(self._engine, connection, since)

    def stream_snapshots(self, connection: str) -> dict[str, dt.datetime]:
        """When the read of each stream's last successful load began (see store/figures.py)."""
        return stream_snapshots(self._engine, connection)

    def last_run(self, connection: str) -> RunRecord | None:
        found = self.runs(connection, limit=1)
        return found[0] if found else None

    def last_success(self, connection: str) -> RunRecord | None:
        """The newest run that committed its data: status succeeded or warning."""
        q = (
            select(Run)
            .options(selectinload(Run.stream_rows))
            .where(Run.connection == connection, Run.status.in_(SUCCESS_STATUSES))
            .order_by(Run.id.desc())
            .limit(1)
        )
        with self._session() as s:
            run = s.scalars(q).first()
            return record_from_row(run) if run is not None else None

    def reap_stale_runs(self) -> int:
        """Mark runs of dead processes on this host as crashed; return how many."""
        if sys.platform == "win32":  # os.kill(pid, 0) would terminate the process there
            return 0
        me, host, now = os.getpid(), socket.gethostname(), now_utc()
        with self._session.begin() as s:
            q = select(Run).where(Run.status == "running", Run.host == host, Run.pid != me)
            dead = [r for r in s.scalars(q) if r.pid > 0 and not pid_alive(r.pid)]
            for run in dead:
                run.status = "crashed"
                run.ended_at = now
                run.seconds = _seconds(run)
                run.failure_class = "internal"
                run.failure_message = CRASH_MESSAGE
                count_run(s, run, +1)
            crashed = [run_ended(r) for r in dead]
            if dead:
                s.execute(
                    update(Attempt)
                    .where(Attempt.run_id.in_([r.id for r in dead]), Attempt.status == "running")
                    .values(
                        status="failed",
                        ended_at=now,
                        failure_class="internal",
                        failure_message=CRASH_MESSAGE,
                    )
                )
        for event in crashed:
            self.emitter.emit(event)
        return len(dead)

    def crashed_runs(self, connection: str, limit: int = 5) -> list[int]:
        """Ids of the newest runs of ``connection`` whose process died before recording them."""
        q = (select(Run.id).where(Run.connection == connection, Run.status == "crashed")
             .order_by(Run.id.desc()).limit(limit))
        with self._session() as s:
            return list(s.scalars(q))

    def set_committed(self, run_id: int, rows_committed: int, rows_quarantined: int) -> None:
        """Record what a run published, as counted from the destination's load records."""
        with self._session.begin() as s:
            run = self._run(s, run_id)
            run.rows_committed = rows_committed
            run.rows_quarantined = rows_quarantined

    # schemas and checkpoints

    def record_schema(
        self, connection: str, stream: str, schema_json: dict[str, Any], run_id: int | None
    ) -> bool:
        """Store the schema if it differs from the latest one seen; True when it did."""
        text = canonical_json(schema_json)
        fingerprint = hashlib.sha256(text.encode("utf-8")).hexdigest()
        with self._session.begin() as s:
            latest = s.scalars(
                select(StreamSchema.fingerprint)
                .where(StreamSchema.connection == connection, StreamSchema.stream == stream)
                .order_by(StreamSchema.id.desc())
                .limit(1)
            ).first()
            if latest == fingerprint:
                return False
            s.add(
                StreamSchema(
                    connection=connection,
                    stream=stream,
                    fingerprint=fingerprint,
                    schema_json=text,
                    run_id=run_id,
                    seen_at=now_utc(),
                )
            )
            return True

    def latest_schema(self, connection: str, stream: str) -> dict[str, Any] | None:
        with self._session() as s:
            text = s.scalars(
                select(StreamSchema.schema_json)
                .where(StreamSchema.connection == connection, StreamSchema.stream == stream)
                .order_by(StreamSchema.id.desc())
                .limit(1)
            ).first()
        if text is None:
            return None
        value: dict[str, Any] = json.loads(text)
        return value

    def mirror_checkpoint(self, connection: str, stream: str, state: dict[str, Any] | None) -> None:
        """Copy a stream's checkpoint for display; ``None`` removes it."""
        where = (Checkpoint.connection == connection, Checkpoint.stream == stream)
        with self._session.begin() as s:
            if state is None:
                s.execute(delete(Checkpoint).where(*where))
                return
            values = {
                "connection": connection,
                "stream": stream,
                "state_json": json.dumps(state, sort_keys=True, default=str),
                "updated_at": now_utc(),
            }
            dialect = s.get_bind().dialect.name
            if dialect in ("sqlite", "postgresql"):
                ins = (sqlite.insert if dialect == "sqlite" else postgresql.insert)(Checkpoint)
                s.execute(
                    ins.values(**values).on_conflict_do_update(
                        index_elements=["connection", "stream"],
                        set_={
                            "state_json": values["state_json"],
                            "updated_at": values["updated_at"],
                        },
                    )
                )
            else:
                s.merge(Checkpoint(**values))

    def checkpoints(self, connection: str) -> dict[str, dict[str, Any]]:
        with self._session() as s:
            rows = s.execute(
                select(Checkpoint.stream, Checkpoint.state_json)
                .where(Checkpoint.connection == connection)
                .order_by(Checkpoint.stream)
            ).all()
        return {stream: json.loads(state) for stream, state in rows}
