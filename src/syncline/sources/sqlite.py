"""SQLite source: tables of one database file, full refresh and compound-cursor incremental."""

from __future__ import annotations

import datetime as dt
import re
import sqlite3
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from syncline.errors import ConfigurationError, RepeatedKeys, SourceError, TransientError
from syncline.failpoints import failpoint
from syncline.records import rows_to_batch
from syncline.schema import (
    BINARY,
    BOOLEAN,
    DATE,
    FLOAT64,
    INT64,
    JSON,
    STRING,
    TIME,
    TIMESTAMP,
    TIMESTAMPTZ,
    Column,
    DataType,
    StreamSchema,
)
from syncline.sources.base import CURSOR_NAMES, Source, is_own_table
from syncline.sources.cursor_position import Position, with_null_rows
from syncline.sources.late_commits import TEMPORAL, future_notice
from syncline.stream import Checkpoint, Notice, ReadRequest, StreamItem, lookback_seconds


class SqliteConfig(BaseModel):
    """A SQLite database file."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    type: Literal["sqlite"]
    path: str = Field(description="Database file; relative paths start at the workspace folder.")
    tables: list[str] | None = Field(None, description="Only these tables (default: all).")
    lookback: str | None = Field(
        None, description="Re-read this window (e.g. 5m, 2h) below the last cursor of date/timestamp "
        "cursors written as ISO 8601 text on every incremental read, for writers that stamp rows "
        "with their own clock; the default of the source's streams; needs write: merge.")

    @field_validator("lookback")
    @classmethod
    def _window(cls, value: str | None) -> str | None:
        lookback_seconds(value)
        return value


_DECIMAL = re.compile(r"(?:DECIMAL|NUMERIC)\s*\(\s*(\d+)\s*(?:,\s*(\d+)\s*)?\)")


def map_sqlite_type(declared: str) -> tuple[DataType, str | None]:
    """Canonical type of a declared SQLite column type, and a note when it is a guess."""
    t = declared.strip().upper()
    if not t:
        return STRING, "no declared type: carried as text"
    m = _DECIMAL.search(t)
    if m:
        precision = int(m.group(1))
        scale = int(m.group(2) or 0)
        if 1 <= precision <= 38 and scale <= precision:
            return DataType("decimal", precision, scale), None
        return STRING, f"{declared} is beyond decimal(38): carried as text"
    if "BOOL" in t:
        return BOOLEAN, None
    if "INT" in t:
        return INT64, None
    if "JSON" in t:
        return JSON, None
    if "TIMESTAMPTZ" in t or "WITH TIME ZONE" in t:
        return TIMESTAMPTZ, None
    if "DATETIME" in t or "TIMESTAMP" in t:
        return TIMESTAMP, None
    if t == "DATE":
        return DATE, None
    if t == "TIME":
        return TIME, None
    if any(k in t for k in ("CHAR", "CLOB", "TEXT", "UUID")):
        return STRING, None
    if "BLOB" in t:
        return BINARY, None
    if any(k in t for k in ("REAL", "FLOA", "DOUB")):
        return FLOAT64, None
    if t in ("NUMERIC", "DECIMAL"):
        return FLOAT64, f"{declared} without precision: carried as double"
    return STRING, f"unknown type {declared}: carried as text"


def q(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


class SqliteSource(Source):
    config: SqliteConfig
    sql_cursor = True

    @property
    def path(self) -> Path:
        p = Path(self.config.path).expanduser()
        return p if p.is_absolute() else Path(self.context.root) / p

    def _connect(self) -> sqlite3.Connection:
        if not self.path.is_file():
            raise ConfigurationError(
                f"source '{self.name}': database file {self.path} does not exist",
                fix=f"check `path:` of source '{self.name}' (relative paths start at the workspace)",
            )
        try:
            con = sqlite3.connect(f"file:{self.path}?mode=ro", uri=True, isolation_level=None,
                                  check_same_thread=False)
            con.execute("PRAGMA query_only = 1")
            con.execute("SELECT count(*) FROM sqlite_master").fetchone()
        except sqlite3.DatabaseError as exc:
            raise _classify(exc, f"source '{self.name}': cannot open {self.path}") from None
        return con

    def check(self) -> None:
        con = self._connect()
        try:
            self._tables(con)
        finally:
            con.close()

    def _tables(self, con: sqlite3.Connection) -> list[str]:
        rows = con.execute(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' "
            "ORDER BY name"
        ).fetchall()
        names = [r[0] for r in rows if not is_own_table(r[0])]
        if self.config.tables:
            missing = [t for t in self.config.tables if t not in names]
            if missing:
                raise ConfigurationError(
                    f"source '{self.name}': table(s) {', '.join(missing)} not found in {self.path}",
                    fix=f"use existing tables: {', '.join(names) or '(database is empty)'}",
                )
            names = [n for n in names if n in self.config.tables]
        return names

    def discover(self) -> list[StreamSchema]:
        con = self._connect()
        try:
            return [self._describe(con, t) for t in self._tables(con)]
        finally:
            con.close()

    def _describe(self, con: sqlite3.Connection, table: str) -> StreamSchema:
        info = con.execute(f"PRAGMA table_info({q(table)})").fetchall()
        columns, notes, pk = [], [], []
        for _cid, name, declared, notnull, _default, pk_pos in info:
            dtype, note = map_sqlite_type(declared or "")
            if note:
                notes.append(f"{name}: {note}")
            columns.append(Column(name, dtype, nullable=not notnull and not pk_pos, native_type=declared))
            if pk_pos:
                pk.append((pk_pos, name))
        cursors = [c.name for c in columns if c.name.lower() in CURSOR_NAMES]
        cursors += [c.name for c in columns if c.type.kind in ("timestamp", "timestamptz")
                    and c.name not in cursors]
        return StreamSchema(
            name=table,
            columns=tuple(columns),
            primary_key=tuple(n for _, n in sorted(pk)),
            cursor_candidates=tuple(cursors),
            notes=tuple(notes),
        )

    def count(self, stream: StreamSchema) -> int | None:
        con = self._connect()
        try:
            return int(con.execute(f"SELECT count(*) FROM {q(stream.name)}").fetchone()[0])
        finally:
            con.close()

    def fingerprint(self, stream: StreamSchema) -> str | None:
        """The file's change counter, size and mtime, and the write-ahead log's header and size.

        Every commit moves one of them: the change counter in rollback-journal mode, the
        log's size or salts in WAL mode. It is file-wide, so a write to any table counts.
        """
        parts = []
        for path, header in ((self.path, slice(24, 28)), (Path(f"{self.path}-wal"), slice(12, 24))):
            try:
                st = path.stat()
                size, mtime = st.st_size, st.st_mtime_ns
                with path.open("rb") as f:
                    head = f.read(32)[header].hex()
            except FileNotFoundError:
                size, mtime, head = 0, 0, ""
            parts.append("-" if size == 0 else f"{size}:{mtime}:{head}")  # no log and an empty one match
        return "|".join(parts)

    def lookback(self) -> str | None:
        return self.config.lookback

    def read(self, request: ReadRequest) -> Iterator[StreamItem]:
        con = self._connect()
        try:
            con.execute("BEGIN")  # one read snapshot for the bound and the rows
            yield from with_null_rows(self._read(con, request), request)
            con.execute("COMMIT")
        except sqlite3.DatabaseError as exc:
            raise _classify(exc, f"reading {request.stream.name}") from None
        finally:
            con.close()

    def _read(self, con: sqlite3.Connection, req: ReadRequest) -> Iterator[StreamItem]:
        stream = req.stream
        cols = ", ".join(q(c) for c in stream.column_names)
        table = q(stream.name)
        keys = list(req.primary_key) or ["rowid"]
        if req.mode == "incremental":
            yield from self._incremental(con, req, cols, table, keys)
            return
        after = (req.checkpoint or {}).get("after")
        where, params = "", []
        if after is not None:
            where = f"({', '.join(q(k) for k in keys)}) > ({', '.join('?' * len(keys))})"
            params = list(after)
        _check_key(con, req, table, where, params)
        sql = f"SELECT {cols}, {', '.join(q(k) for k in keys)} FROM {table} " \
              f"{'WHERE ' + where if where else ''} ORDER BY {', '.join(q(k) for k in keys)}"
        yield from _rows(con, sql, params, req,
                         lambda last: Checkpoint({"after": list(last), "columns": keys}))

    def _incremental(self, con: sqlite3.Connection, req: ReadRequest, cols: str, table: str,
                     keys: list[str]) -> Iterator[StreamItem]:
        stream, cursor = req.stream, req.cursor
        if not cursor:
            raise ConfigurationError("incremental mode needs a cursor", stream=stream.name)
        c = q(cursor)
        upper = con.execute(f"SELECT max({c}) FROM {table}").fetchone()[0]
        col = stream.column(cursor)
        future = None
        if col is not None and col.type.kind in TEMPORAL:  # SQLite's clock is this machine's
            future = _iso_like(upper, dt.datetime.now(dt.UTC) + dt.timedelta(seconds=req.max_skew_s))
        if future is not None and _greater(upper, future):
            upper = con.execute(f"SELECT max({c}) FROM {table} WHERE {c} <= ?", [future]).fetchone()[0]
        ahead = (req.checkpoint or {}).get("cursor")
        ahead_of_all = ahead is not None and upper is not None and _greater(ahead, upper)
        if ahead_of_all:
            yield Notice(
                f"the checkpoint ({cursor} = {ahead!r}) is beyond the newest source row "
                f"({upper!r}): nothing newer to read. If the source was restored or its clock "
                "went back, run `syncline state <connection> --reset " + stream.name + "`"
            )
        found = _incremental_where(req, keys, upper)
        if found is not None and (not ahead_of_all or req.nulls_every_run):
            where, params = found
            _check_key(con, req, table, where, params)
            positions = [cursor, *keys]
            key_cols = ", ".join(q(k) for k in keys)
            yield from _rows(con, f"SELECT {cols}, {c}, {key_cols} FROM {table} WHERE {where} "
                             f"ORDER BY {c}, {key_cols}", params, req, lambda last: Checkpoint(
                                 {"cursor": last[0], "key": list(last[1:]), "columns": positions}))
        if future is None:
            return
        [(beyond,)] = con.execute(f"SELECT count(*) FROM {table} WHERE {c} > ?", [future]).fetchall()
        if beyond:
            yield future_notice(stream.name, int(beyond), req.max_skew_s, req.inclusive)
        if beyond and req.inclusive:  # loaded on every run; the checkpoint stays below them
            sql = f"SELECT {cols}, {c}, {', '.join(q(k) for k in keys)} FROM {table} WHERE {c} > ? " \
                  f"ORDER BY {c}, {', '.join(q(k) for k in keys)}"
            yield from _rows(con, sql, [future], req, None)


def _rows(con: sqlite3.Connection, sql: str, params: list[Any], req: ReadRequest,
          mark: Callable[[Sequence[Any]], Checkpoint] | None) -> Iterator[StreamItem]:
    """Batches of the query's rows (the stream's columns, then position columns), each followed
    by `mark` of its last row's positions (none without `mark`)."""
    width = len(req.stream.columns)
    cur = con.execute(sql, params)
    while True:
        failpoint("source_read")
        rows = cur.fetchmany(req.batch_size)
        if not rows:
            break
        batch, bad = rows_to_batch([r[:width] for r in rows], req.stream)
        yield from bad
        yield batch
        if mark is not None:
            yield mark(rows[-1][width:])


def _iso_like(sample: Any, when: dt.datetime) -> str | None:
    """`when` written as `sample` is (ISO 8601 text: separator, fraction digits, suffix), so
    text order is time order; None when `sample` is not such a text."""
    m = _ISO.match(sample) if isinstance(sample, str) else None
    if m is None:
        return None
    _day, sep, _clock, fraction, rest = m.groups()
    if sep is None:
        return when.date().isoformat() + rest
    text = when.strftime(f"%Y-%m-%d{sep}%H:%M:%S")
    if fraction:
        text += f".{when.microsecond:06d}"[: len(fraction)]
    return text + rest


def _again(req: ReadRequest) -> Any:
    """The cursor value an incremental read starts at again (inclusive) below its checkpoint:
    the `lookback` window below a date or time written as ISO 8601 text, or (`inclusive`) the
    checkpoint's own value; None to start after the checkpoint's position."""
    last = (req.checkpoint or {}).get("cursor")
    if last is None:
        return None
    if req.lookback_s > 0:
        earlier = _iso_minus(last, req.lookback_s)
        if earlier is not None:
            return earlier
    return last if req.inclusive else None


_ISO = re.compile(r"^(\d{4}-\d{2}-\d{2})(?:([T ])(\d{2}:\d{2}:\d{2})(\.\d{1,6})?)?(.*)$")


def _iso_minus(value: Any, seconds: int) -> str | None:
    """An ISO 8601 text `seconds` earlier, written the same way (so text order is time order)."""
    m = _ISO.match(value) if isinstance(value, str) else None
    if m is None:
        return None
    day, _sep, clock, fraction, _rest = m.groups()
    try:
        at = dt.datetime.fromisoformat(f"{day}T{clock or '00:00:00'}{fraction or ''}")
    except ValueError:
        return None
    return _iso_like(value, at - dt.timedelta(seconds=seconds))


def _incremental_where(req: ReadRequest, keys: Sequence[str], upper: Any
                       ) -> tuple[str, list[Any]] | None:
    """The WHERE condition of an incremental read up to `upper` (the newest cursor value) and
    its parameters, or None when there is nothing to read (see `cursor_position`)."""
    assert req.cursor is not None
    c = q(req.cursor)
    key_cols = ", ".join(q(k) for k in keys)
    marks = ", ".join("?" * len(keys))
    pos = Position.of(req.checkpoint)
    if pos is None:  # the first read takes the rows whose cursor is NULL too
        return (f"{c} IS NULL", []) if upper is None else (f"({c} IS NULL OR {c} <= ?)", [upper])
    if pos.cursor is None:
        after, params = f"{c} IS NOT NULL", []
    elif (again := _again(req)) is not None:
        after, params = f"{c} >= ?", [again]
    else:
        after, params = f"({c}, {key_cols}) > (?, {marks})", [pos.cursor, *pos.key]
    if not (req.nulls_every_run or pos.null_key is not None):
        return None if upper is None else (f"{after} AND {c} <= ?", [*params, upper])
    nulls, null_params = f"{c} IS NULL", []
    if pos.null_key is not None:  # inside the NULL rows: after the last one read
        nulls, null_params = f"({c} IS NULL AND ({key_cols}) > ({marks}))", list(pos.null_key)
    if upper is None:
        return nulls, null_params
    return f"({nulls} OR ({after} AND {c} <= ?))", [*null_params, *params, upper]


def _check_key(con: sqlite3.Connection, req: ReadRequest, table: str, where: str,
               params: list[Any]) -> None:
    """Raise `RepeatedKeys` when a declared key value repeats among the rows `where` selects,
    before any row is read."""
    if not req.check_key or not req.primary_key:
        return
    keys = ", ".join(q(k) for k in req.primary_key)
    grouped = (f"SELECT {keys}, count(*) AS n FROM {table} {'WHERE ' + where if where else ''} "
               f"GROUP BY {keys} HAVING n > 1")
    [(values, rows)] = con.execute(f"SELECT count(*), coalesce(sum(n), 0) FROM ({grouped})",
                                   params).fetchall()
    if values:
        samples = [tuple(r[:-1]) for r in con.execute(f"{grouped} ORDER BY n DESC LIMIT 5", params)]
        raise RepeatedKeys(tuple(req.primary_key), int(values), int(rows), samples,
                           stream=req.stream.name)


def _greater(a: Any, b: Any) -> bool:
    try:
        return bool(a > b)
    except TypeError:  # SQLite may mix storage classes in one column; compare as text then
        return str(a) > str(b)


def _classify(exc: sqlite3.DatabaseError, what: str) -> Exception:
    text = str(exc)
    if isinstance(exc, sqlite3.OperationalError) and ("locked" in text or "busy" in text):
        return TransientError(f"{what}: {text}", fix="retried automatically; check for long writers")
    if "no such table" in text or "no such column" in text:
        return ConfigurationError(f"{what}: {text}", fix="run `syncline discover` and update the workspace")
    if isinstance(exc, sqlite3.OperationalError) and "unable to open" in text:
        return ConfigurationError(f"{what}: {text}", fix="check the file path and its permissions")
    return SourceError(f"{what}: {text}", fix="check the database file is a healthy SQLite database")
