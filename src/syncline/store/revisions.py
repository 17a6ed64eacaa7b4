"""Config revisions: each applied version of the workspace file, numbered and hashed.

A revision holds the document as written (`${env:...}` unresolved; connector files merged
in), so the process that runs a connection resolves its variables then, on its own host.
Applying a document equal to the newest revision's is a no-op; a revision is never edited.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Engine, func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import sessionmaker

from syncline.event_kinds import Event
from syncline.store.events import Emitter
from syncline.store.leases import now_utc, who
from syncline.store.models import ConfigRevision


def canonical(document: dict[str, Any]) -> str:
    """JSON with sorted keys and no insignificant whitespace: equal documents, equal text."""
    return json.dumps(document, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)


def digest(document: dict[str, Any]) -> str:
    return hashlib.sha256(canonical(document).encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class Revision:
    number: int
    digest: str
    document: dict[str, Any]
    origin: str
    applied_by: str
    applied_at: dt.datetime


def _revision(row: ConfigRevision) -> Revision:
    return Revision(row.number, row.digest, json.loads(row.document), row.origin, row.applied_by,
                    row.applied_at)


class Revisions:
    """The config revisions of one metadata store."""

    def __init__(self, engine: Engine, emitter: Emitter | None = None) -> None:
        self._session = sessionmaker(engine, expire_on_commit=False)
        self._emitter = emitter

    def apply(self, document: dict[str, Any], origin: str) -> tuple[Revision, bool]:
        """(the revision holding `document`, whether it is new). Two processes applying at once
        get consecutive numbers, or one revision when their documents are equal."""
        text, sha = canonical(document), digest(document)
        while True:
            try:
                with self._session.begin() as s:
                    newest = s.scalars(select(ConfigRevision)
                                       .order_by(ConfigRevision.number.desc()).limit(1)).first()
                    if newest is not None and newest.digest == sha:
                        return _revision(newest), False
                    row = ConfigRevision(
                        number=(newest.number if newest else 0) + 1, digest=sha, document=text,
                        origin=origin, applied_by=who(), applied_at=now_utc())
                    s.add(row)
                if self._emitter is not None:
                    self._emitter.emit(Event("config.applied", {"revision": row.number,
                                                                "origin": origin}))
                return _revision(row), True
            except IntegrityError:  # another process took this number first: look again
                continue

    def latest(self) -> Revision | None:
        with self._session() as s:
            row = s.scalars(select(ConfigRevision).order_by(ConfigRevision.number.desc())
                            .limit(1)).first()
            return _revision(row) if row is not None else None

    def latest_number(self) -> int | None:
        """The newest revision's number, without reading its document (a scheduler tick)."""
        with self._session() as s:
            return s.scalar(select(func.max(ConfigRevision.number)))

    def get(self, number: int) -> Revision | None:
        with self._session() as s:
            row = s.get(ConfigRevision, number)
            return _revision(row) if row is not None else None

    def count(self) -> int:
        with self._session() as s:
            return int(s.scalar(select(func.count()).select_from(ConfigRevision)) or 0)
