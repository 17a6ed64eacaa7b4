"""The event log in the metadata store: append events, read them back; and the one emitter.

`Emitter.emit` never fails its caller: an event the store cannot take now (it is briefly
away) waits in the emitter's buffer and is written, in order, before the next one; what is
still unwritten when the process ends goes to a spool file beside the workspace's store
(`.syncline/events-spool-*.jsonl`), which the next emitter writes first.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import threading
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import ColumnElement, Engine, insert, or_, select
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import sessionmaker

from syncline.event_kinds import Event
from syncline.redact import redact_all
from syncline.store.models import Base, EventRow

_TABLE = Base.metadata.tables[EventRow.__tablename__]


@dataclass(frozen=True)
class StoredEvent:
    id: int
    time: dt.datetime
    kind: str
    severity: str
    connection: str | None
    run: int | None
    attempt: int | None
    stream: str | None
    region: str
    body: dict[str, Any]

    def to_json(self) -> dict[str, Any]:
        return {"id": self.id, "time": self.time.isoformat().replace("+00:00", "Z"),
                "kind": self.kind, "severity": self.severity, "connection": self.connection,
                "run": self.run, "attempt": self.attempt, "stream": self.stream,
                "region": self.region, "body": self.body}


def _row(e: Event) -> dict[str, Any]:
    return {"time": e.time, "kind": e.kind, "severity": e.level, "connection": e.connection,
            "run_id": e.run, "attempt": e.attempt, "stream": e.stream, "region": e.region,
            "body": json.dumps(redact_all(e.body), sort_keys=True, default=str)}


class EventLog:
    def __init__(self, engine: Engine) -> None:
        self._session = sessionmaker(engine, expire_on_commit=False)

    def append(self, events: Sequence[Event] | Sequence[dict[str, Any]]) -> None:
        """Write events (or rows as `_row` makes them) in one transaction, in order."""
        rows = [e if isinstance(e, dict) else _row(e) for e in events]
        if rows:
            with self._session.begin() as s:
                s.execute(insert(_TABLE), rows)

    def read(self, *, connection: str | None = None, kinds: Iterable[str] = (),
             since: dt.datetime | None = None, after: int = 0, run: int | None = None,
             limit: int = 1000, oldest: bool = False) -> list[StoredEvent]:
        """Events in the order they were written, oldest first: of `connection`, of `kinds`
        (a kind, or a prefix ending in a dot: `run.`), at or after `since`, with ids above
        `after`; the newest `limit` of them (with `oldest`, the oldest `limit`)."""
        q = select(EventRow).where(EventRow.id > after)
        if connection is not None:
            q = q.where(EventRow.connection == connection)
        if run is not None:
            q = q.where(EventRow.run_id == run)
        if since is not None:
            q = q.where(EventRow.time >= since)
        wanted = list(kinds)
        if wanted:
            exact = [k for k in wanted if not k.endswith(".")]
            prefixes = [k for k in wanted if k.endswith(".")]
            clauses: list[ColumnElement[bool]] = [EventRow.kind.in_(exact)] if exact else []
            clauses += [EventRow.kind.startswith(p) for p in prefixes]
            q = q.where(or_(*clauses))
        q = q.order_by(EventRow.id if oldest else EventRow.id.desc()).limit(limit)
        with self._session() as s:
            rows = list(s.scalars(q))
        if oldest:
            rows.reverse()
        return [StoredEvent(r.id, r.time, r.kind, r.severity, r.connection, r.run_id, r.attempt,
                            r.stream, r.region, json.loads(r.body)) for r in reversed(rows)]


def observability_off() -> bool:
    """`SYNCLINE_OBSERVABILITY=off` writes no event and no run log line: for the benchmark
    that measures what they cost (bench/observability.py), never for production."""
    return os.environ.get("SYNCLINE_OBSERVABILITY") == "off"


class Emitter:
    """The one way events are written: in order, never failing the caller."""

    def __init__(self, log: EventLog, spool: Path | None = None) -> None:
        self.log, self.spool = log, spool
        self._pending: list[dict[str, Any]] = []
        self._lock = threading.Lock()
        self._spooled_read = False

    def emit(self, event: Event) -> None:
        self.emit_many([event])

    def emit_many(self, events: Iterable[Event]) -> None:
        """Several events in one write (a scheduler tick queueing thousands of runs)."""
        if observability_off():
            return
        with self._lock:
            self._pending.extend(_row(e) for e in events)
            self._write()

    def flush(self) -> bool:
        """Write what waits; True when nothing is left."""
        with self._lock:
            return self._write()

    def close(self) -> None:
        """Write what waits, else keep it in the spool file for the next emitter."""
        with self._lock:
            if self._write() or self.spool is None:
                return
            try:
                self.spool.mkdir(parents=True, exist_ok=True)
                path = self.spool / f"events-spool-{os.getpid()}-{uuid.uuid4().hex[:8]}.jsonl"
                with path.open("w", encoding="utf-8") as f:
                    for row in self._pending:
                        f.write(json.dumps({**row, "time": row["time"].isoformat()}) + "\n")
                self._pending.clear()
            except OSError:
                pass  # the buffer is all there is; nothing else can hold it

    def _write(self) -> bool:
        self._take_spool()
        if not self._pending:
            return True
        try:
            self.log.append(self._pending)
        except SQLAlchemyError:
            return False  # the store is away: kept, in order, for the next try
        self._pending.clear()
        return True

    def _take_spool(self) -> None:
        """Events an earlier process could not write go first (once per emitter)."""
        if self._spooled_read or self.spool is None or not self.spool.is_dir():
            return
        self._spooled_read = True
        taken: list[dict[str, Any]] = []
        for path in sorted(self.spool.glob("events-spool-*.jsonl")):
            mine = path.with_suffix(f".taken-{os.getpid()}")
            try:
                path.rename(mine)  # atomic: one process takes each file
                lines = mine.read_text(encoding="utf-8").splitlines()
                mine.unlink()
            except OSError:
                continue
            for line in lines:
                row = json.loads(line)
                row["time"] = dt.datetime.fromisoformat(row["time"])
                taken.append(row)
        self._pending[:0] = taken
