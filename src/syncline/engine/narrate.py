"""What a run tells while it goes: its events (store/events.py) and the lines of its log
(engine/run_log.py), kept apart from what it does (run.py)."""

from __future__ import annotations

import datetime as dt
import logging
from typing import Any

from syncline.baselines import WINDOW, anomaly
from syncline.config import Workspace
from syncline.engine import run_log
from syncline.engine.observer import Announcing, RunObserver, StreamProgress
from syncline.engine.plan import StreamPlan
from syncline.errors import SynclineError
from syncline.event_kinds import Event
from syncline.store.records import RunRecord
from syncline.store.store import MetadataStore

log = logging.getLogger("syncline.engine.run")


class Narrator:
    def __init__(self, store: MetadataStore, ws: Workspace) -> None:
        self.store, self.ws = store, ws

    def emit(self, kind: str, body: dict[str, Any], connection: str, run_id: int,
             stream: str | None = None, attempt: int | None = None) -> None:
        self.store.emitter.emit(Event(kind, body, connection=connection, run=run_id, stream=stream,
                                      attempt=attempt, region=self.ws.region(connection)))

    def attempt_failed(self, connection: str, run_id: int, number: int, error: SynclineError,
                       retry_in_s: float | None) -> None:
        with run_log.within(attempt=number):
            log.warning("attempt %d failed (%s): %s%s", number, error.failure_class, error,
                        f"; the next starts in {retry_in_s:.1f}s" if retry_in_s is not None else "")
        at = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=retry_in_s) if retry_in_s is not None else None
        self.emit("attempt.failed", {"number": number, "failure_class": error.failure_class,
                                     "message": str(error), "retry_in_s": retry_in_s,
                                     "retry_at": at.isoformat() if at else None},
                  connection, run_id, error.stream, attempt=number)

    def stream_failed(self, connection: str, run_id: int, stream: str, error: SynclineError) -> None:
        log.error("stream %s failed (%s): %s", stream, error.failure_class, error, extra={"stream": stream})
        self.emit("stream.failed", {"failure_class": error.failure_class, "message": str(error)},
                  connection, run_id, stream)

    def stream_finished(self, connection: str, run_id: int, plan: StreamPlan, progress: StreamProgress,
                        duration: float, dropped: list[str], window: dict[str, Any] | None) -> None:
        name = plan.stream.name
        log.info("stream %s finished: %s rows read, %s committed, %s quarantined, %s bytes in %.1fs",
                 name, f"{progress.rows_read:,}", f"{progress.rows_committed:,}",
                 f"{progress.rows_quarantined:,}", f"{progress.bytes:,}", duration)
        self.emit("stream.finished", {
            "table": plan.qualified_table, "mode": plan.mode, "write": plan.write,
            "rows_read": progress.rows_read, "rows_committed": progress.rows_committed,
            "rows_quarantined": progress.rows_quarantined, "bytes": progress.bytes,
            "seconds": round(duration, 3), "window": window}, connection, run_id, name)
        changes = [*dropped, *progress.schema_changes]
        if changes:
            self.emit("schema.changed", {"changes": changes}, connection, run_id, name)
        if progress.rows_quarantined:
            self.emit("rows.quarantined", {"count": progress.rows_quarantined,
                                           "table": plan.qualified_table}, connection, run_id, name)


    def baselines(self, connection: str, run_id: int, k: float, ended: dt.datetime,
                  streams: list[StreamProgress], earlier: list[RunRecord]) -> None:
        """Compare what this successful run did with what the earlier successful runs
        (`earlier`, newest first) taught: each stream's rows read, and the gap since the
        previous success (monitoring/baselines.py)."""
        past = [r for r in reversed(earlier[:WINDOW + 1]) if r.ended_at is not None]
        for progress in streams:
            seen = [(r.ended_at, float(s.rows_read)) for r in past for s in r.streams
                    if s.stream == progress.stream and s.status == "succeeded" and r.ended_at]
            found = anomaly(float(progress.rows_read), ended, seen, k)
            if found is not None:
                log.warning("stream %s read %s rows, outside the usual %s to %s (learned from %d runs)",
                            progress.stream, f"{progress.rows_read:,}", f"{found.band.low:,.0f}",
                            f"{found.band.high:,.0f}", found.history)
                self.emit("volume.anomaly", {
                    "rows_read": progress.rows_read, "expected_low": round(found.band.low, 1),
                    "expected_high": round(found.band.high, 1), "median": round(found.band.median, 1),
                    "history": found.history}, connection, run_id, progress.stream)
        ends = [r.ended_at for r in past if r.ended_at is not None]
        if not ends:
            return
        gaps = [(b, (b - a).total_seconds()) for a, b in zip(ends, ends[1:], strict=False)]
        gap = (ended - ends[-1]).total_seconds()
        late = anomaly(gap, ended, gaps, k)
        if late is not None and gap > late.band.high:  # sooner than usual is no harm
            log.warning("%.0fs since the last successful run, more than the usual %.0fs (learned "
                        "from %d runs)", gap, late.band.high, late.history)
            self.emit("freshness.anomaly", {
                "gap_s": round(gap, 1), "expected_low_s": round(late.band.low, 1),
                "expected_high_s": round(late.band.high, 1), "median_s": round(late.band.median, 1),
                "history": late.history}, connection, run_id)


class Logged(Announcing):
    """An observer whose warnings also go to the run's log."""

    def __init__(self, inner: RunObserver) -> None:
        super().__init__(inner, lambda _c, _r: None)

    def warning(self, message: str) -> None:
        log.warning("%s", message)
        super().warning(message)


class Anomalies(Announcing):
    """A run's observer, and an event for each anomaly the load finds."""

    def __init__(self, inner: RunObserver, tell: Narrator, connection: str, run_id: int) -> None:
        super().__init__(inner, lambda _c, _r: None)
        self.tell, self.connection, self.run_id = tell, connection, run_id

    def zero_rows(self, stream: str, expected: int, failed: bool) -> None:
        self.tell.emit("zero_rows.anomaly", {"expected": expected, "rows_read": 0,
                                             "action": "failed" if failed else "warned"},
                       self.connection, self.run_id, stream)
        super().zero_rows(stream, expected, failed)
