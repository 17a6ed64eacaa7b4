"""PostgreSQL destination: connection, type mapping, state tables and error classification."""

from __future__ import annotations

import datetime as dt
import json
import logging
import secrets
from collections.abc import Callable, Iterator
from typing import Any, Literal

import psycopg
import pyarrow as pa
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict, make_conninfo
from psycopg.rows import TupleRow
from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator

from syncline.destinations.base import (
    DELETED,
    FENCE_TABLE,
    IS_CURRENT,
    LOADS_TABLE,
    QUARANTINE_TABLE,
    STATE_TABLE,
    SYNCED_AT,
    Destination,
    LoadTarget,
    StreamLoader,
)
from syncline.destinations.postgres.types import canonical_from_pg, pg_type
from syncline.env_refs import literal_hint
from syncline.errors import (
    ConcurrencyError,
    ConfigurationError,
    DestinationError,
    SynclineError,
    TransientError,
)
from syncline.records import bytea_hex, list_converter, parse_interval
from syncline.schema import DataType

_AS_TEXT = ("json", "uuid", "interval")  # kinds `scan` reads as their text


def _from_text(t: DataType) -> Callable[[Any], Any]:
    """A value of `scan`'s text (a list's: its to_json() text) to its canonical value."""
    if t.element is not None:
        return list_converter(t, bytea_hex if t.element.kind == "binary" else None)
    return parse_interval

PgConnection = psycopg.Connection[TupleRow]

class PostgresDestinationConfig(BaseModel):
    """A PostgreSQL database; each connection loads into its own schema."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    type: Literal["postgres"]
    dsn: SecretStr | None = Field(
        None, description="libpq connection string or postgresql:// URL; use it instead of "
        "host/port/user/password/database. Kept secret: never printed."
    )
    host: str | None = Field(None, description="Server host name or address; default localhost.")
    port: int | None = Field(None, ge=1, le=65535, description="Server port; default 5432.")
    user: str | None = Field(None, description="Role to connect as; default: the OS user name.")
    password: SecretStr | None = Field(
        None, description="Password of `user`; better a ${env:NAME} reference. Never printed."
    )
    database: str | None = Field(None, description="Database name; required unless `dsn:` names it.")
    connect_timeout_s: int = Field(10, ge=1, le=600, description="Seconds to wait for a connection.")

    @field_validator("password", mode="before")
    @classmethod
    def _password_text(cls, value: Any) -> Any:
        # YAML reads `password: 123456` as a number; an error would then echo it
        return str(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else value


class PostgresDestination(Destination):
    config: PostgresDestinationConfig
    supports_fencing = True
    placeholder = "%s"

    def __init__(self, name: str, config: BaseModel, root: str) -> None:
        super().__init__(name, config, root)
        self._con: PgConnection | None = None
        self._secret: str | None = None

    # -- connection ----------------------------------------------------------------------

    def conninfo(self) -> str:
        """The libpq connection string; checked here so no error can echo the password."""
        c = self.config
        if c.dsn is not None:
            if any(v is not None for v in (c.host, c.port, c.user, c.password, c.database)):
                raise ConfigurationError(
                    f"destination '{self.name}': both `dsn:` and host/port/user/password/database are set",
                    fix="keep either `dsn:` or the separate keys",
                )
            try:
                parts: dict[str, Any] = conninfo_to_dict(c.dsn.get_secret_value())
            except psycopg.ProgrammingError:
                raise ConfigurationError(
                    f"destination '{self.name}': `dsn:` is not a valid connection string",
                    fix="use 'host=... port=5432 user=... dbname=...' or "
                    "'postgresql://user:password@host:5432/dbname'",
                ) from None
        else:
            if c.database is None:
                raise ConfigurationError(
                    f"destination '{self.name}': no database given",
                    fix="set `database:` (and host/port/user/password), or `dsn:`",
                )
            parts = {"host": c.host or "localhost", "port": c.port or 5432, "dbname": c.database}
            if c.user is not None:
                parts["user"] = c.user
            if c.password is not None:
                parts["password"] = c.password.get_secret_value()
        self._secret = str(parts["password"]) if parts.get("password") else None
        parts.setdefault("connect_timeout", c.connect_timeout_s)
        parts.setdefault("application_name", "syncline")
        parts["client_encoding"] = "UTF8"
        return make_conninfo(**parts)

    def describe(self) -> str:
        """Where this destination points, without the password."""
        info = conninfo_to_dict(self.conninfo())
        user = f"{info['user']}@" if info.get("user") else ""
        return f"postgres://{user}{info.get('host', 'localhost')}:{info.get('port', 5432)}/{info.get('dbname', '')}"

    def scrub(self, text: str) -> str:
        return text.replace(self._secret, "***") if self._secret else text

    @property
    def con(self) -> PgConnection:
        if self._con is None or self._con.closed:
            self._con = self._connect()
        return self._con

    def _connect(self) -> PgConnection:
        info = self.conninfo()
        try:
            con = psycopg.connect(info, autocommit=True)
            con.add_notice_handler(_notice)  # the server's notices go to the run's log
            # the program's time is UTC, and bytea::text must not depend on server settings
            con.execute("SET TIME ZONE 'UTC'")
            con.execute("SET bytea_output = 'hex'")
            con.execute("SET IntervalStyle = 'iso_8601'")  # the text `scan` parses
            # a batch's temp stage outgrows the 8MB default and would page through disk;
            # the memory is only taken as the stage fills
            con.execute("SET temp_buffers = '64MB'")
        except psycopg.Error as exc:
            text = self.scrub(str(exc))
            where = f"destination '{self.name}' ({self.describe()})"
            if any(s in text for s in ("password authentication", "does not exist", "pg_hba.conf",
                                       "no password supplied")):
                raise ConfigurationError(
                    f"{where}: cannot connect: {text}",
                    fix=f"check the user, password and database of destination '{self.name}'"
                    + literal_hint(self.config.password),
                ) from None
            raise TransientError(
                f"{where}: cannot connect: {text}",
                fix="check that the server is running and reachable; the run is retried",
            ) from None
        return con

    def check(self) -> None:
        try:
            self.con.execute("SELECT 1").fetchall()
        except psycopg.Error as exc:
            raise self.classify(exc, "checking the connection") from None

    def close(self) -> None:
        if self._con is not None:
            self._con.close()
            self._con = None

    def classify(self, exc: psycopg.Error, doing: str, *, connection: str | None = None,
                 stream: str | None = None, schema: str | None = None) -> SynclineError:
        """The error Syncline raises for a PostgreSQL failure: by what the user should do."""
        e = psycopg.errors
        text = self.scrub(str(exc).strip())
        where: dict[str, Any] = {"connection": connection, "stream": stream}
        what = f"PostgreSQL failed while {doing}: {text}"
        if isinstance(exc, e.DiskFull):
            return DestinationError(what, fix="free disk space on the PostgreSQL server, then rerun; "
                                    "the failed checkpoint was not committed", **where)
        if isinstance(exc, e.InsufficientPrivilege):
            role = self.con.info.user if self._con is not None and not self._con.closed else "the user"
            target = f"SCHEMA {schema}" if schema else "the database"
            return DestinationError(what, fix=f"GRANT CREATE, USAGE ON {target} TO {role} (and CREATE "
                                    "ON DATABASE to let Syncline create schemas)", **where)
        if isinstance(exc, (e.OutOfMemory, e.ProgramLimitExceeded, e.ConfigFileError)):
            return DestinationError(what, fix="check the PostgreSQL server's logs and limits", **where)
        if isinstance(exc, (psycopg.OperationalError, psycopg.InterfaceError, e.UniqueViolation)):
            # connection lost, server restart, serialization failure, deadlock, lock timeout,
            # or a concurrent run inserting the same keys: all go away on a retry
            return TransientError(what, fix="retried automatically; if it persists, check the "
                                  "server and whether two runs load the same stream", **where)
        if isinstance(exc, psycopg.DataError):
            return DestinationError(f"a value does not fit its destination column while {doing}: "
                                    f"{text}", fix="widen the destination column or run "
                                    "`syncline sync --full-refresh` to rebuild the table", **where)
        return DestinationError(what, **where)

    # -- metadata tables --------------------------------------------------------------------

    def ensure_system_tables(self, schema: str) -> None:
        tables = {
            STATE_TABLE: "stream TEXT PRIMARY KEY, state TEXT NOT NULL, run_id BIGINT, "
                         "updated_at TIMESTAMPTZ NOT NULL",
            LOADS_TABLE: "run_id BIGINT, stream TEXT, table_name TEXT, rows BIGINT, "
                         "quarantined BIGINT, committed_at TIMESTAMPTZ",
            # text, not jsonb: a quarantined record may hold what jsonb refuses (\u0000)
            QUARANTINE_TABLE: "run_id BIGINT, stream TEXT, record TEXT, error TEXT, "
                              "quarantined_at TIMESTAMPTZ",
            FENCE_TABLE: "connection TEXT PRIMARY KEY, token BIGINT NOT NULL, fenced_at TIMESTAMPTZ",
        }
        try:
            # CREATE ... IF NOT EXISTS checks privileges first: a role granted only its schema
            # must not be asked for CREATE on the database
            present = {r[0] for r in self.con.execute(
                "SELECT tablename FROM pg_catalog.pg_tables WHERE schemaname = %s", [schema])}
            has_schema = bool(self.con.execute(
                "SELECT 1 FROM pg_catalog.pg_namespace WHERE nspname = %s", [schema]).fetchall())
            with self.con.transaction():
                if not has_schema:
                    self.con.execute(sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(sql.Identifier(schema)))
                for table, columns in tables.items():
                    if table not in present:
                        self.con.execute(sql.SQL("CREATE TABLE IF NOT EXISTS {} ({})").format(
                            sql.Identifier(schema, table), sql.SQL(columns)))
        except psycopg.Error as exc:
            raise self.classify(exc, f"creating schema {schema}", schema=schema) from None

    def ensure_schema(self, schema: str) -> None:
        """The schema of a table a dotted `table:` names (no system tables in it)."""
        try:
            if not self.con.execute("SELECT 1 FROM pg_catalog.pg_namespace WHERE nspname = %s",
                                    [schema]).fetchall():
                with self.con.transaction():
                    self.con.execute(sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(sql.Identifier(schema)))
        except psycopg.Error as exc:
            raise self.classify(exc, f"creating schema {schema}", schema=schema) from None

    def _table_exists(self, schema: str, table: str) -> bool:
        return bool(self.con.execute("SELECT 1 FROM pg_catalog.pg_tables WHERE schemaname = %s AND "
                                     "tablename = %s", [schema, table]).fetchall())

    def fence(self, schema: str, connection: str, token: int) -> None:
        self.ensure_system_tables(schema)
        try:
            written = self.con.execute(sql.SQL(
                "INSERT INTO {} AS f VALUES (%s, %s, now()) ON CONFLICT (connection) DO UPDATE SET "
                "token = excluded.token, fenced_at = excluded.fenced_at WHERE f.token <= excluded.token"
            ).format(sql.Identifier(schema, FENCE_TABLE)), [connection, token]).rowcount
            current = None if written else self.fence_token(schema, connection)
        except psycopg.Error as exc:
            raise self.classify(exc, "recording the run's fencing token", schema=schema) from None
        if current is not None:
            raise ConcurrencyError(
                f"a newer run (fencing token {current}) has taken over; this run ({token}) stops",
                connection=connection, fix="nothing to do: the newer run continues",
            )

    def fence_token(self, schema: str, connection: str, *, lock: bool = False) -> int | None:
        """The newest fencing token of ``connection``; ``lock`` holds off a newer run's
        ``fence`` until the caller's transaction ends."""
        row = self.con.execute(sql.SQL("SELECT token FROM {} WHERE connection = %s {}").format(
            sql.Identifier(schema, FENCE_TABLE), sql.SQL("FOR SHARE" if lock else "")),
            [connection]).fetchone()
        return None if row is None else int(row[0])

    def scan(self, schema: str, table: str, columns: list[str],
             latest: tuple[tuple[str, ...], str | None] | None, batch_size: int) -> Iterator[pa.RecordBatch]:
        types = self.table_columns(schema, table) or {}
        fields = [pa.field(c, types[c].to_arrow()) for c in columns]
        # cast to the canonical type's column type, so foreign types arrive as Arrow expects;
        # json, uuid, interval and arrays as their text, converted here
        exprs = sql.SQL(", ").join(
            sql.SQL("to_json({0})::text AS {0}" if types[c].kind == "list" else "{0}::{1} AS {0}").format(
                sql.Identifier(c), sql.SQL("TEXT") if types[c].kind in _AS_TEXT else pg_type(types[c]))
            for c in columns)
        converters = {i: _from_text(types[c]) for i, c in enumerate(columns)
                      if types[c].kind in ("interval", "list")}
        distinct: sql.Composable = sql.SQL("")
        order: sql.Composable = sql.SQL("")
        if latest is not None:  # the newest version of each key: cursor, then load time
            key = sql.SQL(", ").join(map(sql.Identifier, latest[0]))
            newest = [sql.SQL("{} DESC NULLS LAST").format(sql.Identifier(c))
                      for c in (latest[1], SYNCED_AT) if c]
            distinct = sql.SQL("DISTINCT ON ({}) ").format(key)
            order = sql.SQL(" ORDER BY {}, {}").format(key, sql.SQL(", ").join(newest))
        live: sql.Composable = sql.SQL("{} IS NOT TRUE").format(sql.Identifier(DELETED))
        if IS_CURRENT in types:  # a history table: its current versions are its live rows
            live = sql.Identifier(IS_CURRENT)
        query = sql.SQL("SELECT {}{} FROM {} WHERE {}{}").format(
            distinct, exprs, sql.Identifier(schema, table), live, order)
        with self.con.transaction(), self.con.cursor(name=f"syncline_scan_{secrets.token_hex(4)}") as cur:
            cur.execute(query)
            while rows := cur.fetchmany(batch_size):
                columns_of = [list(values) for values in zip(*rows)]
                for i, convert in converters.items():
                    columns_of[i] = [None if v is None else convert(v) for v in columns_of[i]]
                yield pa.RecordBatch.from_arrays(
                    [pa.array(values, type=f.type) for values, f in zip(columns_of, fields)],
                    schema=pa.schema(fields))

    # -- catalog ---------------------------------------------------------------------------

    def has_primary_key(self, schema: str, table: str) -> bool:
        return bool(self.con.execute(
            "SELECT 1 FROM pg_catalog.pg_constraint WHERE contype = 'p' AND conrelid = "
            "to_regclass(format('%%I.%%I', %s::text, %s::text))", [schema, table]).fetchall())

    def table_is_empty(self, schema: str, table: str) -> bool:
        return not self.con.execute(sql.SQL("SELECT EXISTS (SELECT 1 FROM {})").format(
            sql.Identifier(schema, table))).fetchall()[0][0]

    def not_null_columns(self, schema: str, table: str) -> set[str]:
        """The NOT NULL columns of ``table`` outside its primary key."""
        rows = self.con.execute(
            "SELECT a.attname FROM pg_catalog.pg_attribute a WHERE a.attrelid = to_regclass("
            "format('%%I.%%I', %s::text, %s::text)) AND a.attnum > 0 AND NOT a.attisdropped "
            "AND a.attnotnull AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_constraint k WHERE "
            "k.conrelid = a.attrelid AND k.contype = 'p' AND a.attnum = ANY(k.conkey))",
            [schema, table]).fetchall()
        return {str(name) for (name,) in rows}

    def relax_not_null(self, schema: str, table: str, keep: set[str]) -> None:
        """Drop NOT NULL from the columns of ``table`` outside ``keep`` and its primary key:
        a column the source made nullable, or dropped (NULL in rows written since)."""
        for name in sorted(self.not_null_columns(schema, table) - keep):
            self.con.execute(sql.SQL("ALTER TABLE {} ALTER COLUMN {} DROP NOT NULL").format(
                sql.Identifier(schema, table), sql.Identifier(name)))

    def key_is_unique(self, schema: str, table: str, key: tuple[str, ...]) -> bool:
        """Whether a unique index on exactly ``key`` lets merges use ON CONFLICT."""
        return bool(self.con.execute(
            "SELECT 1 FROM pg_catalog.pg_index i WHERE i.indrelid = to_regclass(format('%%I.%%I', "
            "%s::text, %s::text)) AND i.indisunique AND i.indpred IS NULL AND i.indexprs IS NULL "
            "AND (SELECT array_agg(a.attname::text ORDER BY a.attname::text COLLATE \"C\") FROM "
            "pg_catalog.pg_attribute a WHERE a.attrelid = i.indrelid AND a.attnum = ANY(i.indkey)) "
            "= %s::text[]", [schema, table, sorted(key, key=str.encode)]).fetchall())

    def set_system_defaults(self, schema: str, table: str) -> None:
        """Rows inserted without the system columns get them from defaults."""
        missing = self.con.execute(
            "SELECT column_name FROM information_schema.columns WHERE table_schema = %s AND "
            "table_name = %s AND column_name = ANY(%s) AND column_default IS NULL",
            [schema, table, [SYNCED_AT, DELETED]],
        ).fetchall()
        for (name,) in missing:
            self.con.execute(sql.SQL("ALTER TABLE {} ALTER COLUMN {} SET DEFAULT {}").format(
                sql.Identifier(schema, table), sql.Identifier(name),
                sql.SQL("now()" if name == SYNCED_AT else "false")))

    def rename_primary_key(self, schema: str, table: str) -> None:
        """Give a swapped table's key its usual name, so the next build beside can reuse it."""
        row = self.con.execute(
            "SELECT conname FROM pg_catalog.pg_constraint WHERE contype = 'p' AND conrelid = "
            "to_regclass(format('%%I.%%I', %s::text, %s::text)) AND to_regclass(format('%%I.%%I', "
            "%s::text, %s::text)) IS NULL", [schema, table, schema, table + "_pkey"],
        ).fetchone()
        if row:
            self.con.execute(sql.SQL("ALTER TABLE {} RENAME CONSTRAINT {} TO {}").format(
                sql.Identifier(schema, table), sql.Identifier(row[0]), sql.Identifier(table + "_pkey")))

    def read_state(self, schema: str, stream: str) -> dict[str, Any] | None:
        return self.all_states(schema).get(stream)

    def all_states(self, schema: str) -> dict[str, dict[str, Any]]:
        try:
            if not self._table_exists(schema, STATE_TABLE):
                return {}
            rows = self.con.execute(
                sql.SQL("SELECT stream, state FROM {}").format(sql.Identifier(schema, STATE_TABLE))
            ).fetchall()
        except psycopg.Error as exc:
            raise self.classify(exc, "reading checkpoints", schema=schema) from None
        out: dict[str, dict[str, Any]] = {}
        for stream, text in rows:
            try:
                value = json.loads(text)
            except json.JSONDecodeError:
                value = {"corrupt": text}
            out[stream] = value if isinstance(value, dict) else {"corrupt": text}
        return out

    def reset_state(self, schema: str, stream: str) -> bool:
        try:
            if not self._table_exists(schema, STATE_TABLE):
                return False
            cur = self.con.execute(
                sql.SQL("DELETE FROM {} WHERE stream = %s").format(sql.Identifier(schema, STATE_TABLE)),
                [stream],
            )
        except psycopg.Error as exc:
            raise self.classify(exc, "resetting a checkpoint", schema=schema) from None
        return cur.rowcount > 0

    def put_state(self, schema: str, stream: str, state: dict[str, Any]) -> None:
        try:
            with self.con.transaction():
                self.write_state(schema, stream, state, int(state.get("run_id") or 0))
        except psycopg.Error as exc:
            raise self.classify(exc, "moving a checkpoint", schema=schema) from None

    def table_columns(self, schema: str, table: str) -> dict[str, DataType] | None:
        try:
            rows = self.con.execute(
                "SELECT column_name, data_type, numeric_precision, numeric_scale, CASE WHEN "
                "data_type = 'ARRAY' THEN (SELECT format_type(a.atttypid, a.atttypmod) FROM "
                "pg_attribute a WHERE a.attrelid = format('%%I.%%I', table_schema, table_name)::regclass "
                "AND a.attname = column_name) END "
                "FROM information_schema.columns WHERE table_schema = %s AND table_name = %s "
                "ORDER BY ordinal_position",
                [schema, table],
            ).fetchall()
        except psycopg.Error as exc:
            raise self.classify(exc, f"reading the columns of {schema}.{table}", schema=schema) from None
        if not rows:
            return None
        return {name: canonical_from_pg(t, p, s, a) for name, t, p, s, a in rows}

    def query(self, sql: str, params: list[Any] | None = None) -> list[tuple[Any, ...]]:
        cur = self.con.execute(sql.encode(), params or None)
        return cur.fetchall() if cur.description is not None else []

    def loader(self, target: LoadTarget) -> StreamLoader:
        from syncline.destinations.postgres.loader import PostgresLoader

        self.ensure_system_tables(target.schema)
        if target.data_schema != target.schema:
            self.ensure_schema(target.data_schema)
        return PostgresLoader(self, target)

    def write_state(self, schema: str, stream: str, state: dict[str, Any], run_id: int) -> None:
        """Replace a stream's state row; callers hold the open transaction."""
        self.con.execute(
            sql.SQL("INSERT INTO {} AS t (stream, state, run_id, updated_at) VALUES (%s, %s, %s, %s) "
                    "ON CONFLICT (stream) DO UPDATE SET state = excluded.state, run_id = "
                    "excluded.run_id, updated_at = excluded.updated_at").format(
                        sql.Identifier(schema, STATE_TABLE)),
            [stream, json.dumps(state, default=str), run_id, dt.datetime.now(dt.UTC)],
        )


log = logging.getLogger(__name__)


def _notice(diag: psycopg.errors.Diagnostic) -> None:
    log.info("postgres %s: %s", (diag.severity or "notice").lower(), diag.message_primary,
             extra={"fields": {"sqlstate": diag.sqlstate}})
