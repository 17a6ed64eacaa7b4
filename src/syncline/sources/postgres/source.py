"""PostgreSQL source: tables (and views) of one database: full refresh, compound-cursor incremental, cdc."""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
import re
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import psycopg
from psycopg import sql

from syncline.env_refs import literal_hint
from syncline.errors import ConfigurationError, SourceError, TransientError
from syncline.schema import Column, StreamSchema
from syncline.sources.base import Source
from syncline.sources.cursor_position import with_null_rows
from syncline.sources.late_commits import TEMPORAL, future_notice
from syncline.sources.postgres import arrow, horizon, privileges, resume, types
from syncline.sources.postgres.catalog import (
    COLUMNS_SQL,
    NOT_OURS,
    OWN_TABLES,
    PRIMARY_KEYS_SQL,
    SYSTEM_SCHEMAS,
    describe,
)
from syncline.sources.postgres.config import PostgresConfig
from syncline.sources.postgres.read import (
    build_query,
    plan_columns,
    repeated_keys,
    result_types,
    texts_by_ctid,
)
from syncline.sources.privileges import denied
from syncline.stream import Checkpoint, ReadRequest, StreamItem

_READ_ERRORS: tuple[type[Exception], ...] = (psycopg.Error, *arrow.ERRORS)
# One round trip; values whose text form must round-trip exactly through COPY and checkpoints.
_SESSION = (
    "SELECT set_config('TimeZone', 'UTC', false), set_config('DateStyle', 'ISO, YMD', false), "
    "set_config('IntervalStyle', 'iso_8601', false), set_config('extra_float_digits', '3', false), "
    "set_config('bytea_output', 'hex', false)"
)


class PostgresSource(Source):
    config: PostgresConfig
    modes = frozenset({"full_refresh", "incremental", "cdc"})
    sql_cursor = True
    fingerprint_in_read = True
    snapshot_modes = frozenset({"full_refresh", "incremental"})  # one REPEATABLE READ transaction
    incremental_needs_key = True

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._meta: psycopg.Connection[Any] | None = None
        self._relations: dict[str, tuple[str, str]] = {}
        self._denied: dict[str, str] = {}  # stream -> the GRANTs its reading needs

    # -- connections -------------------------------------------------------------------

    def _conninfo(self) -> dict[str, Any]:
        c = self.config
        if c.dsn is not None and (c.host or c.user or c.database):
            raise ConfigurationError(
                f"source '{self.name}': both `dsn:` and `host:`/`user:`/`database:` are set",
                fix=f"in source '{self.name}' keep either `dsn:` or the separate keys",
            )
        if c.dsn is None and not (c.host and c.user and c.database):
            raise ConfigurationError(
                f"source '{self.name}': no connection details",
                fix=f"set `dsn:`, or `host:`, `user:` and `database:` of source '{self.name}'",
            )
        kw: dict[str, Any] = {
            "application_name": horizon.APPLICATION_NAME, "client_encoding": "UTF8",
            "connect_timeout": c.connect_timeout, "autocommit": True,
            # a dead peer during a long read surfaces as a (retried) error, not a hang
            "keepalives": 1, "keepalives_idle": 30, "keepalives_interval": 10, "keepalives_count": 3,
        }
        if c.dsn is not None:
            kw["conninfo"] = c.dsn.get_secret_value()
        else:
            kw.update(host=c.host, port=c.port, user=c.user, dbname=c.database)
        if c.password is not None:
            kw["password"] = c.password.get_secret_value()
        return kw

    def _connect(self) -> psycopg.Connection[Any]:
        kw = self._conninfo()
        try:
            conn = psycopg.connect(**kw)
            conn.add_notice_handler(_notice)  # the server's notices go to the run's log
            conn.execute(_SESSION)
        except psycopg.Error as exc:
            raise self._connect_error(exc) from None
        return conn

    def _connect_error(self, exc: Exception) -> Exception:
        text = self._mask(str(exc))
        what = f"source '{self.name}': cannot connect: {text}"
        keys = "`dsn:`" if self.config.dsn is not None else None
        if "password authentication failed" in text or re.search(r'role ".*" does not exist', text):
            return ConfigurationError(what, fix=f"check {keys or '`user:` and `password:`'} of source "
                                      f"'{self.name}'" + literal_hint(self.config.password))
        if re.search(r'database ".*" does not exist', text):
            return ConfigurationError(what, fix=f"check {keys or '`database:`'} of source '{self.name}'")
        if "pg_hba.conf" in text or "permission denied" in text:
            return ConfigurationError(what, fix="allow this client in the server's pg_hba.conf, or "
                                      f"check {keys or '`user:`'} of source '{self.name}'")
        if isinstance(exc, psycopg.ProgrammingError) or re.search(
                r"for connection option|invalid connection option|in URI|missing \"=\"", text):
            return ConfigurationError(what, fix=f"check {keys or '`host:` and `port:`'} of source "
                                      f"'{self.name}'")
        if "resolve host" in text or "translate host name" in text:
            return ConfigurationError(what, fix=f"check {keys or '`host:`'} of source '{self.name}'")
        return TransientError(what, fix=f"retried automatically; check the server is up and "
                              f"{keys or '`host:` and `port:`'} of source '{self.name}'")

    def _mask(self, text: str) -> str:
        secrets = [s.get_secret_value() for s in (self.config.password, self.config.dsn) if s]
        if self.config.dsn is not None:
            try:
                parsed = psycopg.conninfo.conninfo_to_dict(self.config.dsn.get_secret_value())
                secrets.append(str(parsed.get("password") or ""))
            except psycopg.Error:
                pass
        for s in sorted((s for s in secrets if s), key=len, reverse=True):
            text = text.replace(str(s), "***")
        return re.sub(r"(password\s*=\s*)\S+|(://[^:/@\s]+:)[^@\s]+@", _hide, text)

    def _classify(self, exc: Exception, what: str) -> Exception:
        """A psycopg error, or an ADBC/Arrow one by the psycopg class it corresponds to."""
        text = f"{what}: {self._mask(str(exc).strip())}"
        kind = arrow.error_class(exc)
        if issubclass(kind, (psycopg.errors.UndefinedTable, psycopg.errors.UndefinedColumn,
                             psycopg.errors.InvalidSchemaName)):
            return ConfigurationError(text, fix="the table changed since discovery: run "
                                      "`syncline discover` and update the workspace")
        if issubclass(kind, psycopg.errors.InsufficientPrivilege):
            return ConfigurationError(text, fix=f"GRANT SELECT on it to the user of source '{self.name}'")
        if issubclass(kind, (psycopg.OperationalError, psycopg.InterfaceError)):
            return TransientError(text, fix="retried automatically (connection lost, server restart, "
                                  "serialization failure or timeout)")
        return SourceError(text, fix=f"check the server log of source '{self.name}'")

    def _meta_conn(self) -> psycopg.Connection[Any]:
        if self._meta is None or self._meta.closed:
            self._meta = self._connect()
        return self._meta

    def close(self) -> None:
        if self._meta is not None:
            self._meta.close()
            self._meta = None

    def lookback(self) -> str | None:
        return self.config.lookback

    def orderable(self, column: Column) -> bool:
        return types.orderable(column)

    def preflight(self, requests: list[ReadRequest]) -> None:
        cdc = [r.stream.name for r in requests if r.mode == "cdc"]
        if cdc:
            from syncline.sources.postgres.cdc import prerequisites

            try:
                prerequisites(self._meta_conn(), self.name, cdc[0])
            except psycopg.Error as exc:
                raise self._classify(exc, f"source '{self.name}': reading the server's settings") from None

    def late_commits_refusal(self) -> tuple[str, str] | None:
        conn = self._meta_conn()
        try:
            if horizon.sees_other_sessions(conn):
                return None
            row = conn.execute("SELECT current_user").fetchone()
        except psycopg.Error as exc:
            raise self._classify(exc, f"source '{self.name}': reading the role's privileges") from None
        return horizon.refusal(self.name, str(row[0]) if row else "?")

    # -- discovery ---------------------------------------------------------------------

    def check(self) -> None:
        conn = self._meta_conn()
        try:
            conn.execute("SELECT 1").fetchone()
        except psycopg.Error as exc:
            raise self._classify(exc, f"source '{self.name}'") from None
        self._selected(conn)

    def _selected(self, conn: psycopg.Connection[Any]) -> list[tuple[int, str, str]]:
        """(oid, schema, table) of every relation to offer, checked against `schemas:`/`tables:`;
        the ones in scope its user may not read are kept aside with their GRANTs."""
        kinds = ["r", "p", "f", "v", "m"] if self.config.include_views else ["r", "p", "f"]
        where = "n.nspname = ANY(%s)" if self.config.schemas else f"{SYSTEM_SCHEMAS} AND {NOT_OURS}"
        params: list[Any] = [kinds] + ([self.config.schemas] if self.config.schemas else [])
        params.append(list(self.context.own_schemas))
        try:
            if self.config.schemas:
                found = {r[0] for r in conn.execute(
                    "SELECT nspname FROM pg_namespace WHERE nspname = ANY(%s)", [self.config.schemas])}
                missing = [s for s in self.config.schemas if s not in found]
                if missing:
                    raise ConfigurationError(
                        f"source '{self.name}': schema(s) {', '.join(missing)} not found",
                        fix=f"check `schemas:` of source '{self.name}'")
            rows = conn.execute(
                "SELECT c.oid, n.nspname, c.relname, has_schema_privilege(n.oid, 'USAGE'), "
                "has_table_privilege(c.oid, 'SELECT'), current_user FROM pg_class c "
                "JOIN pg_namespace n ON n.oid = c.relnamespace "
                "WHERE c.relkind = ANY(%s) AND NOT c.relispartition "
                f"AND {where} AND {OWN_TABLES} ORDER BY 2, 3",
                params,
            ).fetchall()
        except psycopg.Error as exc:
            raise self._classify(exc, f"source '{self.name}': listing tables") from None
        self._denied = {f"{s}.{t}": privileges.grants(str(user), s, t, usage, select)
                        for _, s, t, usage, select, user in rows if not (usage and select)}
        readable = [(int(oid), s, t) for oid, s, t, usage, select, _ in rows if usage and select]
        if self.config.tables:
            names = {f"{s}.{t}" for _, s, t in readable}
            named = [t for t in self.config.tables if t in self._denied]
            if named:
                raise denied(self.name, named, self._denied)
            missing = [t for t in self.config.tables if t not in names]
            if missing:
                raise ConfigurationError(
                    f"source '{self.name}': table(s) {', '.join(missing)} not found",
                    fix="check `tables:` (schema.table), `schemas:` and `include_views:`; "
                    f"available: {', '.join(sorted(names))[:500] or '(none)'}",
                )
            readable = [r for r in readable if f"{r[1]}.{r[2]}" in self.config.tables]
        elif not readable and self._denied:  # nothing to offer but what it may not read: say why
            raise denied(self.name, sorted(self._denied), self._denied)
        return readable

    def unreadable(self) -> dict[str, str]:
        return dict(self._denied)

    def discover(self) -> list[StreamSchema]:
        conn = self._meta_conn()
        relations = self._selected(conn)
        if not relations:
            return []
        oids = [r[0] for r in relations]
        try:
            columns = conn.execute(COLUMNS_SQL, [oids, oids]).fetchall()
            keys = conn.execute(PRIMARY_KEYS_SQL, [oids]).fetchall()
        except psycopg.Error as exc:
            raise self._classify(exc, f"source '{self.name}': discovery") from None
        by_oid: dict[int, list[tuple[Any, ...]]] = {}
        for row in columns:
            by_oid.setdefault(int(row[0]), []).append(row[1:])
        pk: dict[int, list[str]] = {}
        for oid, name in keys:
            pk.setdefault(int(oid), []).append(name)
        out = []
        for oid, schema, table in relations:
            name = f"{schema}.{table}"
            self._relations[name] = (schema, table)
            out.append(describe(name, by_oid.get(oid, []), pk.get(oid, [])))
        return out

    def count(self, stream: StreamSchema) -> int | None:
        query = sql.SQL("SELECT count(*) FROM {}").format(self._relation(stream.name))
        try:
            row = self._meta_conn().execute(query).fetchone()
        except psycopg.Error as exc:
            raise self._classify(exc, f"counting {stream.name}") from None
        return int(row[0]) if row else None

    def estimate(self, stream: StreamSchema) -> int | None:
        """The planner's row estimate (`pg_class.reltuples`): no scan of a large table just to
        draw a progress bar. A table never vacuumed or analyzed is counted."""
        schema, table = self._names(stream.name)
        try:
            row = self._meta_conn().execute(
                "SELECT c.reltuples::bigint FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
                "WHERE n.nspname = %s AND c.relname = %s", [schema, table]).fetchone()
        except psycopg.Error as exc:
            raise self._classify(exc, f"reading the statistics of {stream.name}") from None
        if row is None or row[0] is None or row[0] < 0:
            return self.count(stream)
        return int(row[0])

    def batch_rows(self, stream: StreamSchema) -> int | None:
        """About 24 MiB of rows by the table's statistics: few large commits for narrow rows,
        bounded memory for wide ones."""
        schema, table = self._names(stream.name)
        try:
            row = self._meta_conn().execute(
                "SELECT sum(avg_width) FROM pg_stats WHERE schemaname = %s AND tablename = %s",
                [schema, table]).fetchone()
        except psycopg.Error as exc:
            raise self._classify(exc, f"reading the statistics of {stream.name}") from None
        width = int(row[0]) if row and row[0] else 0
        if width <= 0:  # never analyzed
            return None
        return _BATCH_BYTES // (width + 4 * len(stream.columns))

    def fingerprint(self, stream: StreamSchema) -> str | None:
        """The table's row count and the snapshot it was counted in, as `count:snapshot`."""
        try:
            return resume.count_fingerprint(self._meta_conn(), self._relation(stream.name))
        except psycopg.Error as exc:
            raise self._classify(exc, f"counting {stream.name}") from None

    def changed_since(self, stream: StreamSchema, fingerprint: str) -> bool:
        """Whether the rows this fingerprint stands for changed (`resume.changed`)."""
        try:
            return resume.changed(self._meta_conn(), self._relation(stream.name), fingerprint)
        except psycopg.Error as exc:
            raise self._classify(exc, f"reading {stream.name}") from None

    def _names(self, stream: str) -> tuple[str, str]:
        """(schema, table) of a stream: as discovered, else split at the first dot."""
        schema, _, table = stream.partition(".")
        return self._relations.get(stream, (schema, table))

    def _relation(self, stream: str) -> sql.Identifier:
        return sql.Identifier(*self._names(stream))

    # -- reading -----------------------------------------------------------------------

    def read(self, request: ReadRequest) -> Iterator[StreamItem]:
        conn = self._connect()
        try:
            if request.mode == "cdc":
                from syncline.sources.postgres.cdc import CdcReader

                yield from CdcReader(self, request, conn).read()
                return
            limit = future = None
            cursor = request.stream.column(request.cursor) if request.cursor else None
            if request.mode == "incremental" and cursor is not None and cursor.type.kind in TEMPORAL:
                # before the snapshot: see `late_commits`
                refused = self.late_commits_refusal()
                if refused:
                    raise ConfigurationError(refused[0], stream=request.stream.name, fix=refused[1])
                bound, zone = horizon.horizon(conn)
                limit = horizon.limit(cursor, bound, zone)
                future = horizon.as_cursor(
                    cursor, bound.listed_at + dt.timedelta(seconds=request.max_skew_s), zone)
                notice = bound.notice(request.stream.name)
                if notice is not None:
                    yield notice
            # one snapshot for the upper bound and every row
            conn.execute("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
            fresh_build = request.mode == "full_refresh" and request.checkpoint is None
            yield from with_null_rows(self._read(conn, request, fingerprint=fresh_build, limit=limit),
                                      request)
            if future is not None:
                yield from self._future_rows(conn, request, future)
            conn.execute("COMMIT")
        except _READ_ERRORS as exc:
            raise self._classify(exc, f"reading {request.stream.name}") from None
        finally:
            conn.close()

    def _future_rows(self, conn: psycopg.Connection[Any], req: ReadRequest, future: sql.Composable
                     ) -> Iterator[StreamItem]:
        """Rows dated past `future` (the source's clock plus `max_cursor_skew`), in the read's
        snapshot: counted in a notice, and under merge loaded with no checkpoint after them."""
        assert req.cursor is not None
        row = conn.execute(sql.SQL("SELECT count(*) FROM {} WHERE {} > {}").format(
            self._relation(req.stream.name), sql.Identifier(req.cursor), future)).fetchone()
        if not row or not row[0]:
            return
        yield future_notice(req.stream.name, int(row[0]), req.max_skew_s, req.inclusive)
        if req.inclusive:
            for item in self._read(conn, req, physical=False, beyond=future):
                if not isinstance(item, Checkpoint):
                    yield item

    def _read(self, conn: psycopg.Connection[Any], req: ReadRequest, fingerprint: bool = False,
              physical: bool = True, limit: sql.Composable | None = None,
              beyond: sql.Composable | None = None) -> Iterator[StreamItem]:
        """The rows of `req`, read by the ADBC driver in the snapshot of `conn`'s transaction.

        `conn` is in a REPEATABLE READ transaction: the upper bound is read there, and the
        driver's connection imports its snapshot, so both see the same rows.

        A full refresh of a plain table reads it in physical order (`_physical_read`);
        every checkpoint then carries a fingerprint of the rows before it. Other full
        refreshes (views, partitioned tables, or with `physical` false) read in primary
        key order; with `fingerprint`, `conn` counts the table in the read's snapshot while
        the rows stream, and the first checkpoint carries the result. An incremental read
        takes only cursor values below `limit` (the late-commit horizon), if given; with
        `beyond`, only the rows dated past it.
        """
        relation = self._relation(req.stream.name)
        columns = plan_columns(req.stream, result_types(conn, req.stream, relation))
        order: arrow.Physical | None = None
        file_and_snapshot = resume.physical_read(conn, req, relation) if physical else None
        if file_and_snapshot is not None:
            filenode, snapshot = file_and_snapshot
            resume.check_prefix(conn, relation, req, filenode)
            order = arrow.Physical(filenode=filenode, snapshot=snapshot,
                                   rows=int((req.checkpoint or {}).get("rows", 0)),
                                   texts=texts_by_ctid(conn, relation, columns.row_json))
        query, positions, where = build_query(conn, req, relation, columns, by_ctid=order is not None,
                                              limit=limit, beyond=beyond)
        if req.check_key and beyond is None:  # before any row: nothing of such a read is committed
            repeated = repeated_keys(conn, req, relation, where)
            if repeated is not None:
                raise repeated
        row = conn.execute("SELECT pg_export_snapshot()").fetchone()
        assert row is not None
        setup = [
            _SESSION, "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY",
            sql.SQL("SET TRANSACTION SNAPSHOT {}").format(sql.Literal(row[0])).as_string(conn),
        ]
        if order is not None:
            # a scan that starts mid-table (synchronized) or runs in parallel breaks ctid order
            setup.append("SET LOCAL synchronize_seqscans = off")
            setup.append("SET LOCAL max_parallel_workers_per_gather = 0")
        try:
            adbc = arrow.connect(arrow.conninfo(self._conninfo()))
        except arrow.ERRORS as exc:
            raise self._connect_error(exc) from None
        try:
            with ThreadPoolExecutor(1, thread_name_prefix="syncline-count") as pool, \
                    arrow.record_batches(adbc, setup, query.as_string(conn),
                                         arrow.hint_bytes(req.batch_size)) as reader:
                counted = (pool.submit(resume.count_fingerprint, conn, relation)
                           if fingerprint and order is None else None)
                for item in arrow.read_items(reader, req, positions, columns, order):
                    if counted is not None and isinstance(item, Checkpoint):
                        item = Checkpoint({**item.value, "fingerprint": counted.result()})
                        counted = None
                    elif limit is not None and isinstance(item, Checkpoint):
                        # below the late-commit horizon: no row can take these values any more
                        item = Checkpoint({**item.value, "closed": True})
                    yield item
        finally:
            with contextlib.suppress(*arrow.ERRORS, RuntimeError):
                adbc.close()  # never hide the error that brought us here


def _hide(m: re.Match[str]) -> str:
    return f"{m.group(1)}***" if m.group(1) else f"{m.group(2)}***@"


_BATCH_BYTES = 24 << 20


log = logging.getLogger(__name__)


def _notice(diag: psycopg.errors.Diagnostic) -> None:
    log.info("postgres %s: %s", (diag.severity or "notice").lower(), diag.message_primary,
             extra={"fields": {"sqlstate": diag.sqlstate}})
