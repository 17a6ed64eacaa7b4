"""MySQL/MariaDB source: tables of one database, full refresh by key and compound-cursor incremental."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
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
    SynclineError,
)
from syncline.schema import StreamSchema
from syncline.sources.base import Source, is_own_table
from syncline.sources.cursor_position import with_null_rows
from syncline.sources.late_commits import TEMPORAL
from syncline.sources.mysql import horizon
from syncline.sources.mysql.errors import classify
from syncline.sources.mysql.read import TableReader, close_quietly, prefix_changed
from syncline.sources.mysql.types import (
    discover_tables,
    q,
)
from syncline.stream import ReadRequest, StreamItem, lookback_seconds

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
    fingerprint_in_read = True  # the rows read so far, checksummed as they are read

    def lookback(self) -> str | None:
        return self.config.lookback

    @property
    def params(self) -> Params:
        return connection_params(self.name, self.config)

    def _connect(self, *, text: bool = False) -> Connection:
        """A UTC session; with ``text`` the driver hands values over as text (see `types`)."""
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

    def preflight(self, requests: list[ReadRequest]) -> None:
        cdc = [r for r in requests if r.mode == "cdc"]
        if cdc:
            from syncline.sources.mysql.cdc import CdcReader

            CdcReader(self, cdc[0]).check()

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

        Only for a build whose state has no fingerprint of its own: a full refresh by key
        checksums the rows as it reads them, in its snapshot (`read.Prefix`), and a resume
        checks only those rows (`changed_since`). Content-based: a table changed and
        changed back during an interrupted refresh would look unchanged, the one case it
        cannot tell.
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

    def changed_since(self, stream: StreamSchema, fingerprint: str) -> bool:
        """Whether the rows a resumed full refresh has read (up to its position) changed; for
        a `CHECKSUM TABLE` fingerprint, whether the table's checksum did."""
        if not fingerprint.startswith("prefix:"):
            return self.fingerprint(stream) != fingerprint
        con = self._connect(text=True)
        try:
            return prefix_changed(con, self.table(stream), stream, fingerprint)
        except pymysql.MySQLError as exc:
            raise self._error(exc, f"checksumming {stream.name}", stream=stream.name) from None
        finally:
            close_quietly(con)

    def read(self, request: ReadRequest) -> Iterator[StreamItem]:
        if request.mode == "cdc":  # MariaDB's binlog
            from syncline.sources.mysql.cdc import CdcReader

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
