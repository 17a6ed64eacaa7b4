"""DuckDB destination: the embedded default warehouse, one file."""

from __future__ import annotations

import datetime as dt
import json
import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Literal

import duckdb
import pyarrow as pa
from pydantic import BaseModel, ConfigDict, Field, field_validator

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
from syncline.destinations.duckdb.types import canonical_from_duckdb, qi
from syncline.errors import (
    ConcurrencyError,
    ConfigurationError,
    DestinationError,
    Interrupted,
)
from syncline.schema import DataType

#: DuckDB keeps the blocks a load writes in memory, up to `memory_limit`, in case they are read
#: again; a loading process never reads them, and they made a load's memory grow with its
#: table (by about 3 MB a commit of 122,880 rows). Past this much they are let go.
WRITTEN_BLOCKS_KEPT = 16 << 20


class DuckDBConfig(BaseModel):
    """A DuckDB database file."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    type: Literal["duckdb"]
    path: str = Field(description="Database file; relative paths start at the workspace folder.")
    memory_limit: str = Field(
        "256MB", description="DuckDB memory_limit for loads; beyond it DuckDB spills to disk, so RSS "
        "stays flat however large the table grows. Below about 256MB DuckDB hands its buffers back to "
        "the system after every commit and spends CPU taking them again."
    )
    merge_memory_limit: str = Field(
        "1GB", description="DuckDB memory_limit while a merge commit runs: matching staged keys "
        "against a large table needs more than plain appends."
    )
    threads: int | None = Field(None, ge=1, description="DuckDB threads; default: all cores.")
    lock_timeout_s: float = Field(
        60.0, ge=0, description="How long a run waits for the file while another process holds it "
        "(DuckDB allows one process to write, and none while another has it open, even read-only: "
        "a BI tool, a notebook, a `duckdb` shell); then the run fails naming that process.")


    @field_validator("memory_limit", "merge_memory_limit")
    @classmethod
    def _size(cls, value: str) -> str:
        if not re.fullmatch(r"\d+(\.\d+)?\s*[KMGT]i?B", value.strip(), flags=re.IGNORECASE):
            raise ValueError(f"{value!r} is not a size like 64MB or 1GB")
        return value.strip()


class DuckDBDestination(Destination):
    config: DuckDBConfig
    supports_fencing = True
    # A commit of whole row groups writes them straight to the file, not through the log.
    row_group_rows = 122_880

    def __init__(self, name: str, config: BaseModel, root: str) -> None:
        super().__init__(name, config, root)
        self._con: duckdb.DuckDBPyConnection | None = None

    @property
    def path(self) -> Path:
        p = Path(self.config.path).expanduser()
        return p if p.is_absolute() else Path(self.root) / p

    @property
    def con(self) -> duckdb.DuckDBPyConnection:
        if self._con is None:
            self._con = self._connect()
        return self._con

    def _connect(self) -> duckdb.DuckDBPyConnection:
        if not self.path.parent.is_dir():
            raise ConfigurationError(
                f"destination '{self.name}': folder {self.path.parent} does not exist",
                fix=f"create it or change `path:` of destination '{self.name}'",
            )
        cfg: dict[str, Any] = {"memory_limit": self.config.memory_limit}
        if self.config.threads:
            cfg["threads"] = self.config.threads
        deadline = time.monotonic() + (self.config.lock_timeout_s if self.wait_for_lock else 0.0)
        delay = 0.1
        while True:
            try:
                con = duckdb.connect(str(self.path), config=cfg)
                con.execute("SET TimeZone = 'UTC'")
                return con
            except duckdb.IOException as exc:
                if "lock" not in str(exc).lower():
                    raise DestinationError(f"destination '{self.name}': cannot open {self.path}: {exc}") from None
                if time.monotonic() >= deadline:
                    raise self._held(exc) from None
                if self.stop.wait(min(delay, max(0.0, deadline - time.monotonic()))):
                    raise Interrupted(f"destination '{self.name}': stopped while waiting for "
                                      f"{self.path}, which another process holds") from None
                delay = min(delay * 2, 1.0)
            except duckdb.Error as exc:
                raise DestinationError(f"destination '{self.name}': cannot open {self.path}: {exc}") from None

    def _held(self, exc: duckdb.IOException) -> DestinationError:
        """The file is held by another process: name it (DuckDB says which) and the way out."""
        found = re.search(r"Conflicting lock is held in (.+?) \(PID (\d+)\)", str(exc))
        holder = f" ({found[1]}, PID {found[2]})" if found else ""
        waited = f" after waiting {self.config.lock_timeout_s:g} s" if self.wait_for_lock else ""
        return DestinationError(
            f"destination '{self.name}': another process{holder} holds {self.path}{waited}; DuckDB "
            "lets no other process write the file while one has it open, even read-only",
            fix="close that program's connection to the file (a BI tool, notebook or duckdb shell), "
                "or have it read a copy; or raise `lock_timeout_s` of destination "
                f"'{self.name}' to wait longer")

    def check(self) -> None:
        self.con.execute("SELECT 1").fetchall()

    def let_go_of_written_blocks(self) -> None:
        """Drop the table blocks DuckDB holds in memory beyond `WRITTEN_BLOCKS_KEPT`: they are
        on disk. DuckDB evicts what it can to meet a lower memory limit, so the limit is
        lowered for a moment; blocks still in use stay."""
        con = self.con
        held = con.execute(
            "SELECT memory_usage_bytes FROM duckdb_memory() WHERE tag = 'BASE_TABLE'").fetchall()
        if not held or held[0][0] <= WRITTEN_BLOCKS_KEPT:
            return
        try:
            con.execute("SET memory_limit = '1MB'")
        except duckdb.Error:
            pass  # it could not evict them all: what it could is gone
        finally:
            con.execute(f"SET memory_limit = '{self.config.memory_limit}'")

    def close(self) -> None:
        if self._con is not None:
            self._con.close()
            self._con = None

    # -- metadata tables --------------------------------------------------------------

    def ensure_schema(self, schema: str) -> None:
        """The schema of a table a dotted `table:` names (no system tables in it)."""
        self.con.execute(f"CREATE SCHEMA IF NOT EXISTS {qi(schema)}")

    def ensure_system_tables(self, schema: str) -> None:
        """The schema and its system tables, all created in one transaction: a kill between
        two CREATEs leaves none of them rather than some."""
        s = qi(schema)
        con = self.con
        con.execute("BEGIN")
        try:
            con.execute(f"CREATE SCHEMA IF NOT EXISTS {s}")
            con.execute(
                f"CREATE TABLE IF NOT EXISTS {s}.{STATE_TABLE} (stream VARCHAR NOT NULL, state VARCHAR "
                "NOT NULL, run_id BIGINT, updated_at TIMESTAMP WITH TIME ZONE NOT NULL)"
            )
            con.execute(
                f"CREATE TABLE IF NOT EXISTS {s}.{LOADS_TABLE} (run_id BIGINT, stream VARCHAR, table_name "
                "VARCHAR, rows BIGINT, quarantined BIGINT, committed_at TIMESTAMP WITH TIME ZONE)"
            )
            con.execute(
                f"CREATE TABLE IF NOT EXISTS {s}.{QUARANTINE_TABLE} (run_id BIGINT, stream VARCHAR, "
                "record VARCHAR, error VARCHAR, quarantined_at TIMESTAMP WITH TIME ZONE)"
            )
            con.execute(
                f"CREATE TABLE IF NOT EXISTS {s}.{FENCE_TABLE} (connection VARCHAR NOT NULL, "
                "token BIGINT NOT NULL, fenced_at TIMESTAMP WITH TIME ZONE)"
            )
            con.execute("COMMIT")
        except BaseException:
            con.execute("ROLLBACK")
            raise

    def fence(self, schema: str, connection: str, token: int) -> None:
        self.ensure_system_tables(schema)
        con = self.con
        con.execute("BEGIN")
        try:
            current = self.fence_token(schema, connection)
            if current is not None and current > token:
                raise ConcurrencyError(
                    f"a newer run (fencing token {current}) has taken over; this run ({token}) stops",
                    connection=connection, fix="nothing to do: the newer run continues",
                )
            con.execute(f"DELETE FROM {qi(schema)}.{FENCE_TABLE} WHERE connection = ?", [connection])
            con.execute(f"INSERT INTO {qi(schema)}.{FENCE_TABLE} VALUES (?, ?, ?)",
                        [connection, token, dt.datetime.now(dt.UTC)])
            con.execute("COMMIT")
        except BaseException:
            con.execute("ROLLBACK")
            raise

    def fence_token(self, schema: str, connection: str) -> int | None:
        """The newest fencing token recorded for ``connection`` (inside any open transaction)."""
        rows = self.con.execute(
            f"SELECT max(token) FROM {qi(schema)}.{FENCE_TABLE} WHERE connection = ?", [connection]
        ).fetchall()
        return None if not rows or rows[0][0] is None else int(rows[0][0])

    def _schema_exists(self, schema: str) -> bool:
        rows = self.con.execute(
            "SELECT 1 FROM information_schema.tables WHERE table_schema = ? AND table_name = ?",
            [schema, STATE_TABLE],
        ).fetchall()
        return bool(rows)

    def read_state(self, schema: str, stream: str) -> dict[str, Any] | None:
        return self.all_states(schema).get(stream)

    def all_states(self, schema: str) -> dict[str, dict[str, Any]]:
        if not self._schema_exists(schema):
            return {}
        rows = self.con.execute(
            f"SELECT stream, state FROM {qi(schema)}.{STATE_TABLE}"
        ).fetchall()
        out: dict[str, dict[str, Any]] = {}
        for stream, text in rows:
            try:
                value = json.loads(text)
            except json.JSONDecodeError:
                value = {"corrupt": text}
            out[stream] = value if isinstance(value, dict) else {"corrupt": text}
        return out

    def reset_state(self, schema: str, stream: str) -> bool:
        if not self._schema_exists(schema):
            return False
        n = self.con.execute(
            f"DELETE FROM {qi(schema)}.{STATE_TABLE} WHERE stream = ?", [stream]
        ).fetchall()[0][0]
        return bool(n)

    def put_state(self, schema: str, stream: str, state: dict[str, Any]) -> None:
        self.con.execute("BEGIN")
        try:
            self.write_state(schema, stream, state, int(state.get("run_id") or 0))
            self.con.execute("COMMIT")
        except BaseException:
            self.con.execute("ROLLBACK")
            raise

    def table_columns(self, schema: str, table: str) -> dict[str, DataType] | None:
        rows = self.con.execute(
            "SELECT column_name, data_type FROM information_schema.columns "
            "WHERE table_schema = ? AND table_name = ? ORDER BY ordinal_position",
            [schema, table],
        ).fetchall()
        if not rows:
            return None
        return {name: canonical_from_duckdb(t) for name, t in rows}

    def query(self, sql: str, params: list[Any] | None = None) -> list[tuple[Any, ...]]:
        return self.con.execute(sql, params or []).fetchall()

    def scan(
        self,
        schema: str,
        table: str,
        columns: list[str],
        latest: tuple[tuple[str, ...], str | None] | None,
        batch_size: int,
    ) -> Iterator[pa.RecordBatch]:
        cols = ", ".join(qi(c) for c in columns)
        live = f"{DELETED} IS NOT TRUE"
        if IS_CURRENT in (self.table_columns(schema, table) or {}):  # a history table
            live = IS_CURRENT
        sql = f"SELECT {cols} FROM {qi(schema)}.{qi(table)} WHERE {live}"
        if latest is not None:
            key, cursor = latest
            order = f"{qi(cursor)} DESC NULLS LAST, " if cursor else ""
            sql += (f" QUALIFY row_number() OVER (PARTITION BY {', '.join(qi(k) for k in key)} "
                    f"ORDER BY {order}{SYNCED_AT} DESC) = 1")
        reader: pa.RecordBatchReader = self.con.sql(sql).to_arrow_reader(batch_size)
        yield from reader

    def arrow(self, sql: str) -> pa.Table:
        return self.con.execute(sql).to_arrow_table()

    def loader(self, target: LoadTarget) -> StreamLoader:
        from syncline.destinations.duckdb.loader import DuckDBLoader

        self.ensure_system_tables(target.schema)
        if target.data_schema != target.schema:
            self.ensure_schema(target.data_schema)
        return DuckDBLoader(self, target)

    def write_state(self, schema: str, stream: str, state: dict[str, Any], run_id: int) -> None:
        """Replace a stream's state row; callers hold the open transaction."""
        self.con.execute(f"DELETE FROM {qi(schema)}.{STATE_TABLE} WHERE stream = ?", [stream])
        self.con.execute(
            f"INSERT INTO {qi(schema)}.{STATE_TABLE} VALUES (?, ?, ?, ?)",
            [stream, json.dumps(state, default=str), run_id, dt.datetime.now(dt.UTC)],
        )
