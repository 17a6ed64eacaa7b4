"""A run of a connection: attempts with retry, every stream loaded, everything recorded."""

from __future__ import annotations

import datetime as dt
import logging
import os
import threading
import time
from dataclasses import dataclass
from typing import Any

from syncline import clock
from syncline.backoff import full_jitter
from syncline.baselines import WINDOW
from syncline.config import ConnectionConfig, Workspace
from syncline.destinations.base import Destination
from syncline.engine import run_log, tracing
from syncline.engine.buffers import use_returning_pool
from syncline.engine.endpoints import check_selected, open_destination, open_source
from syncline.engine.narrate import Anomalies, Logged, Narrator
from syncline.engine.observer import RunObserver, StreamProgress
from syncline.engine.outcome import RunResult, run_status, streams_failed
from syncline.engine.plan import Orphan, StreamPlan, destination_schema
from syncline.engine.preflight import preflight
from syncline.engine.stream_load import LoadOptions, batch_rows, load_stream
from syncline.engine.watch import StopRequest
from syncline.errors import (
    ConcurrencyError,
    InternalError,
    Interrupted,
    RetriesSpent,
    SynclineError,
)
from syncline.failpoints import failpoint
from syncline.sources.base import Source
from syncline.store.leases import LeaseGrant, Leases
from syncline.store.store import MetadataStore, StreamStats
from syncline.stream import lookback_seconds

#: Seconds between copies of a stream's checkpoint into the metadata store (for display).
MIRROR_EVERY_S = 1.0

log = logging.getLogger(__name__)


def retry_delay(attempt: int) -> float:
    """The wait before the next attempt (`backoff`); SYNCLINE_RETRY_BASE_S scales it (tests use 0)."""
    return full_jitter(attempt, float(os.environ.get("SYNCLINE_RETRY_BASE_S", "1.0")), 60.0)


def lease_timeout() -> dt.timedelta:
    """How long a holder on another host may go without a heartbeat before takeover."""
    return dt.timedelta(seconds=float(os.environ.get("SYNCLINE_LEASE_TIMEOUT_S", "300")))


class Lease:
    """This run's lease: heartbeats at most every few seconds, on commits."""

    def __init__(self, leases: Leases, grant: LeaseGrant) -> None:
        self.leases = leases
        self.grant = grant
        self._last = 0.0

    def beat(self, force: bool = False) -> None:
        now = time.monotonic()
        if force or now - self._last >= 5.0:
            self.leases.heartbeat(self.grant)
            self._last = now


@dataclass(frozen=True)
class Flags:
    """What the user asked of this run on the command line."""

    full_refresh: bool = False
    #: a full refresh may empty or shrink a table as far as the source did
    allow_empty: bool = False
    #: `--since VALUE`: the one stream of the run is re-read from this cursor value
    since: str | None = None


def _max_shrink(conn: ConnectionConfig, stream: str, flags: Flags) -> float | None:
    if flags.allow_empty:
        return None
    own = (conn.streams or {}).get(stream)
    return own.max_shrink if own is not None and own.max_shrink is not None else conn.max_shrink


def _max_skew_s(conn: ConnectionConfig, stream: str) -> int:
    own = (conn.streams or {}).get(stream)
    return lookback_seconds(own.max_cursor_skew if own is not None and own.max_cursor_skew
                            is not None else conn.max_cursor_skew)


def _zero_rows(conn: ConnectionConfig, flags: Flags) -> str:
    """--allow-empty lets a full refresh publish 0 rows: the anomaly is reported, not fatal."""
    return "warn" if flags.allow_empty and conn.zero_rows in ("auto", "fail") else conn.zero_rows


def _load_totals(destination: Destination, schema: str, run_ids: list[int]
                 ) -> dict[tuple[int, str], tuple[int, int]]:
    """The destination's load records of these runs. Best effort: it runs after failures too,
    and must never hide the failure it follows (the counts are for display)."""
    try:
        return destination.load_totals(schema, run_ids)
    except Exception:
        return {}


def _stream_loads(destination: Destination, schema: str, run_id: int) -> dict[str, tuple[int, int]]:
    """Rows committed and quarantined per stream of this run, as the destination recorded them."""
    return {stream: counts for (_, stream), counts in _load_totals(destination, schema, [run_id]).items()}


class Runner:
    """Runs connections of one workspace against one metadata store."""

    def __init__(self, ws: Workspace, store: MetadataStore, observer: RunObserver | None = None,
                 revision: int | None = None, stop: threading.Event | None = None) -> None:
        self.ws = ws
        self.store = store
        self.revision = revision  # the config revision `ws` was built from, recorded on each run
        self.observer: RunObserver = Logged(observer or RunObserver())
        self.tell = Narrator(store, ws)  # the run's events and log lines
        self.stop = StopRequest(stop)  # set it to stop the run cleanly; no signal is touched
        self._dropped: dict[tuple[int, str], list[str]] = {}  # per run and stream, across attempts
        use_returning_pool()

    def _recent_rows(self, connection: str) -> dict[str, tuple[int, ...]]:
        """Rows read per stream in recent successful runs, newest first (one store query)."""
        history: dict[str, list[int]] = {}
        for r in self.store.runs(connection, limit=20):
            if r.status in ("succeeded", "warning"):
                for st in r.streams:
                    if st.status == "succeeded":
                        history.setdefault(st.stream, []).append(st.rows_read)
        return {stream: tuple(counts[:5]) for stream, counts in history.items()}

    def sync(
        self,
        connection: str,
        *,
        streams: list[str] | None = None,
        full_refresh: bool = False,
        trigger: str = "manual",
        allow_empty: bool = False,
        since: str | None = None,
    ) -> RunResult:
        self.ws.connection(connection)  # an unknown name is a configuration error, before any lease
        check_selected(self.ws, connection, streams)
        self.store.reap_stale_runs()
        leases = self.store.leases(lease_timeout())
        grant = leases.acquire(connection)  # refuses a second concurrent run, with its holder
        try:
            token, last_run = self._history(connection)
            grant = leases.advance(grant, token)  # above what the destination has seen
            run_id = self.store.start_run(connection, trigger, above=last_run,
                                          revision=self.revision, region=self.ws.region(connection))
            leases.set_run(grant, run_id)
            if grant.store_behind is not None:
                self.observer.warning(
                    f"the metadata store had no record of this connection's runs up to fencing "
                    f"token {grant.store_behind} (a new or lost store): the run continues from "
                    "the checkpoints in the destination, which are the truth")
            with run_log.running(self.store.run_logs(), run_id), \
                    tracing.span("run", connection=connection, run=run_id, trigger=trigger) as traced:
                log.info("run %d of %s started (%s%s%s)", run_id, connection, trigger,
                         f", revision {self.revision}" if self.revision else "",
                         ", full refresh" if full_refresh else "")
                result = self._run(connection, run_id, Lease(leases, grant), streams,
                                   Flags(full_refresh, allow_empty, since))
                tracing.note(traced, status=result.status, rows_read=result.rows_read,
                             rows_committed=result.rows_committed, attempts=result.attempts)
                log.log(logging.INFO if result.status in ("succeeded", "warning") else logging.ERROR,
                        "run %d %s after %d attempt(s): %s rows read, %s committed%s", run_id,
                        result.status, result.attempts, f"{result.rows_read:,}",
                        f"{result.rows_committed:,}", f"; {result.error}" if result.error else "")
                return result
        finally:
            leases.release(grant)

    def _history(self, connection: str) -> tuple[int, int]:
        """(newest fencing token, newest run id) the destination holds for the connection; (0, 0)
        when it cannot be reached now (the run's attempt reports that)."""
        conn = self.ws.connection(connection)
        try:
            destination = open_destination(self.ws, conn.destination)
        except SynclineError:
            return 0, 0
        destination.wait_for_lock = False  # a glance: the attempt waits, and reports a held file
        try:
            return destination.history(destination_schema(connection, conn, destination), connection)
        except SynclineError:
            return 0, 0
        finally:
            destination.close()

    def _run(
        self,
        connection: str,
        run_id: int,
        lease: Lease,
        streams: list[str] | None,
        flags: Flags,
    ) -> RunResult:
        conn = self.ws.connection(connection)
        self.observer.run_started(connection, run_id)
        result = RunResult(run_id=run_id, connection=connection, status="running", attempts=0,
                           full_refresh=flags.full_refresh)
        done: dict[str, StreamProgress] = {}
        loads: dict[str, tuple[int, int]] = {}  # committed, quarantined per stream, as the destination counts them
        for number in range(1, conn.max_attempts + 1):
            result.attempts = number
            attempt_id = self.store.start_attempt(run_id, number)
            try:
                with run_log.within(attempt=number), tracing.span("attempt", number=number):
                    log.info("attempt %d started", number)
                    self._attempt(connection, run_id, lease, streams, flags, done, loads, result.failed,
                                  result.orphaned)
            except SynclineError as exc:
                exc.at(connection=connection)
                self.store.end_attempt(attempt_id, "failed", exc.failure_class, str(exc))
                result.error = exc
                if (exc.retryable and not isinstance(exc, RetriesSpent) and number < conn.max_attempts
                        and not self.stop.event.is_set()):
                    delay = retry_delay(number)
                    self.tell.attempt_failed(connection, run_id, number, exc, delay)
                    self.observer.attempt_failed(number, exc, delay)
                    if not self.stop.event.wait(delay):  # a stop signal cuts the backoff short
                        continue
                    result.error = Interrupted(
                        "stopped by a signal while the run waited to retry",
                        connection=connection, fix="run the sync again: it resumes from the last "
                        "committed checkpoint")
                    break
                if self.stop.event.is_set() and not isinstance(exc, Interrupted):
                    exc = Interrupted(f"stopped by a signal during an attempt that failed: {exc.message}",
                                      connection=connection, fix="run the sync again: it resumes "
                                      "from the last committed checkpoint")
                    result.error = exc
                self.tell.attempt_failed(connection, run_id, number, exc, None)
                self.observer.attempt_failed(number, exc, None)
                break
            except Exception as exc:  # a bug: record it as internal, never as success
                err = InternalError(f"{type(exc).__name__}: {exc}", connection=connection,
                                    fix="this is a Syncline bug; rerun to retry and report it")
                self.store.end_attempt(attempt_id, "failed", err.failure_class, str(err))
                result.error = err
                self.tell.attempt_failed(connection, run_id, number, err, None)
                self.observer.attempt_failed(number, err, None)
                break
            else:
                self.store.end_attempt(attempt_id, "succeeded")
                result.error = None
                break
        result.streams = list(done.values())
        if result.error is None and result.failed:  # the others ran: the run is partial
            result.error = streams_failed(result.failed).at(connection=connection)
        result.status = run_status(result)
        if result.status in ("succeeded", "warning"):
            earlier = [r for r in self.store.runs(connection, limit=2 * WINDOW)
                       if r.id != run_id and r.status in ("succeeded", "warning")]
            self.tell.baselines(connection, run_id, conn.anomaly_k, clock.now(), result.streams, earlier)
        # a failed stream's commits are published too: count them where they landed
        committed = sum(n for n, _ in loads.values()) if loads else result.rows_committed
        quarantined = sum(q for _, q in loads.values()) if loads else result.rows_quarantined
        self.store.end_run(
            run_id, result.status, rows_read=result.rows_read, rows_committed=committed,
            rows_quarantined=quarantined, attempts=result.attempts,
            failure_class=result.error.failure_class if result.error else None,
            failure_message=str(result.error) if result.error else None,
        )
        failpoint("after_record")
        return result

    def _attempt(
        self,
        connection: str,
        run_id: int,
        lease: Lease,
        only: list[str] | None,
        flags: Flags,
        done: dict[str, StreamProgress],
        loads: dict[str, tuple[int, int]],
        failed: dict[str, SynclineError],
        orphaned: dict[str, Orphan],
    ) -> None:
        """Run every stream not yet done or failed. A stream that fails alone (its plan refused,
        a configuration, source or destination error of its own) is recorded and the others go
        on; a transient failure is raised after them, for the next attempt to retry."""
        conn = self.ws.connection(connection)
        source = open_source(self.ws, conn.source)
        destination = open_destination(self.ws, conn.destination)
        destination.stop = self.stop.event  # a stop cuts the wait for a held file short
        schema: str | None = None
        try:
            schema = destination_schema(connection, conn, destination)
            source.check()
            destination.check()
            self._count_crashed_runs(connection, schema, destination)
            planned = preflight(connection, conn, source, destination, only, flags.full_refresh)
            for name, stale in planned.orphaned.items():
                if name not in orphaned:
                    orphaned[name] = stale
                    self._record(run_id, name, stale.error, "orphaned", stale.table)
            for name, refusal in planned.refused.items():
                if name not in failed and name not in done:
                    failed[name] = refusal
                    self._refused(connection, run_id, name, refusal)
            if not planned.plans:
                return
            if destination.supports_fencing:  # after planning: a configuration error writes nothing
                destination.fence(schema, connection, lease.grant.token)
            history = self._recent_rows(connection)
            retry: SynclineError | None = None
            for plan in planned.plans:
                name = plan.stream.name
                if name in done or name in failed:
                    continue  # finished, or failed for good, in an earlier attempt of this run
                try:
                    done[name] = self._stream(
                        connection, schema, plan, source, destination, run_id,
                        conn.batch_size or batch_rows(source, destination, plan.stream),
                        flags, lease, history.get(name, ()),
                    )
                except SynclineError as exc:
                    if isinstance(exc, (Interrupted, ConcurrencyError)) or self.stop.event.is_set():
                        raise  # the run itself must stop: a signal, a lost lease
                    if exc.retryable:
                        retry = retry or exc
                    else:
                        failed[name] = exc
                    self._stream_failed(connection, run_id, name, exc)
            if retry is not None:
                raise retry
        finally:
            if schema is not None:
                loads.update(_stream_loads(destination, schema, run_id))
            source.close()
            destination.close()

    def _refused(self, connection: str, run_id: int, stream: str, error: SynclineError) -> None:
        """A stream refused before reading: recorded as failed, with why."""
        self._record(run_id, stream, error, "failed")
        self._stream_failed(connection, run_id, stream, error)

    def _stream_failed(self, connection: str, run_id: int, stream: str, error: SynclineError) -> None:
        self.tell.stream_failed(connection, run_id, stream, error)
        self.observer.stream_failed(stream, error)

    def _record(self, run_id: int, stream: str, error: SynclineError, status: str,
                table: str = "") -> None:
        """A stream that read nothing in this run: failed (refused) or orphaned, with why."""
        now = dt.datetime.now(dt.UTC)
        self.store.record_stream(run_id, StreamStats(
            stream=stream, table_name=table, mode="", write="", status=status, rows_read=0,
            rows_committed=0, rows_quarantined=0, bytes=0, duration_s=0.0, started_at=now,
            ended_at=now, message=str(error), failure_class=error.failure_class))
        if status == "orphaned":
            self.observer.warning(str(error))

    def _count_crashed_runs(self, connection: str, schema: str, destination: Destination) -> None:
        """A killed run could not record what it committed; its load records in the destination can."""
        crashed = self.store.crashed_runs(connection)
        totals: dict[int, list[int]] = {}
        for (run, _), (rows, quarantined) in _load_totals(destination, schema, crashed).items():
            total = totals.setdefault(run, [0, 0])
            total[0] += rows
            total[1] += quarantined
        for run, (rows, quarantined) in totals.items():
            self.store.set_committed(run, rows, quarantined)

    def _dropped_columns(self, connection: str, plan: StreamPlan, run_id: int, rebuilt: bool) -> list[str]:
        """Record the schema seen; describe the columns the previous one had and this one lacks.

        The destination keeps such a column (its old values stay; new versions of rows
        hold NULL there), so only the schema history can tell it was dropped, once. A
        table rebuilt by a full refresh is made without it."""
        key = (run_id, plan.stream.name)
        if key in self._dropped:  # a retried attempt of this run: the previous schema is this one
            return self._dropped[key]
        previous = self.store.latest_schema(connection, plan.stream.name)
        self.store.record_schema(connection, plan.stream.name, plan.stream.to_json(), run_id)
        self._dropped[key] = []
        if previous is None:
            return []
        now = set(plan.stream.column_names)
        fate = f"table {plan.table} is rebuilt without it" if rebuilt else \
            f"kept in table {plan.table}, NULL in new rows"
        self._dropped[key] = [f"dropped column {c['name']} ({fate})"
                              for c in previous.get("columns", []) if c.get("name") not in now]
        return self._dropped[key]

    def _stream(self, connection: str, schema: str, plan: StreamPlan, *args: Any) -> StreamProgress:
        """Load one stream; the lines logged meanwhile belong to it."""
        with run_log.within(stream=plan.stream.name), \
                tracing.span("stream", stream=plan.stream.name, mode=plan.mode, write=plan.write,
                             table=plan.qualified_table) as traced:
            progress = self._load(connection, schema, plan, *args)
            tracing.note(traced, rows_read=progress.rows_read, rows_committed=progress.rows_committed,
                         rows_quarantined=progress.rows_quarantined, bytes=progress.bytes)
            return progress

    def _load(
        self,
        connection: str,
        schema: str,
        plan: StreamPlan,
        source: Source,
        destination: Destination,
        run_id: int,
        batch_size: int,
        flags: Flags,
        lease: Lease,
        recent_rows: tuple[int, ...],
    ) -> StreamProgress:
        started = dt.datetime.now(dt.UTC)
        dropped = self._dropped_columns(connection, plan, run_id, flags.full_refresh or plan.write == "replace")
        for change in dropped:
            self.observer.warning(f"{plan.stream.name}: {change}")
        lease.beat(force=True)

        mirrored = -MIRROR_EVERY_S
        window: dict[str, Any] = {"from": self.store.checkpoints(connection).get(plan.stream.name),
                                  "to": None}

        def mirror(state: dict[str, Any], final: bool = False) -> None:
            # the destination's own state row is committed with every batch; the store's
            # copy is for display, so it follows at most once a second (and at the end)
            nonlocal mirrored
            window["to"] = state
            now = time.monotonic()
            if final or now - mirrored >= MIRROR_EVERY_S:
                self.store.mirror_checkpoint(connection, plan.stream.name, state)
                mirrored = now
            lease.beat()

        log.info("stream %s: %s, %s into %s, %s", plan.stream.name, plan.mode, plan.write,
                 plan.qualified_table, "a full read" if plan.mode == "full_refresh" or flags.full_refresh
                 else "from its checkpoint" if window["from"] else "from the start")
        try:
            conn = self.ws.connection(connection)
            options = LoadOptions(
                batch_size=batch_size, full_refresh=flags.full_refresh,
                fence_token=lease.grant.token if destination.supports_fencing else None,
                source_timeout_s=conn.source_timeout_s, zero_rows=_zero_rows(conn, flags),
                zero_rows_threshold=conn.zero_rows_threshold,
                recent_rows=recent_rows, max_shrink=_max_shrink(conn, plan.stream.name, flags),
                max_skew_s=_max_skew_s(conn, plan.stream.name), since=flags.since,
            )
            progress, duration = load_stream(
                connection=connection, schema=schema, plan=plan, source=source,
                destination=destination, run_id=run_id, options=options,
                observer=Anomalies(self.observer, self.tell, connection, run_id), on_commit=mirror, stop=self.stop,
            )
        except SynclineError as exc:
            exc.at(connection=connection, stream=plan.stream.name)
            committed, quarantined = _stream_loads(destination, schema, run_id).get(plan.stream.name, (0, 0))
            self.store.record_stream(run_id, StreamStats(
                stream=plan.stream.name, table_name=plan.table, mode=plan.mode, write=plan.write,
                status="failed", rows_read=0, rows_committed=committed,
                rows_quarantined=quarantined, bytes=0,
                duration_s=(dt.datetime.now(dt.UTC) - started).total_seconds(), started_at=started,
                ended_at=dt.datetime.now(dt.UTC), schema_changes=dropped, message=str(exc),
                requests=source.request_figures(plan.stream.name), failure_class=exc.failure_class,
            ))
            raise
        self.store.record_stream(run_id, StreamStats(
            stream=plan.stream.name, table_name=plan.table, mode=plan.mode, write=plan.write,
            status="succeeded", rows_read=progress.rows_read, rows_committed=progress.rows_committed,
            rows_quarantined=progress.rows_quarantined, bytes=progress.bytes, duration_s=duration,
            started_at=started, ended_at=dt.datetime.now(dt.UTC),
            schema_changes=[*dropped, *progress.schema_changes],
            message="; ".join([*progress.notices, *progress.remarks]) or None,
            requests=source.request_figures(plan.stream.name),
        ))
        self.tell.stream_finished(connection, run_id, plan, progress, duration, dropped,
                                  window if window["to"] is not None else None)
        self.observer.stream_finished(progress, duration)
        return progress
