"""MariaDB change data capture: a snapshot tied to a binlog position, then the binlog's row events."""

from __future__ import annotations

import dataclasses
import datetime as dt
import os
import re
import zlib
from collections.abc import Iterator
from typing import Any, Protocol

import pyarrow as pa
import pymysql
from pymysql.connections import Connection
from pymysqlreplication import BinLogStreamReader
from pymysqlreplication.event import MariadbGtidEvent, QueryEvent, RotateEvent, XidEvent
from pymysqlreplication.row_event import DeleteRowsEvent, UpdateRowsEvent, WriteRowsEvent

from syncline.errors import ConfigurationError, SourceError, SynclineError
from syncline.schema import BOOLEAN, INT64, TIMESTAMPTZ, Column, StreamSchema
from syncline.sources.mysql.binlog_values import binlog_column, binlog_text
from syncline.sources.mysql.read import TableReader, close_quietly
from syncline.sources.mysql.types import text_to_batch
from syncline.stream import Checkpoint, ReadRequest, StreamItem


class _Address(Protocol):
    @property
    def host(self) -> str: ...
    @property
    def port(self) -> int: ...
    @property
    def user(self) -> str: ...
    @property
    def password(self) -> str: ...
    @property
    def database(self) -> str: ...


class _Settings(Protocol):
    @property
    def server_id(self) -> int | None: ...
    @property
    def connect_timeout(self) -> int: ...


class CdcHost(Protocol):
    """What the binlog reader needs of the MySQL source that runs it (no import back)."""

    name: str

    @property
    def params(self) -> _Address: ...

    @property
    def config(self) -> _Settings: ...

    def _connect(self, *, text: bool = False) -> Connection: ...

    def _error(self, exc: pymysql.MySQLError, what: str, *, connecting: bool = False,
               stream: str | None = None) -> SynclineError: ...

    def table(self, stream: StreamSchema) -> str: ...

#: The system cursor of a cdc stream (kept equal to ``syncline.engine.plan.CDC_CURSOR``):
#: ``binlog_lsn`` of the change; snapshot rows carry the snapshot's binlog position.
LSN_COLUMN = "_syncline_lsn"
DELETED = "_syncline_deleted"  # the destinations' soft-delete column; sources do not import them
#: when the change was logged (to the second); a destination keeping history dates versions by it
CHANGED_AT = "_syncline_changed_at"
ROW_EVENTS = (WriteRowsEvent, UpdateRowsEvent, DeleteRowsEvent)
# server variables checked before every read, and the value mode: cdc needs
SETTINGS = (("log_bin", "ON"), ("binlog_format", "ROW"), ("binlog_row_image", "FULL"),
            ("binlog_row_metadata", "FULL"))
GRANTS = "GRANT REPLICATION SLAVE, REPLICATION CLIENT ON *.* TO <user>, plus SELECT on the tables"


def binlog_seq(file: str) -> int:
    """'mysql-bin.000042' -> 42."""
    return int(file.rsplit(".", 1)[1])


def binlog_lsn(file: str, pos: int) -> int:
    """A binlog position as one integer that grows along the binlog, across files."""
    return (binlog_seq(file) << 32) | pos


def default_server_id(source: str, stream: str) -> int:
    """A replication id of this source, stream and process, above the ids replicas usually use.

    The server drops a binlog reader when another one registers with the same id:
    two syncs reading at the same time must not share one.
    """
    return 0x40000000 + zlib.crc32(f"{source}/{stream}/{os.getpid()}".encode()) % 0x3FFFFFFF


class CdcReader:
    """One cdc read of one table: the initial snapshot, or the binlog after the checkpoint."""

    def __init__(self, source: CdcHost, req: ReadRequest) -> None:
        if not req.primary_key:
            raise ConfigurationError("mode: cdc needs a primary key", stream=req.stream.name,
                                     fix="set `primary_key:` for this stream, or use another mode")
        self.src, self.req, self.name = source, req, req.stream.name
        self.base = dataclasses.replace(
            req.stream, columns=tuple(c for c in req.stream.columns if c.name != LSN_COLUMN))
        self.database = source.params.database
        self.table = self.name.removeprefix(self.database + ".")
        self.server_id = source.config.server_id or default_server_id(source.name, self.name)
        self.resnapshot = (f"run `syncline sync <connection> --full-refresh --stream {self.name}` "
                           "to re-snapshot the table")
        self.con = source._connect(text=True)

    def read(self) -> Iterator[StreamItem]:
        try:
            self._preconditions()
            cp = self.req.checkpoint
            if cp is None:
                yield from self._snapshot(None, None)
            elif cp.get("phase") == "snapshot":
                self._require(cp["file"])  # changes since the snapshot began must still be there
                yield from self._snapshot((cp["file"], int(cp["pos"])), cp.get("after"))
            else:
                yield from self._changes(cp["file"], int(cp["pos"]))
        except pymysql.MySQLError as exc:
            raise self._error(exc, f"reading {self.name}") from None
        finally:
            close_quietly(self.con)

    def check(self) -> None:
        """The server settings and privileges a read needs, checked before any row is read."""
        try:
            self._preconditions()
        except pymysql.MySQLError as exc:
            raise self._error(exc, f"checking the binlog for {self.name}") from None
        finally:
            close_quietly(self.con)

    # -- server ------------------------------------------------------------------------

    def _query(self, sql: str, params: list[Any] | None = None) -> list[tuple[Any, ...]]:
        with self.con.cursor() as cur:
            cur.execute(sql, params)  # no parameters: a literal % stays as it is
            return list(cur.fetchall())

    def _fail(self, message: str, fix: str) -> ConfigurationError:
        return ConfigurationError(f"source '{self.src.name}': {message}", stream=self.name, fix=fix)

    def _mariadb_only(self, what: str) -> ConfigurationError:
        return self._fail(f"mode: cdc is supported on MariaDB only for now, and {what}",
                          "use mode: incremental with a cursor column (e.g. updated_at) for this "
                          "stream, or full_refresh")

    def _preconditions(self) -> None:
        [(version,)] = self._query("SELECT VERSION()")
        if "mariadb" not in str(version).lower():
            raise self._mariadb_only(f"the server is MySQL {version}")
        try:
            [values] = self._query("SELECT " + ", ".join(f"@@GLOBAL.{s[0]}" for s in SETTINGS))
        except pymysql.MySQLError as exc:
            if exc.args and exc.args[0] == 1193:  # unknown system variable: before 10.5
                raise self._fail(f"MariaDB {version} has no binlog_row_metadata", "mode: cdc needs "
                                 "MariaDB 10.5 or later (with binlog_row_metadata = FULL)") from None
            raise
        for (name, needed), value in zip(SETTINGS, values):
            value = {"1": "ON", "0": "OFF"}.get(str(value), str(value).upper())  # log_bin is 1/0
            if value != needed:
                fix = (f"SET GLOBAL {name} = '{needed}' and put {name} = {needed} in my.cnf; sessions "
                       "opened before keep their setting until they reconnect")
                if name == "log_bin":
                    fix = "start the server with binary logging (log_bin = mysql-bin in my.cnf)"
                raise self._fail(f"the server's {name} is {value}; mode: cdc needs {name} = {needed}",
                                 fix)
        self._binlogs()  # needs REPLICATION CLIENT

    def _binlogs(self) -> list[tuple[str, int]]:
        return [(str(r[0]), int(r[1])) for r in self._query("SHOW BINARY LOGS")]

    def _require(self, file: str) -> list[tuple[str, int]]:
        """The binlogs on the server; fails loudly when ``file`` was purged."""
        logs = self._binlogs()
        if file not in {name for name, _ in logs}:
            oldest = logs[0][0] if logs else "none"
            raise self._fail(
                f"binlog {file}, where the last sync of {self.name} stopped, is no longer on the "
                f"server (purged; the oldest is {oldest}): the changes since then cannot be read",
                f"{self.resnapshot}; keep binlogs longer than the time between syncs "
                "(binlog_expire_logs_seconds or expire_logs_days)")
        return logs

    def _error(self, exc: pymysql.MySQLError, what: str) -> SynclineError:
        code = exc.args[0] if exc.args and isinstance(exc.args[0], int) else -1
        text = str(exc.args[1]) if len(exc.args) > 1 else str(exc)
        if self.src.params.password:
            text = text.replace(self.src.params.password, "***")
        if code == 1227:  # access denied: needs a (replication) privilege
            return self._fail(f"{what}: ({code}) {text}", GRANTS)
        if code == 1236:  # the binlog dump cannot read from the requested position
            return self._fail(f"{what}: ({code}) {text}", self.resnapshot)
        return self.src._error(exc, what, stream=self.name)

    def _stream(self, file: str, pos: int, events: list[type]) -> Any:
        p = self.src.params
        settings = {"host": p.host, "port": p.port, "user": p.user, "password": p.password,
                    "connect_timeout": self.src.config.connect_timeout}
        return BinLogStreamReader(  # non-blocking: the server ends the stream at the binlog's end
            settings, server_id=self.server_id, log_file=file, log_pos=pos, resume_stream=True,
            blocking=False, only_events=events, only_schemas=[self.database],
            only_tables=[self.table], enable_logging=False)

    # -- snapshot ----------------------------------------------------------------------

    def _snapshot(self, start: tuple[str, int] | None, after: list[Any] | None
                  ) -> Iterator[StreamItem]:
        """The table as of one binlog position; a resumed snapshot keeps the first one's position.

        Rows read later than that position are older than the changes replayed after it,
        which carry higher positions, so the destination still ends at the latest version.
        """
        self._query("SET SESSION TRANSACTION ISOLATION LEVEL REPEATABLE READ")
        self._query("START TRANSACTION WITH CONSISTENT SNAPSHOT, READ ONLY")
        status = {str(k).lower(): v for k, v in self._query("SHOW STATUS LIKE 'binlog_snapshot_%'")}
        if not status.get("binlog_snapshot_file"):
            raise self._mariadb_only("the server reports no binlog_snapshot_file status")
        if start is None:
            start = (str(status["binlog_snapshot_file"]), int(status["binlog_snapshot_position"]))
            probe = self._stream(*start, [RotateEvent])
            try:  # fail now, not after the snapshot, when the user may not read the binlog
                probe.fetchone()
            finally:
                probe.close()
        file, pos = start
        keys = list(self.req.primary_key)
        sub = ReadRequest(stream=self.base, mode="full_refresh", primary_key=self.req.primary_key,
                          checkpoint={"after": after, "columns": keys} if after is not None else None,
                          batch_size=self.req.batch_size)
        lsn = pa.scalar(binlog_lsn(file, pos), type=pa.int64())
        for item in TableReader(self.con, sub, self.src.table(self.base)).items():
            if isinstance(item, pa.RecordBatch):
                yield item.append_column(LSN_COLUMN, pa.repeat(lsn, item.num_rows))
            elif isinstance(item, Checkpoint):
                yield Checkpoint({"phase": "snapshot", "after": item.value["after"], "columns": keys,
                                  "file": file, "pos": pos})
            else:
                yield item
        self.con.commit()
        yield self._mark(file, pos, _lag(self._binlogs(), file, pos))

    # -- changes -----------------------------------------------------------------------

    def _mark(self, file: str, pos: int, lag: int) -> Checkpoint:
        return Checkpoint({"phase": "stream", "file": file, "pos": pos, "lag_bytes": lag})

    def _changes(self, file: str, pos: int) -> Iterator[StreamItem]:
        """Row events after (file, pos) up to the binlog's end when the read began.

        A checkpoint is only ever a transaction boundary; a huge transaction is staged in
        several batches and committed with the checkpoint after it.
        """
        logs = self._require(file)
        lag, end = _lag(logs, file, pos), binlog_lsn(*logs[-1])
        rows = _Rows(self)
        safe, in_trx = (file, pos), False
        stream = self._stream(file, pos, [*ROW_EVENTS, XidEvent, QueryEvent, MariadbGtidEvent])
        try:
            for event in stream:
                at = (str(stream.log_file), int(event.packet.log_pos))
                if isinstance(event, ROW_EVENTS):
                    rows.add(event, at[0])
                    if len(rows) >= 4 * self.req.batch_size:
                        yield from rows.flush()
                    continue
                if isinstance(event, MariadbGtidEvent):
                    in_trx = not event.flags & 1  # FL_STANDALONE: one statement, no COMMIT follows
                    continue
                if isinstance(event, QueryEvent):
                    text = event.query.strip().rstrip(";").upper()
                    if text == "BEGIN":
                        in_trx = True
                        continue
                    if text not in ("COMMIT", "ROLLBACK"):
                        self._check_statement(event, at)
                        if in_trx:
                            continue
                in_trx = False  # after an Xid, a COMMIT or a standalone statement
                safe = at
                if rows.pending >= self.req.batch_size:
                    yield from rows.flush()
                    yield self._mark(*safe, lag)
                    rows.pending = 0
                if binlog_lsn(*safe) >= end:
                    break
            else:
                if not in_trx and stream.log_pos:  # the end: past trailing non-data events too
                    safe = (str(stream.log_file), int(stream.log_pos))
        finally:
            stream.close()
        yield from rows.flush()
        yield self._mark(*safe, lag)

    def _check_statement(self, event: Any, at: tuple[str, int]) -> None:
        """A statement that changes the table outside row events cannot be replayed."""
        schema = event.schema.decode() if isinstance(event.schema, bytes) else str(event.schema)
        verb = statement_on(event.query, schema, self.database, self.table)
        if verb:
            raise SourceError(
                f"{verb} {self.name} at binlog {at[0]}:{at[1]}: a statement that changes the table "
                "without row events cannot be replayed", stream=self.name, fix=self.resnapshot)


def _lag(logs: list[tuple[str, int]], file: str, pos: int) -> int:
    """Bytes of binlog from (file, pos) to its end."""
    seq = binlog_seq(file)
    return max(0, sum(size for name, size in logs if binlog_seq(name) >= seq) - pos)


_CHANGING = re.compile(r"\s*(?:/\*.*?\*/\s*)*(TRUNCATE|ALTER|DROP|RENAME|CREATE\s+OR\s+REPLACE|"
                       r"INSERT|UPDATE|DELETE|REPLACE|LOAD)\b", re.I | re.S)
_REF = re.compile(r"(?:(`(?:[^`]|``)+`|[\w$]+)\s*\.\s*)?(`(?:[^`]|``)+`|[\w$]+)")


def statement_on(query: str, default_db: str, database: str, table: str) -> str | None:
    """The verb of ``query`` when it may change ``database.table`` (TRUNCATE, ALTER...), else None.

    Any mention of the table counts: a false alarm fails loudly, a missed one would not.
    """
    m = _CHANGING.match(query)
    if not m:
        return None

    def name(token: str) -> str:
        return token[1:-1].replace("``", "`") if token.startswith("`") else token

    for ref in _REF.finditer(query, m.end()):
        db = name(ref.group(1)) if ref.group(1) else default_db
        if db.lower() == database.lower() and name(ref.group(2)).lower() == table.lower():
            return " ".join(m.group(1).upper().split())
    return None


class _Rows:
    """Changes of one table as rows of snapshot text, turned into Arrow by the snapshot's conversion."""

    def __init__(self, reader: CdcReader) -> None:
        self.reader = reader
        base = reader.base
        self.cols = [binlog_column(c) for c in base.columns]
        self.keys = set(reader.req.primary_key)
        # nullability as discovered: a zero date in a NOT NULL column is quarantined, as in the
        # snapshot (Arrow fields are nullable anyway, so tombstones fit)
        self.stream = dataclasses.replace(
            base, columns=(*base.columns, Column(LSN_COLUMN, INT64), Column(DELETED, BOOLEAN),
                           Column(CHANGED_AT, TIMESTAMPTZ)))
        self.values: list[list[Any]] = []
        self.pending = 0  # rows since the last checkpoint, flushed or not
        self.at = ""  # when the event being added was logged

    def __len__(self) -> int:
        return len(self.values)

    def add(self, event: Any, file: str) -> None:
        """The event's rows, each with its own position inside the event.

        A row image takes at least one byte and an update two, so ``start + 1 + n`` stays
        below the event's end: positions grow strictly along the binlog.
        """
        lsn = binlog_lsn(file, event.packet.log_pos - event.packet.event_size) + 1
        self.at = dt.datetime.fromtimestamp(event.timestamp, dt.UTC).strftime("%Y-%m-%d %H:%M:%S")
        lib = {c.name: c for c in event.columns}
        missing = [c.name for c in self.cols if c.name not in lib]
        if missing:
            raise SourceError(
                f"a binlog row event of {self.reader.name} at {file}:{event.packet.log_pos} has no "
                f"column(s) {', '.join(missing)}: the table was changed (ALTER TABLE) after this "
                "change was logged, or binlog_row_metadata was not FULL then",
                stream=self.reader.name, fix=self.reader.resnapshot)
        for row in event.rows:
            if isinstance(event, UpdateRowsEvent):
                old, new = row["before_values"], row["after_values"]
                if any(old[k] != new[k] for k in self.keys):  # the row under the old key is gone
                    self._add(old, {}, lib, lsn, deleted=True)
                    lsn += 1
                self._add(new, row["after_none_sources"], lib, lsn, deleted=False)
            else:
                self._add(row["values"], row["none_sources"], lib, lsn,
                          deleted=isinstance(event, DeleteRowsEvent))
            lsn += 1

    def _add(self, values: dict[str, Any], why: dict[str, str], lib: dict[str, Any], lsn: int,
             deleted: bool) -> None:
        row = [binlog_text(c, values[c.name], why.get(c.name), lib[c.name])
               if not deleted or c.name in self.keys else None for c in self.cols]
        self.values.append([*row, str(lsn), "1" if deleted else "0", self.at])
        self.pending += 1

    def flush(self) -> Iterator[StreamItem]:
        if not self.values:
            return
        rows, self.values = self.values, []
        for i, col in enumerate(self.cols):
            if col.server:
                self._server_text(rows, i, col.server)
        batch, bad = text_to_batch(rows, self.stream)
        yield from bad
        yield batch

    def _server_text(self, rows: list[list[Any]], i: int, expr: str) -> None:
        """Types the client cannot print (INET6, UUID, geometry) are printed by the server."""
        todo = [row for row in rows if row[i] is not None]
        for start in range(0, len(todo), 500):
            chunk = todo[start:start + 500]
            [texts] = self.reader._query("SELECT " + ", ".join([expr] * len(chunk)),
                                         [row[i] for row in chunk])
            for row, text in zip(chunk, texts):
                row[i] = text
