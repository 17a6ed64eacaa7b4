"""PostgreSQL source: tables (and views) of one database: full refresh, compound-cursor incremental, cdc."""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from itertools import islice
from typing import Any, Literal

import psycopg
from psycopg import sql
from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator

from syncline.errors import ConfigurationError, SourceError, TransientError
from syncline.schema import Column, StreamSchema
from syncline.sources.base import Source
from syncline.sources.postgres_read import build_query
from syncline.sources.postgres_types import (
    PgType,
    copy_rows,
    cursor_candidates,
    map_pg_type,
    parse_csv,
    text_to_batch,
)
from syncline.stream import Checkpoint, ReadRequest, StreamItem

_LOOKBACK = re.compile(r"^\s*(\d+)\s*(s|m|h|d)\s*$")
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
_SYSTEM_SCHEMAS = "n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname !~ '^pg_(toast|temp_)'"
# One round trip; values whose text form must round-trip exactly through COPY and checkpoints.
_SESSION = (
    "SELECT set_config('TimeZone', 'UTC', false), set_config('DateStyle', 'ISO, YMD', false), "
    "set_config('IntervalStyle', 'iso_8601', false), set_config('extra_float_digits', '3', false), "
    "set_config('bytea_output', 'hex', false)"
)


class PostgresConfig(BaseModel):
    """A PostgreSQL database: `dsn:`, or `host:`/`port:`/`user:`/`password:`/`database:`."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    type: Literal["postgres"]
    dsn: SecretStr | None = Field(
        None, description="libpq connection string or postgresql:// URL; instead of host/user/database."
    )
    host: str | None = Field(None, description="Server host name or address.")
    port: int = Field(5432, ge=1, le=65535, description="Server port.")
    user: str | None = Field(None, description="Role to connect as; it needs SELECT on the tables.")
    password: SecretStr | None = Field(
        None, description="Password, usually `${env:NAME}`; never printed (also allowed with `dsn:`)."
    )
    database: str | None = Field(None, description="Database name.")
    schemas: list[str] | None = Field(None, description="Only these schemas (default: all non-system).")
    include_views: bool = Field(False, description="Also offer views and materialized views as streams.")
    tables: list[str] | None = Field(None, description="Only these tables, as `schema.table`.")
    lookback: str | None = Field(
        None, description="Re-read this window (e.g. 5m, 2h) below the last cursor of date/timestamp "
        "cursors on every incremental read, to catch rows committed late; use with write: merge."
    )
    connect_timeout: int = Field(10, ge=1, description="Seconds to wait for a connection.")
    publication: str | None = Field(
        None, description="mode: cdc: the publication to decode (default `syncline_<source name>`).")
    slot: str | None = Field(
        None, description="mode: cdc: prefix of the logical replication slots, one per stream, named "
        "`<slot>_<table>` (default `syncline_<source name>`).")
    create_publication: bool = Field(
        True, description="mode: cdc: create the publication, or add a stream's table to it, when "
        "missing; false requires it to exist.")
    cdc_max_changes: int = Field(
        1_000_000, ge=1, description="mode: cdc: at most this many changes are decoded per read; the "
        "rest follow in the next run.")

    @field_validator("password", mode="before")
    @classmethod
    def _password_text(cls, value: Any) -> Any:
        # an unquoted numeric password in YAML arrives as a number; an error would print it
        return str(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else value

    @field_validator("tables")
    @classmethod
    def _qualified(cls, value: list[str] | None) -> list[str] | None:
        for t in value or []:
            if "." not in t:
                raise ValueError(f"'{t}' must be written schema.table, e.g. public.{t}")
        return value

    @field_validator("lookback")
    @classmethod
    def _window(cls, value: str | None) -> str | None:
        if value is not None and not _LOOKBACK.match(value):
            raise ValueError("expected a number and a unit s, m, h or d, e.g. 5m")
        return value

    def lookback_seconds(self) -> int:
        m = _LOOKBACK.match(self.lookback or "")
        return int(m.group(1)) * _UNIT_SECONDS[m.group(2)] if m else 0


class PostgresSource(Source):
    config: PostgresConfig
    modes = frozenset({"full_refresh", "incremental", "cdc"})

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._meta: psycopg.Connection[Any] | None = None
        self._relations: dict[str, tuple[str, str]] = {}

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
            "application_name": "syncline", "client_encoding": "UTF8",
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
            conn.execute(_SESSION)
        except psycopg.Error as exc:
            raise self._connect_error(exc) from None
        return conn

    def _connect_error(self, exc: psycopg.Error) -> Exception:
        text = self._mask(str(exc))
        what = f"source '{self.name}': cannot connect: {text}"
        keys = "`dsn:`" if self.config.dsn is not None else None
        if "password authentication failed" in text or re.search(r'role ".*" does not exist', text):
            return ConfigurationError(what, fix=f"check {keys or '`user:` and `password:`'} of source "
                                      f"'{self.name}'")
        if re.search(r'database ".*" does not exist', text):
            return ConfigurationError(what, fix=f"check {keys or '`database:`'} of source '{self.name}'")
        if "pg_hba.conf" in text or "permission denied" in text:
            return ConfigurationError(what, fix="allow this client in the server's pg_hba.conf, or "
                                      f"check {keys or '`user:`'} of source '{self.name}'")
        if isinstance(exc, psycopg.ProgrammingError) or "for connection option" in text:
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

    def _classify(self, exc: psycopg.Error, what: str) -> Exception:
        text = f"{what}: {self._mask(str(exc).strip())}"
        if isinstance(exc, (psycopg.errors.UndefinedTable, psycopg.errors.UndefinedColumn,
                            psycopg.errors.InvalidSchemaName)):
            return ConfigurationError(text, fix="the table changed since discovery: run "
                                      "`syncline discover` and update the workspace")
        if isinstance(exc, psycopg.errors.InsufficientPrivilege):
            return ConfigurationError(text, fix=f"GRANT SELECT on it to the user of source '{self.name}'")
        if isinstance(exc, (psycopg.OperationalError, psycopg.InterfaceError)):
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

    # -- discovery ---------------------------------------------------------------------

    def check(self) -> None:
        conn = self._meta_conn()
        try:
            conn.execute("SELECT 1").fetchone()
        except psycopg.Error as exc:
            raise self._classify(exc, f"source '{self.name}'") from None
        self._selected(conn)

    def _selected(self, conn: psycopg.Connection[Any]) -> list[tuple[int, str, str]]:
        """(oid, schema, table) of every relation to offer, checked against `schemas:`/`tables:`."""
        kinds = ["r", "p", "f", "v", "m"] if self.config.include_views else ["r", "p", "f"]
        where = "n.nspname = ANY(%s)" if self.config.schemas else _SYSTEM_SCHEMAS
        params: list[Any] = [kinds] + ([self.config.schemas] if self.config.schemas else [])
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
                "SELECT c.oid, n.nspname, c.relname FROM pg_class c "
                "JOIN pg_namespace n ON n.oid = c.relnamespace "
                "WHERE c.relkind = ANY(%s) AND NOT c.relispartition "
                f"AND has_table_privilege(c.oid, 'SELECT') AND {where} ORDER BY 2, 3",
                params,
            ).fetchall()
        except psycopg.Error as exc:
            raise self._classify(exc, f"source '{self.name}': listing tables") from None
        if self.config.tables:
            names = {f"{s}.{t}" for _, s, t in rows}
            missing = [t for t in self.config.tables if t not in names]
            if missing:
                raise ConfigurationError(
                    f"source '{self.name}': table(s) {', '.join(missing)} not found or not readable",
                    fix="check `tables:` (schema.table), `schemas:` and `include_views:`, and that the "
                    f"user may SELECT them; available: {', '.join(sorted(names))[:500] or '(none)'}",
                )
            rows = [r for r in rows if f"{r[1]}.{r[2]}" in self.config.tables]
        return [(int(oid), s, t) for oid, s, t in rows]

    def discover(self) -> list[StreamSchema]:
        conn = self._meta_conn()
        relations = self._selected(conn)
        if not relations:
            return []
        oids = [r[0] for r in relations]
        try:
            columns = conn.execute(_COLUMNS_SQL, [oids, oids]).fetchall()
            keys = conn.execute(_PRIMARY_KEYS_SQL, [oids]).fetchall()
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
            out.append(_describe(name, by_oid.get(oid, []), pk.get(oid, [])))
        return out

    def count(self, stream: StreamSchema) -> int | None:
        query = sql.SQL("SELECT count(*) FROM {}").format(self._relation(stream.name))
        try:
            row = self._meta_conn().execute(query).fetchone()
        except psycopg.Error as exc:
            raise self._classify(exc, f"counting {stream.name}") from None
        return int(row[0]) if row else None

    def _relation(self, stream: str) -> sql.Identifier:
        schema, _, table = stream.partition(".")
        return sql.Identifier(*self._relations.get(stream, (schema, table)))

    # -- reading -----------------------------------------------------------------------

    def read(self, request: ReadRequest) -> Iterator[StreamItem]:
        conn = self._connect()
        try:
            if request.mode == "cdc":
                from syncline.sources.postgres_cdc import CdcReader

                yield from CdcReader(self, request, conn).read()
                return
            # one snapshot for the upper bound and every row
            conn.execute("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
            yield from self._read(conn, request)
            conn.execute("COMMIT")
        except psycopg.Error as exc:
            raise self._classify(exc, f"reading {request.stream.name}") from None
        finally:
            conn.close()

    def _read(self, conn: psycopg.Connection[Any], req: ReadRequest) -> Iterator[StreamItem]:
        query, positions = build_query(
            conn, req, self._relation(req.stream.name), self.config.lookback_seconds()
        )
        keys = list(req.primary_key)
        width = len(req.stream.columns)
        types = [req.stream.column(p) for p in positions]
        group_on_cursor = req.mode == "incremental" and not keys
        bs = req.batch_size
        with conn.cursor().copy(sql.SQL("COPY ({}) TO STDOUT (FORMAT csv)").format(query)) as cp:
            rows = copy_rows(cp)  # one buffer per row: COPY TO sends one CopyData message per row
            pending = list(islice(rows, bs + 1))  # islice: no Python code runs per row
            while len(pending) > bs:  # one row of lookahead, for keyless checkpoints
                yield from self._emit(req, pending[:bs], pending[bs], width, positions, types,
                                      group_on_cursor)
                pending = [pending[bs], *islice(rows, bs)]
            if pending:
                yield from self._emit(req, pending, None, width, positions, types, group_on_cursor)

    def _emit(self, req: ReadRequest, rows: Sequence[Any], lookahead: Any, width: int,
              positions: list[str], types: list[Column | None], group_on_cursor: bool
              ) -> Iterator[StreamItem]:
        text = parse_csv(rows, width + len(positions))
        batch, bad = text_to_batch(text, req.stream)
        yield from bad
        yield batch
        last = [_json_safe(types[i], text.column(width + i)[-1].as_py()) for i in range(len(positions))]
        if req.mode == "full_refresh":
            if positions:
                yield Checkpoint({"after": last, "columns": positions})
            elif lookahead is None:  # no key to resume by: one mark when the whole table is read
                yield Checkpoint({"after": None, "complete": True, "columns": []})
            return
        if group_on_cursor and lookahead is not None:
            # Without a key, rows sharing a cursor value cannot be told apart: mark only
            # where the cursor changes, so `cursor > last` never skips the rest of a tie.
            nxt = parse_csv([lookahead], width + 1).column(width)[0].as_py()
            if nxt == text.column(width)[-1].as_py():
                return
        yield Checkpoint({"cursor": last[0], "key": last[1:], "columns": positions})


def _json_safe(col: Column | None, text: str | None) -> Any:
    """A checkpoint value: PostgreSQL's own text (exact, cast back in SQL), ints as ints."""
    if text is not None and col is not None and col.type.kind in ("int32", "int64"):
        return int(text)
    return text


def _hide(m: re.Match[str]) -> str:
    return f"{m.group(1)}***" if m.group(1) else f"{m.group(2)}***@"


def _describe(name: str, columns: list[tuple[Any, ...]], pk: list[str]) -> StreamSchema:
    cols, notes, serial = [], [], set()
    for attname, notnull, declared, typname, typtype, category, typmod, is_serial in columns:
        dtype, note = map_pg_type(PgType(typname, typtype, category, typmod), declared)
        if note:
            notes.append(f"{attname}: {note}")
        cols.append(Column(attname, dtype, nullable=not notnull, native_type=declared))
        if is_serial:
            serial.add(attname)
    return StreamSchema(name=name, columns=tuple(cols), primary_key=tuple(pk),
                        cursor_candidates=cursor_candidates(cols, serial), notes=tuple(notes))


# Domains resolve to their base type (through domains of domains), keeping the type
# modifier set along the way, so a domain over numeric(10,2) maps like numeric(10,2).
_COLUMNS_SQL = """
WITH RECURSIVE chain(start, oid, typmod) AS (
    SELECT t.oid, t.oid, -1 FROM pg_type t
    WHERE t.oid IN (SELECT atttypid FROM pg_attribute WHERE attrelid = ANY(%s))
  UNION ALL
    SELECT ch.start, t.typbasetype, CASE WHEN ch.typmod <> -1 THEN ch.typmod ELSE t.typtypmod END
    FROM chain ch JOIN pg_type t ON t.oid = ch.oid WHERE t.typtype = 'd'
)
SELECT a.attrelid, a.attname, a.attnotnull, format_type(a.atttypid, a.atttypmod),
       b.typname, b.typtype, b.typcategory,
       CASE WHEN a.atttypmod <> -1 THEN a.atttypmod ELSE ch.typmod END,
       (a.attidentity <> '' OR coalesce(pg_get_expr(d.adbin, d.adrelid) LIKE 'nextval(%%', false))
FROM pg_attribute a
JOIN chain ch ON ch.start = a.atttypid
JOIN pg_type b ON b.oid = ch.oid AND b.typtype <> 'd'
LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
WHERE a.attrelid = ANY(%s) AND a.attnum > 0 AND NOT a.attisdropped
ORDER BY a.attrelid, a.attnum
"""

_PRIMARY_KEYS_SQL = """
SELECT i.indrelid, a.attname
FROM pg_index i
CROSS JOIN LATERAL unnest(i.indkey) WITH ORDINALITY AS k(attnum, ord)
JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum
WHERE i.indisprimary AND i.indrelid = ANY(%s)
ORDER BY i.indrelid, k.ord
"""
