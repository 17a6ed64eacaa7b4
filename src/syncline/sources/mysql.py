"""MySQL/MariaDB source: tables of one database, full refresh by key and compound-cursor incremental."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Literal
from urllib.parse import unquote, urlsplit

import pymysql
import pymysql.converters
import pymysql.cursors
from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator
from pymysql.connections import Connection

from syncline.errors import (
    ConfigurationError,
    RepeatedKeys,
    SourceError,
    SynclineError,
    TransientError,
)
from syncline.failpoints import failpoint
from syncline.schema import StreamSchema
from syncline.sources import mysql_horizon as horizon
from syncline.sources.base import Source, is_own_table
from syncline.sources.cursor_position import Position, with_null_rows
from syncline.sources.late_commits import TEMPORAL, future_notice
from syncline.sources.mysql_types import (
    decode_position,
    discover_tables,
    encode_position,
    position_expr,
    q,
    select_expr,
    text_to_batch,
)
from syncline.stream import Checkpoint, ReadRequest, StreamItem, lookback_seconds

DSN_SCHEMES = ("mysql", "mariadb", "mysql+pymysql", "mariadb+pymysql")
# the driver's encoders for parameters, and no decoders: values arrive as text
TEXT_ONLY = {k: v for k, v in pymysql.converters.conversions.items() if not isinstance(k, int)}


class MysqlConfig(BaseModel):
    """A MySQL or MariaDB database, given as a `dsn` or as host, port, user, password, database."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    type: Literal["mysql"]
    dsn: SecretStr | None = Field(
        None, description="mysql://user:password@host:port/database; instead of the separate keys."
    )
    host: str | None = Field(None, description="Server host name or address.")
    port: int | None = Field(None, ge=1, le=65535, description="Server port (default 3306).")
    user: str | None = Field(None, description="User name; it needs SELECT on the tables.")
    password: SecretStr | None = Field(
        None, description="Password; use ${env:NAME} to keep it out of the file."
    )
    database: str | None = Field(None, description="The database (schema) whose tables are streams.")
    tables: list[str] | None = Field(
        None, description="Only these tables, as `table` or `database.table` (default: all)."
    )
    include_views: bool = Field(
        False, description="Offer views as streams too; with no key they are read in one pass."
    )
    connect_timeout: int = Field(10, ge=1, le=600, description="Seconds to wait for a connection "
                                 "and the server's greeting.")
    read_timeout: int = Field(600, ge=1, le=86400, description="Seconds a query waits for the "
                              "server's next packet before the attempt fails as transient (retried).")
    lookback: str | None = Field(
        None, description="Re-read this window (e.g. 5m, 2h) below the last cursor of date/time "
        "cursors on every incremental read, for writers that stamp rows with their own clock; the "
        "default of the source's streams (a stream's `lookback:` overrides it); needs write: merge.")
    server_id: int | None = Field(
        None, ge=1, le=4294967295, description="mode: cdc: the replication server id the binlog "
        "reader registers with; it must differ from the server's replicas and from readers running "
        "at the same time (default: derived from the source, the stream and the process)."
    )

    @field_validator("lookback")
    @classmethod
    def _window(cls, value: str | None) -> str | None:
        lookback_seconds(value)
        return value

    @field_validator("password", mode="before")
    @classmethod
    def _password_as_text(cls, value: Any) -> Any:
        # YAML reads `password: 1234` as a number; a type error would print it back
        return str(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else value


@dataclass(frozen=True)
class Params:
    host: str
    port: int
    user: str
    password: str
    database: str

    def where(self) -> str:
        return f"{self.user}@{self.host}:{self.port}/{self.database}"


def connection_params(name: str, cfg: MysqlConfig) -> Params:
    """Host, port, user, password and database from `dsn` or the separate keys."""
    def fail(message: str, fix: str) -> ConfigurationError:
        return ConfigurationError(f"source '{name}': {message}", fix=fix)

    password = cfg.password.get_secret_value() if cfg.password else ""
    if cfg.dsn is None:
        missing = [k for k in ("host", "user", "database") if getattr(cfg, k) in (None, "")]
        if missing:
            raise fail(f"{', '.join(f'`{k}`' for k in missing)} not set",
                       "set `dsn: mysql://user:password@host:3306/database`, or `host`, `user`, "
                       "`password` and `database`")
        assert cfg.host and cfg.user and cfg.database
        return Params(cfg.host, cfg.port or 3306, cfg.user, password, cfg.database)
    clash = [k for k in ("host", "port", "user", "database") if getattr(cfg, k) is not None]
    if clash:
        raise fail(f"`dsn` and {', '.join(f'`{k}`' for k in clash)} are both set",
                   "keep `dsn` or the separate keys, not both")
    parts = urlsplit(cfg.dsn.get_secret_value().strip())
    try:
        port = parts.port
    except ValueError:
        port = -1
    database = unquote(parts.path.lstrip("/"))
    if parts.scheme not in DSN_SCHEMES or not parts.hostname or not database or port == -1 \
            or "/" in database or parts.query:
        raise fail("`dsn` is not of the form mysql://user:password@host:port/database",
                   "write it as mysql://user:password@host:3306/database (percent-encode "
                   "special characters in the password)")
    if parts.password is not None and cfg.password is not None:
        raise fail("the password is in both `dsn` and `password`", "keep one of them")
    if parts.password is not None:
        password = unquote(parts.password)
    return Params(parts.hostname, port or 3306, unquote(parts.username or ""), password, database)


class MysqlSource(Source):
    config: MysqlConfig
    modes = frozenset({"full_refresh", "incremental", "cdc"})
    sql_cursor = True
    incremental_needs_key = True

    def lookback(self) -> str | None:
        return self.config.lookback

    @property
    def params(self) -> Params:
        return connection_params(self.name, self.config)

    def _connect(self, *, text: bool = False) -> Connection:
        """A UTC session; with ``text`` the driver hands values over as text (see mysql_types)."""
        p = self.params
        try:
            # a host that accepts and never greets must not hang the handshake
            timeout = self.config.connect_timeout
            con = pymysql.connect(
                host=p.host, port=p.port, user=p.user, password=p.password, database=p.database,
                charset="utf8mb4", autocommit=True, connect_timeout=timeout,
                read_timeout=timeout, write_timeout=timeout,
                conv=TEXT_ONLY if text else None, program_name="syncline",
            )
        except pymysql.MySQLError as exc:
            raise self._error(exc, f"cannot connect to {p.where()}", connecting=True) from None
        try:
            with con.cursor() as cur:
                # TIMESTAMP values come back as UTC; a slow loader must not make the
                # server drop a streaming result after the default 60 s
                cur.execute("SET time_zone = '+00:00', SESSION net_write_timeout = 3600", [])
        except pymysql.MySQLError as exc:
            close_quietly(con)
            raise self._error(exc, f"cannot set up a session on {p.where()}") from None
        # queries may take longer than a greeting; pymysql reads this before every packet
        con._read_timeout = self.config.read_timeout  # pymysql has no public setter for it
        return con

    def _error(self, exc: pymysql.MySQLError, what: str, *, connecting: bool = False,
               stream: str | None = None) -> SynclineError:
        return classify(exc, f"source '{self.name}': {what}", source=self.name,
                        password=self.params.password, connecting=connecting, stream=stream)

    def check(self) -> None:
        con = self._connect()
        try:
            self._tables(con)
        except pymysql.MySQLError as exc:
            raise self._error(exc, "listing tables") from None
        finally:
            close_quietly(con)

    def _tables(self, con: Connection) -> list[str]:
        types = ["BASE TABLE", "SYSTEM VERSIONED"] + (["VIEW"] if self.config.include_views else [])
        with con.cursor() as cur:
            cur.execute(
                "SELECT TABLE_NAME FROM information_schema.TABLES WHERE TABLE_SCHEMA = %s "
                f"AND TABLE_TYPE IN ({', '.join(['%s'] * len(types))}) ORDER BY TABLE_NAME",
                [self.params.database, *types],
            )
            names = [str(r[0]) for r in cur.fetchall() if not is_own_table(str(r[0]))]
        if not self.config.tables:
            return names
        prefix = self.params.database + "."
        wanted = [t.removeprefix(prefix) for t in self.config.tables]
        missing = [t for t in wanted if t not in names]
        if missing:
            views = "" if self.config.include_views else " (views need `include_views: true`)"
            raise ConfigurationError(
                f"source '{self.name}': table(s) {', '.join(missing)} not found in database "
                f"{self.params.database}{views}",
                fix=f"check `tables:`; the database holds: {', '.join(names) or '(no tables)'}",
            )
        return [n for n in names if n in wanted]

    def discover(self) -> list[StreamSchema]:
        con = self._connect()
        try:
            tables = self._tables(con)
            return discover_tables(con, self.params.database, tables)
        except pymysql.MySQLError as exc:
            raise self._error(exc, "discovering tables") from None
        finally:
            close_quietly(con)

    def late_commits_refusal(self) -> tuple[str, str] | None:
        con = self._connect()
        try:
            horizon.horizon(con)
            return None
        except pymysql.MySQLError as exc:
            if horizon.is_denied(exc):
                return horizon.refusal(self.name, self.params.user)
            raise self._error(exc, "listing open transactions") from None
        finally:
            close_quietly(con)

    def table(self, stream: StreamSchema) -> str:
        database = self.params.database
        return f"{q(database)}.{q(stream.name.removeprefix(database + '.'))}"

    def count(self, stream: StreamSchema) -> int | None:
        con = self._connect()
        try:
            with con.cursor() as cur:
                cur.execute(f"SELECT COUNT(*) FROM {self.table(stream)}", [])
                row = cur.fetchone()
            return int(row[0]) if row else None
        except pymysql.MySQLError as exc:
            raise self._error(exc, f"counting rows of {stream.name}", stream=stream.name) from None
        finally:
            close_quietly(con)

    def fingerprint(self, stream: StreamSchema) -> str | None:
        """`CHECKSUM TABLE`: a server-side scan of every row's content (SELECT suffices).

        Content-based: a table changed and changed back during an interrupted refresh
        would look unchanged, the one case it cannot tell.
        """
        con = self._connect()
        try:
            with con.cursor() as cur:
                cur.execute(f"CHECKSUM TABLE {self.table(stream)}", [])
                row = cur.fetchone()
            return None if not row or row[1] is None else str(row[1])
        except pymysql.MySQLError as exc:
            raise self._error(exc, f"checksumming {stream.name}", stream=stream.name) from None
        finally:
            close_quietly(con)

    def read(self, request: ReadRequest) -> Iterator[StreamItem]:
        if request.mode == "cdc":  # MariaDB's binlog
            from syncline.sources.mysql_cdc import CdcReader

            yield from CdcReader(self, request).read()
            return
        con = self._connect(text=True)
        try:
            limit = future = None
            cursor = request.stream.column(request.cursor) if request.cursor else None
            if request.mode == "incremental" and cursor is not None and cursor.type.kind in TEMPORAL:
                # before the snapshot: see `late_commits`
                try:
                    bound, offset = horizon.horizon(con)
                except pymysql.MySQLError as exc:
                    if not horizon.is_denied(exc):
                        raise
                    message, fix = horizon.refusal(self.name, self.params.user)
                    raise ConfigurationError(message, stream=request.stream.name, fix=fix) from None
                limit = horizon.limit(cursor, bound, offset)
                future = horizon.as_cursor(
                    cursor, bound.listed_at + dt.timedelta(seconds=request.max_skew_s), offset)
                notice = bound.notice(request.stream.name)
                if notice is not None:
                    yield notice
            with con.cursor() as cur:
                # one snapshot for the upper bound and every row
                cur.execute("SET SESSION TRANSACTION ISOLATION LEVEL REPEATABLE READ", [])
                cur.execute("START TRANSACTION WITH CONSISTENT SNAPSHOT, READ ONLY", [])
            reader = TableReader(con, request, self.table(request.stream), limit)
            yield from with_null_rows(reader.items(), request)
            if future is not None:
                yield from reader.future_rows(future)
            con.commit()
        except pymysql.MySQLError as exc:
            name = request.stream.name
            raise self._error(exc, f"reading {name}", stream=name) from None
        finally:
            close_quietly(con)


def close_quietly(con: Connection) -> None:
    """Close without draining an unfinished streaming result (as cursor.close() would),
    and without hiding the error that brought us here."""
    try:
        con.close()
    except pymysql.MySQLError:
        pass
    # An error raised mid-stream keeps the cursor alive in its traceback; when it is freed,
    # pymysql would drain the abandoned result over the closed socket (an AttributeError
    # printed as "Exception ignored"): mark that result finished instead.
    result = getattr(con, "_result", None)
    if result is not None and getattr(result, "unbuffered_active", False):
        result.unbuffered_active = False


@dataclass
class TableReader:
    con: Connection
    req: ReadRequest
    table: str
    #: incremental reads take cursor values below this only (the late-commit horizon)
    limit: str | None = None

    def items(self) -> Iterator[StreamItem]:
        req, stream = self.req, self.req.stream
        keys = list(req.primary_key)
        if req.mode == "incremental" and not req.cursor:
            raise ConfigurationError("incremental mode needs a cursor", stream=stream.name)
        positions = [req.cursor or "", *keys] if req.mode == "incremental" else keys
        checkpoint = req.checkpoint or None
        if checkpoint and checkpoint.get("columns", positions) != positions:
            raise ConfigurationError(
                f"the checkpoint is a position in columns {checkpoint.get('columns')}, but the "
                f"stream is now read by {positions}", stream=stream.name,
                fix="reset the stream's state with `syncline state <connection> --reset "
                f"{stream.name}` to read it again from the start")
        if req.mode == "incremental":
            yield from self._incremental(req.cursor or "", keys, checkpoint)
        elif keys:
            yield from self._by_key(keys, checkpoint)
        elif not (checkpoint or {}).get("complete"):
            # no key to resume by: one pass, and one checkpoint when it is whole
            for _first, _last, items in self._batches(self._select([]), []):
                yield from items
            yield Checkpoint({"complete": True, "columns": []})

    def future_rows(self, future: str) -> Iterator[StreamItem]:
        """Rows dated past `future` (the source's clock plus `max_cursor_skew`), in the read's
        snapshot: counted in a notice, and under merge loaded with no checkpoint after them."""
        req = self.req
        assert req.cursor is not None
        c = q(req.cursor)
        with self.con.cursor() as cur:
            cur.execute(f"SELECT COUNT(*) FROM {self.table} WHERE {c} > %s", [future])
            row = cur.fetchone()
        if not row or not int(row[0]):
            return
        yield future_notice(req.stream.name, int(row[0]), req.max_skew_s, req.inclusive)
        if req.inclusive:
            order = ", ".join(q(p) for p in [req.cursor, *req.primary_key])
            sql = f"{self._select([req.cursor, *req.primary_key])} WHERE {c} > %s ORDER BY {order}"
            for _first, _last, items in self._batches(sql, [future]):
                yield from items

    def _native(self, column: str) -> str | None:
        col = self.req.stream.column(column)
        return col.native_type if col else None

    def _select(self, positions: list[str]) -> str:
        exprs = [select_expr(c) for c in self.req.stream.columns]
        for name in positions:
            col = self.req.stream.column(name)
            exprs.append(position_expr(col) if col else q(name))
        return f"SELECT {', '.join(exprs)} FROM {self.table}"

    def _bind(self, column: str, value: Any) -> Any:
        return decode_position(value, self._native(column))

    def _encode(self, columns: list[str], values: Sequence[Any]) -> list[Any]:
        return [encode_position(v, self._native(c)) for c, v in zip(columns, values)]

    def _by_key(self, keys: list[str], checkpoint: dict[str, Any] | None) -> Iterator[StreamItem]:
        key_cols = ", ".join(q(k) for k in keys)
        where, params = "", []
        after = (checkpoint or {}).get("after")
        if after is not None:
            params = [self._bind(k, v) for k, v in zip(keys, after)]
            # the leading `k >= ` lets MariaDB range-scan: it does not for row constructors
            where = f"WHERE {q(keys[0])} >= %s AND ({key_cols}) > ({', '.join(['%s'] * len(keys))})"
            params = [params[0], *params]
        sql = f"{self._select(keys)} {where} ORDER BY {key_cols}"
        self._check_key(where, params)
        for _first, last, items in self._batches(sql, params):
            yield from items
            yield Checkpoint({"after": self._encode(keys, last), "columns": keys})

    def _incremental(self, cursor: str, keys: list[str], checkpoint: dict[str, Any] | None
                     ) -> Iterator[StreamItem]:
        c = q(cursor)
        with self.con.cursor() as cur:
            if self.limit is None:
                cur.execute(f"SELECT MAX({c}) FROM {self.table}", [])
            else:
                cur.execute(f"SELECT MAX({c}) FROM {self.table} WHERE {c} < %s", [self.limit])
            row = cur.fetchone()
        upper = row[0] if row else None
        found = self._where(cursor, keys, Position.of(checkpoint), upper)
        if found is None:
            return
        where, params = found
        self._check_key(where, params)
        order = ", ".join([c, *(q(k) for k in keys)])
        sql = f"{self._select([cursor, *keys])} {where} ORDER BY {order}"
        positions = [cursor, *keys]

        def mark(last: Sequence[Any]) -> Checkpoint:
            cursor_value, *key_values = self._encode(positions, last)
            value = {"cursor": cursor_value, "key": key_values, "columns": positions}
            if self.limit is not None:  # below the late-commit horizon: no row can take it any more
                value["closed"] = True
            return Checkpoint(value)

        if keys:
            for _first, last, items in self._batches(sql, params):
                yield from items
                yield mark(last)
            return
        # Without a key, a position is only safe once every row at its cursor value is
        # read: mark a batch boundary only where the cursor value changes.
        pending: Sequence[Any] | None = None
        for first, last, items in self._batches(sql, params):
            if pending is not None and first[0] != pending[0]:
                yield mark(pending)
            yield from items
            pending = last
        if pending is not None:
            yield mark(pending)

    def _where(self, cursor: str, keys: list[str], pos: Position | None, upper: Any
               ) -> tuple[str, list[Any]] | None:
        """The WHERE clause and parameters of an incremental read from `pos` up to `upper` (the
        newest cursor value below the late-commit horizon), or None when nothing is to read."""
        c, key_cols = q(cursor), [q(k) for k in keys]
        bound: list[Any] = [] if upper is None else [
            self._bind(cursor, encode_position(upper, self._native(cursor)))]
        if pos is None:  # the first read takes the rows whose cursor is NULL too
            if upper is None:
                return ("" if self.limit is None else f"WHERE {c} IS NULL"), []
            return f"WHERE ({c} IS NULL OR {c} <= %s)", bound
        after, params = self._after(c, cursor, key_cols, keys, pos)
        if not (self.req.nulls_every_run or pos.null_key is not None):
            return None if upper is None else (f"WHERE {after} AND {c} <= %s", [*params, *bound])
        nulls, null_params = f"{c} IS NULL", []
        if pos.null_key is not None and keys:  # inside the NULL rows: after the last one read
            nulls = f"({c} IS NULL AND ({', '.join(key_cols)}) > ({', '.join(['%s'] * len(keys))}))"
            null_params = [self._bind(k, v) for k, v in zip(keys, pos.null_key)]
        if upper is None:
            return f"WHERE {nulls}", null_params
        return f"WHERE ({nulls} OR ({after} AND {c} <= %s))", [*null_params, *params, *bound]

    def _after(self, c: str, cursor: str, key_cols: list[str], keys: list[str], pos: Position
               ) -> tuple[str, list[Any]]:
        """Rows after the position's `(cursor, key)`; with `lookback` or (`inclusive`, not
        `closed`) from below or at its cursor value again."""
        if pos.cursor is None:
            return f"{c} IS NOT NULL", []
        value = self._bind(cursor, pos.cursor)
        col = self.req.stream.column(cursor)
        if self.req.lookback_s > 0 and col is not None and col.type.kind in TEMPORAL:
            return f"{c} >= %s - INTERVAL %s SECOND", [value, self.req.lookback_s]
        if self.req.inclusive and not (self.req.checkpoint or {}).get("closed"):
            return f"{c} >= %s", [value]
        if not keys:
            return f"{c} > %s", [value]
        # the leading `cursor >= ` lets MariaDB use an index on the cursor column
        marks = ", ".join(["%s"] * len(keys))
        return f"{c} >= %s AND ({c}, {', '.join(key_cols)}) > (%s, {marks})", \
            [value, value, *(self._bind(k, v) for k, v in zip(keys, pos.key))]

    def _check_key(self, where: str, params: list[Any]) -> None:
        """Raise `RepeatedKeys` when a declared key value repeats among the rows `where`
        selects (a grouped count on the server, in the read's snapshot), before any row."""
        if not self.req.check_key or not self.req.primary_key:
            return
        keys = ", ".join(q(k) for k in self.req.primary_key)
        grouped = f"SELECT {keys}, COUNT(*) AS n FROM {self.table} {where} GROUP BY {keys} HAVING n > 1"
        with self.con.cursor() as cur:
            cur.execute(f"SELECT COUNT(*), COALESCE(SUM(n), 0) FROM ({grouped}) AS g", params)
            row = cur.fetchone()
            if not row or not int(row[0]):
                return
            cur.execute(f"{grouped} ORDER BY n DESC LIMIT 5", params)
            samples = [tuple(r[:-1]) for r in cur.fetchall()]
        raise RepeatedKeys(tuple(self.req.primary_key), int(row[0]), int(row[1]), samples,
                           stream=self.req.stream.name)

    def _batches(self, sql: str, params: list[Any]
                 ) -> Iterator[tuple[Sequence[Any], Sequence[Any], list[StreamItem]]]:
        """Per fetched batch: position columns of its first and last row, and its items."""
        width = len(self.req.stream.columns)
        cur = self.con.cursor(pymysql.cursors.SSCursor)
        cur.execute(sql, params)
        while True:
            rows = cur.fetchmany(self.req.batch_size)
            if not rows:
                break
            failpoint("source_read")
            batch, bad = text_to_batch(rows, self.req.stream)
            yield rows[0][width:], rows[-1][width:], [*bad, batch]


# -- errors ------------------------------------------------------------------------------

# server codes (ER_*) and client codes (CR_*) worth a retry
TRANSIENT_CODES = {
    0: "connection closed", 1040: "too many connections", 1053: "server shutting down",
    1205: "lock wait timeout", 1213: "deadlock", 1317: "query interrupted",
    1927: "connection killed", 1969: "statement timeout", 2002: "cannot connect",
    2003: "cannot connect", 2006: "server has gone away", 2013: "lost connection",
    2055: "lost connection", 3024: "statement timeout",
}
CREDENTIAL_CODES = {1045, 1698}
DATABASE_DENIED = 1044
PRIVILEGE_CODES = {1142, 1143, 1227}
MISSING_CODES = {1146, 1054, 1109}


def classify(exc: pymysql.MySQLError, what: str, *, source: str, password: str,
             connecting: bool = False, stream: str | None = None) -> SynclineError:
    """The Syncline error for a driver error; the password never appears in the message."""
    code = exc.args[0] if exc.args and isinstance(exc.args[0], int) else -1
    text = str(exc.args[1]) if len(exc.args) > 1 else str(exc)
    if password:
        text = text.replace(password, "***")
    message = f"{what}: ({code}) {text}"
    if code == DATABASE_DENIED:  # what a user who may not see it gets for a missing database too
        return ConfigurationError(message, stream=stream,
                                  fix=f"check `database` (or the path of `dsn`) of source '{source}', "
                                  "and that the user may read it: GRANT SELECT, SHOW VIEW ON db.* TO user")
    if code in CREDENTIAL_CODES:
        return ConfigurationError(message, stream=stream,
                                  fix=f"check `user` and `password` (or the `dsn`) of source '{source}'")
    if code == 1049:
        return ConfigurationError(message, stream=stream,
                                  fix=f"check `database` (or the path of `dsn`) of source '{source}'")
    if code in PRIVILEGE_CODES:
        return ConfigurationError(message, stream=stream,
                                  fix="grant the user SELECT on the database: GRANT SELECT ON db.* TO user")
    if code in MISSING_CODES:
        return ConfigurationError(message, stream=stream,
                                  fix="run `syncline discover` and update the workspace to the tables "
                                  "and columns the database has now")
    if code in TRANSIENT_CODES:
        fix = "retried automatically"
        if connecting:
            fix += f"; check the server is up and `host`/`port` (or the `dsn`) of source '{source}'"
        return TransientError(message, stream=stream, fix=fix)
    if isinstance(exc, pymysql.err.OperationalError) and connecting:
        return TransientError(message, stream=stream, fix="retried automatically")
    return SourceError(message, stream=stream, fix="see the server's message above")
