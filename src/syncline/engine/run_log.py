"""A run's log: every line the engine and its connectors log while a run goes, kept in the store.

Code of the engine and the connectors logs with the standard library (`logging.getLogger`
under `syncline.`), naming structured fields in `extra={"fields": {...}}`. While a run goes,
`running` sets where its lines belong (run, attempt, stream: a context variable, carried
into the source's reading thread); one handler takes each line of the `syncline` loggers,
redacts it (redact.py) and hands it to the run's `Sink`, which writes batches to the store
(`store/run_logs.py`). A store that is away never fails the run: lines wait, up to
`MAX_WAITING`, and the oldest beyond are counted and said to be lost.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, replace
from typing import Any

from sqlalchemy.exc import SQLAlchemyError

from syncline.redact import redact, redact_all
from syncline.store.events import observability_off
from syncline.store.run_logs import RunLogs

BATCH = 200
FLUSH_S = 1.0
MAX_WAITING = 50_000
LEVELS = {logging.DEBUG: "debug", logging.INFO: "info", logging.WARNING: "warning",
          logging.ERROR: "error", logging.CRITICAL: "error"}


class Sink:
    """The lines of one run, written in batches; never raises."""

    def __init__(self, logs: RunLogs) -> None:
        self.logs = logs
        self._rows: list[dict[str, Any]] = []
        self._lock = threading.Lock()
        self._flushed = time.monotonic()
        self.dropped = 0

    def add(self, row: dict[str, Any]) -> None:
        with self._lock:
            self._rows.append(row)
            if len(self._rows) > MAX_WAITING:
                del self._rows[0]
                self.dropped += 1
            if len(self._rows) >= BATCH or time.monotonic() - self._flushed >= FLUSH_S:
                self._write()

    def flush(self, run: int | None = None) -> None:
        """Write what waits; at a run's end (`run`), first say how many lines were lost."""
        with self._lock:
            if run is not None and self.dropped:  # the store was away past MAX_WAITING lines
                self._rows.append({
                    "run_id": run, "attempt": None, "stream": None, "time": dt.datetime.now(dt.UTC),
                    "level": "warning", "logger": "syncline.engine.run_log", "fields": None,
                    "message": f"{self.dropped:,} earlier lines of this run were lost while the "
                    "metadata store could not take them"})
                self.dropped = 0
            self._write()

    def _write(self) -> None:
        self._flushed = time.monotonic()
        if not self._rows:
            return
        try:
            self.logs.append(self._rows)
        except SQLAlchemyError:
            return  # the store is away: the lines wait for the next write
        self._rows = []


@dataclass(frozen=True)
class Where:
    sink: Sink
    run: int
    attempt: int | None = None
    stream: str | None = None


_WHERE: ContextVar[Where | None] = ContextVar("syncline_run_log", default=None)


class _Handler(logging.Handler):
    def emit(self, record: logging.LogRecord) -> None:
        where = _WHERE.get()
        if where is None:
            return  # not inside a run
        try:
            fields = getattr(record, "fields", None)
            where.sink.add({
                "run_id": where.run, "attempt": where.attempt,
                "stream": getattr(record, "stream", None) or where.stream,
                "time": dt.datetime.fromtimestamp(record.created, dt.UTC),
                "level": LEVELS.get(record.levelno, "info"), "logger": record.name[:128],
                "message": redact(record.getMessage()),
                "fields": json.dumps(redact_all(fields), default=str) if fields else None})
        except Exception:  # a log line never fails a run
            self.handleError(record)


_INSTALLED = threading.Lock()
_HANDLER: _Handler | None = None


def install() -> None:
    """Route the `syncline` loggers' lines of running runs to their logs (once per process)."""
    global _HANDLER
    with _INSTALLED:
        if _HANDLER is not None:
            return
        _HANDLER = _Handler(logging.DEBUG)
        root = logging.getLogger("syncline")
        root.addHandler(_HANDLER)
        if root.level == logging.NOTSET:
            root.setLevel(logging.INFO)


@contextmanager
def running(logs: RunLogs, run: int) -> Iterator[Sink]:
    """Lines logged inside belong to `run`; written at the end at the latest."""
    sink = Sink(logs)
    if observability_off():
        yield sink
        return
    install()
    token = _WHERE.set(Where(sink, run))
    try:
        yield sink
    finally:
        _WHERE.reset(token)
        sink.flush(run)


@contextmanager
def within(*, attempt: int | None = None, stream: str | None = None) -> Iterator[None]:
    """Lines logged inside belong to this attempt (or stream) of the current run."""
    where = _WHERE.get()
    if where is None:
        yield
        return
    token = _WHERE.set(replace(where, attempt=attempt if attempt is not None else where.attempt,
                               stream=stream if stream is not None else where.stream))
    try:
        yield
    finally:
        _WHERE.reset(token)
