"""What a run reports while it works: the seam between the engine and a progress display."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from syncline.engine.plan import StreamPlan
from syncline.errors import SynclineError


@dataclass
class StreamProgress:
    stream: str
    table: str
    mode: str
    write: str
    rows_read: int = 0
    rows_committed: int = 0
    #: staged rows a merge did not write: a later version of the key came in the same commit,
    #: or the destination's row was newer
    rows_skipped: int = 0
    rows_quarantined: int = 0
    #: live rows a full refresh under merge found missing from the snapshot and soft-deleted
    rows_deleted: int = 0
    bytes: int = 0
    commits: int = 0
    expected: int | None = None
    schema_changes: list[str] = field(default_factory=list)
    notices: list[str] = field(default_factory=list)
    #: what the run did because it was asked to (`--since`): said with the stream, no warning
    remarks: list[str] = field(default_factory=list)


class RunObserver:
    """Does nothing; subclasses draw progress bars or log lines."""

    def run_started(self, connection: str, run_id: int) -> None:
        pass

    def stream_started(self, plan: StreamPlan, progress: StreamProgress) -> None:
        pass

    def stream_progress(self, progress: StreamProgress) -> None:
        pass

    def stream_finished(self, progress: StreamProgress, duration_s: float) -> None:
        pass

    def stream_failed(self, stream: str, error: SynclineError) -> None:
        """A stream failed alone (the run goes on with the others)."""

    def attempt_failed(self, number: int, error: SynclineError, retry_in_s: float | None) -> None:
        pass

    def warning(self, message: str) -> None:
        pass

    def zero_rows(self, stream: str, expected: int, failed: bool) -> None:
        """A stream read 0 rows where recent runs read about `expected`; `failed`: the stream
        fails for it (a full refresh), else the run warns."""


class Announcing(RunObserver):
    """Another observer, also telling `on_start` the id of the run as soon as it has one (a
    worker names it in the run queue and the worker registry)."""

    def __init__(self, inner: RunObserver, on_start: Callable[[str, int], None]) -> None:
        self.inner, self.on_start = inner, on_start

    def run_started(self, connection: str, run_id: int) -> None:
        self.on_start(connection, run_id)
        self.inner.run_started(connection, run_id)

    def stream_started(self, plan: StreamPlan, progress: StreamProgress) -> None:
        self.inner.stream_started(plan, progress)

    def stream_progress(self, progress: StreamProgress) -> None:
        self.inner.stream_progress(progress)

    def stream_finished(self, progress: StreamProgress, duration_s: float) -> None:
        self.inner.stream_finished(progress, duration_s)

    def stream_failed(self, stream: str, error: SynclineError) -> None:
        self.inner.stream_failed(stream, error)

    def attempt_failed(self, number: int, error: SynclineError, retry_in_s: float | None) -> None:
        self.inner.attempt_failed(number, error, retry_in_s)

    def warning(self, message: str) -> None:
        self.inner.warning(message)

    def zero_rows(self, stream: str, expected: int, failed: bool) -> None:
        self.inner.zero_rows(stream, expected, failed)
