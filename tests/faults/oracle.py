"""Oracle: a versioned source table mutated with a seeded RNG, and a count of what the destination got wrong.

Every source row carries ``(id, version)``; an update bumps ``version`` and moves the
cursor ``updated_at`` forward, a delete is a real ``DELETE`` whose key is remembered in
``tombstones`` (a table the workspace never selects). After the last clean run,
``compare`` counts per key:

- ``missing``      in the source, not in the destination;
- ``duplicate``    one key (one ``(key, version)`` in append mode) held by more than one row;
- ``stale``        the destination's newest version is older than the source's;
- ``unexpected``   a key the source never had, or a version newer than the source's;
- ``resurrected``  deleted at the source, present and not soft-deleted in the destination;
- ``broken``       (``write: history``) a version repeated, out of order, or not meeting the
                   next one end to start.

Rows soft-deleted in the destination (``_syncline_deleted``) count as absent, and so do the
versions of a history table that are not current.
Incremental (cursor) reads cannot see hard deletes: a deleted row simply stops
changing, so for them ``observe_deletes=False`` and deleted keys are not counted at
all. Only a mode that re-reads the whole source (full refresh with replace) or a log
(CDC) can observe deletes, and only there is ``resurrected`` counted.
"""

from __future__ import annotations

import datetime as dt
import random
import sqlite3
from abc import ABC, abstractmethod
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

import duckdb
import psycopg

EPOCH = dt.datetime(2026, 1, 1)
TIE = 7  # rows sharing one cursor value in the initial load: boundaries fall inside ties


@dataclass(frozen=True)
class Counts:
    """What the destination got wrong, per kind; all zero is the promise."""

    missing: int = 0
    duplicate: int = 0
    stale: int = 0
    unexpected: int = 0
    resurrected: int = 0
    broken: int = 0

    def __add__(self, other: Counts) -> Counts:
        return Counts(*(getattr(self, f.name) + getattr(other, f.name) for f in fields(self)))

    @property
    def clean(self) -> bool:
        return not any(getattr(self, f.name) for f in fields(self))

    def describe(self) -> str:
        return ", ".join(f"{getattr(self, f.name)} {f.name}" for f in fields(self))


@dataclass(frozen=True)
class Expected:
    """The source at one moment: live keys with their versions, and keys deleted so far."""

    versions: dict[int, int]
    deleted: frozenset[int]


@dataclass(frozen=True)
class Mutation:
    inserted: int
    updated: int
    deleted: int


def compare(expected: Expected, rows: Iterable[tuple[int, int, bool | None]] | None, *,
            write: str = "merge", observe_deletes: bool = False) -> Counts:
    """Count the destination's ``(id, version, soft_deleted)`` rows against ``expected``.

    ``rows`` None means the destination table does not exist (everything is missing).
    """
    held: dict[int, list[int]] = {}
    for key, version, soft_deleted in rows or ():
        if not soft_deleted:
            held.setdefault(key, []).append(version)
    duplicate = stale = unexpected = resurrected = 0
    for key, versions in held.items():
        duplicate += len(versions) - (len(set(versions)) if write == "append" else 1)
        source = expected.versions.get(key)
        if source is not None:
            newest = max(versions)
            stale += newest < source
            unexpected += newest > source
        elif key in expected.deleted:
            resurrected += observe_deletes
        else:
            unexpected += 1
    missing = len(expected.versions.keys() - held.keys())
    return Counts(missing, duplicate, stale, unexpected, resurrected)


def destination_rows(duckdb_path: Path, schema: str, table: str
                     ) -> list[tuple[int, int, bool | None]] | None:
    """``(id, version, _syncline_deleted)`` of every destination row; None if there is no table."""
    con = duckdb.connect(str(duckdb_path), read_only=True)
    try:
        exists = con.execute(
            "SELECT count(*) FROM information_schema.tables WHERE table_schema = ? AND table_name = ?",
            [schema, table],
        ).fetchall()[0][0]
        if not exists:
            return None
        live = "_syncline_deleted"
        if _has_column(con, schema, table, "_syncline_is_current"):  # versions: current ones live
            live = "NOT _syncline_is_current"
        rows = con.execute(f'SELECT id, version, {live} FROM "{schema}"."{table}"').fetchall()
        return [(int(r[0]), int(r[1]), r[2]) for r in rows]
    finally:
        con.close()


def _has_column(con: duckdb.DuckDBPyConnection, schema: str, table: str, column: str) -> bool:
    return bool(con.execute(
        "SELECT count(*) FROM information_schema.columns WHERE table_schema = ? AND table_name = ? "
        "AND column_name = ?", [schema, table, column]).fetchall()[0][0])


def history_breaks(duckdb_path: Path, schema: str, table: str) -> int:
    """Keys of a history table whose versions repeat a source version, go back, or do not meet
    end to start (a version closed by a delete may be followed after a gap)."""
    con = duckdb.connect(str(duckdb_path), read_only=True)
    try:
        rows = con.execute(
            f'SELECT id, version, _syncline_valid_from, _syncline_valid_to, _syncline_is_current, '
            f'_syncline_deleted FROM "{schema}"."{table}" '
            "ORDER BY id, _syncline_valid_from, _syncline_is_current, version").fetchall()
    finally:
        con.close()
    keys: dict[int, list[tuple[Any, ...]]] = {}
    for row in rows:
        keys.setdefault(row[0], []).append(row[1:])
    broken = 0
    for versions in keys.values():
        bad = sum(1 for v in versions if v[3]) > 1 or versions[-1][3] != (versions[-1][2] is None)
        for older, newer in zip(versions, versions[1:], strict=False):
            bad |= newer[0] <= older[0] or older[3]  # a source version twice, or going back
            bad |= older[2] is None or (newer[1] < older[2] if older[4] else newer[1] != older[2])
        broken += bad
    return broken


def count(source: SourceTable, duckdb_path: Path, schema: str, table: str = "events", *,
          write: str = "merge", observe_deletes: bool = False) -> Counts:
    """The oracle after a run: the source now against the destination table now."""
    return compare(source.expected(), destination_rows(duckdb_path, schema, table),
                   write=write, observe_deletes=observe_deletes)


class SourceTable(ABC):
    """``events`` (+ ``tombstones`` and a clock) in one source database, changed like an application would."""

    mark = "?"

    @abstractmethod
    def _execute(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]: ...

    @abstractmethod
    def _executemany(self, sql: str, rows: list[tuple[Any, ...]]) -> None: ...

    @abstractmethod
    def _stamp(self, tick: int) -> Any:
        """The cursor value of clock tick ``tick``, as the database stores it."""

    def _sql(self, text: str) -> str:
        return text.replace("?", self.mark)

    def create(self, rows: int, rng: random.Random, payload_bytes: int = 8) -> None:
        """``rows`` rows at version 1, seven to a cursor value."""
        self._execute("CREATE TABLE events (id INTEGER PRIMARY KEY, version INTEGER NOT NULL, "
                      "payload TEXT, updated_at TIMESTAMP NOT NULL)")
        self._execute("CREATE TABLE tombstones (id INTEGER PRIMARY KEY)")
        self._execute("CREATE TABLE oracle_clock (tick INTEGER NOT NULL, next_id INTEGER NOT NULL)")
        tick = self._insert(range(1, rows + 1), 1, rng, payload_bytes)
        self._execute(self._sql("INSERT INTO oracle_clock VALUES (?, ?)"), [tick, rows + 1])

    def _insert(self, ids: range, tick: int, rng: random.Random, payload_bytes: int) -> int:
        """Insert ``ids`` at version 1 from clock ``tick``; the next unused tick.

        The clock only moves forward, so a new cursor value is never at or below one a
        run may already have checkpointed (an application writing in the past is a
        lookback problem, not what these scenarios test).
        """
        for start in range(ids.start, ids.stop, 50_000):
            chunk = range(start, min(start + 50_000, ids.stop))
            self._executemany(self._sql("INSERT INTO events VALUES (?, 1, ?, ?)"), [
                (i, rng.randbytes(payload_bytes).hex(), self._stamp(tick + (i - ids.start) // TIE))
                for i in chunk
            ])
        return tick + (len(ids) + TIE - 1) // TIE

    def mutate(self, rng: random.Random, *, inserts: int = 0, updates: int = 0, deletes: int = 0,
               payload_bytes: int = 8) -> Mutation:
        """Insert new keys, update random keys (version + 1, a later cursor), delete random keys."""
        tick, next_id = self._execute("SELECT tick, next_id FROM oracle_clock")[0]
        live = [r[0] for r in self._execute("SELECT id FROM events ORDER BY id")]
        chosen = rng.sample(live, min(len(live), updates + deletes))
        touched, gone = sorted(chosen[:updates]), sorted(chosen[updates:])
        # updates land in a few ties of a newer cursor value
        groups = max(1, len(touched) // 500)
        self._executemany(
            self._sql("UPDATE events SET version = version + 1, payload = ?, updated_at = ? WHERE id = ?"),
            [(rng.randbytes(payload_bytes).hex(), self._stamp(tick + n % groups), key)
             for n, key in enumerate(touched)],
        )
        tick += groups
        if gone:
            self._executemany(self._sql("DELETE FROM events WHERE id = ?"), [(k,) for k in gone])
            self._executemany(self._sql("INSERT INTO tombstones VALUES (?)"), [(k,) for k in gone])
        tick = self._insert(range(next_id, next_id + inserts), tick, rng, payload_bytes)
        self._execute(self._sql("UPDATE oracle_clock SET tick = ?, next_id = ?"), [tick, next_id + inserts])
        return Mutation(inserts, len(touched), len(gone))

    def expected(self) -> Expected:
        versions = {int(k): int(v) for k, v in self._execute("SELECT id, version FROM events")}
        deleted = frozenset(int(r[0]) for r in self._execute("SELECT id FROM tombstones"))
        return Expected(versions, deleted)


class SqliteTable(SourceTable):
    """The oracle's table in a SQLite file (the workspace selects `tables: [events]`)."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def _execute(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        con = sqlite3.connect(self.path)
        try:
            with con:
                return con.execute(sql, params).fetchall()
        finally:
            con.close()

    def _executemany(self, sql: str, rows: list[tuple[Any, ...]]) -> None:
        con = sqlite3.connect(self.path)
        try:
            with con:
                con.executemany(sql, rows)
        finally:
            con.close()

    def _stamp(self, tick: int) -> str:
        return (EPOCH + dt.timedelta(seconds=tick)).isoformat(sep=" ", timespec="microseconds")


class PostgresTable(SourceTable):
    """The oracle's table in a PostgreSQL schema (the workspace selects `<schema>.events`)."""

    mark = "%s"

    def __init__(self, conninfo: str, schema: str) -> None:
        self.conninfo = conninfo
        self.schema = schema

    def _connect(self) -> psycopg.Connection[Any]:
        con = psycopg.connect(self.conninfo, autocommit=False)
        con.execute(f'SET search_path TO "{self.schema}"')
        return con

    def _execute(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        with self._connect() as con:
            cur = con.execute(sql, params)
            return cur.fetchall() if cur.description else []

    def _executemany(self, sql: str, rows: list[tuple[Any, ...]]) -> None:
        with self._connect() as con, con.cursor() as cur:
            cur.executemany(sql, rows)

    def _stamp(self, tick: int) -> dt.datetime:
        return EPOCH + dt.timedelta(seconds=tick)
