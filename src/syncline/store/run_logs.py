"""Run logs in the metadata store: the lines of each run, written in batches, read back."""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Engine, insert, select
from sqlalchemy.orm import sessionmaker

from syncline.store.models import Base, RunLogRow

_TABLE = Base.metadata.tables[RunLogRow.__tablename__]
LEVELS = ("debug", "info", "warning", "error")


@dataclass(frozen=True)
class LogLine:
    id: int
    run: int
    attempt: int | None
    stream: str | None
    time: dt.datetime
    level: str
    logger: str
    message: str
    fields: dict[str, Any] | None

    def to_json(self) -> dict[str, Any]:
        return {"id": self.id, "run": self.run, "attempt": self.attempt, "stream": self.stream,
                "time": self.time.isoformat().replace("+00:00", "Z"), "level": self.level,
                "logger": self.logger, "message": self.message, "fields": self.fields}


class RunLogs:
    def __init__(self, engine: Engine) -> None:
        self._session = sessionmaker(engine, expire_on_commit=False)

    def append(self, rows: list[dict[str, Any]]) -> None:
        """Rows with run_id, attempt, stream, time, level, logger, message, fields (JSON text)."""
        if rows:
            with self._session.begin() as s:
                s.execute(insert(_TABLE), rows)

    def read(self, run: int, *, after: int = 0, level: str = "debug",
             limit: int = 100_000) -> list[LogLine]:
        """The run's lines at `level` or above, oldest first, with ids above `after`."""
        wanted = LEVELS[LEVELS.index(level):]
        q = (select(RunLogRow).where(RunLogRow.run_id == run, RunLogRow.id > after,
                                     RunLogRow.level.in_(wanted))
             .order_by(RunLogRow.id).limit(limit))
        with self._session() as s:
            return [LogLine(r.id, r.run_id, r.attempt, r.stream, r.time, r.level, r.logger, r.message,
                            json.loads(r.fields) if r.fields else None) for r in s.scalars(q)]
