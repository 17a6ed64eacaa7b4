"""Loading one stream into DuckDB: staging, evolve, and the one-transaction commit."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, Protocol

import duckdb
import pyarrow as pa
import pyarrow.compute as pc

from syncline.destinations.base import (
    CHANGED_AT,
    DELETED,
    IS_CURRENT,
    LOADS_TABLE,
    QUARANTINE_TABLE,
    SYNCED_AT,
    VALID_FROM,
    CommitResult,
    LoadTarget,
    StreamLoader,
    Written,
    build_mismatch,
    carried_columns,
    incompatible,
    joined,
    not_history,
    sequence,
    shrink_refused,
    with_built_rows,
)
from syncline.destinations.deletes import mark_gone
from syncline.destinations.duckdb import versions
from syncline.destinations.duckdb.build import keep_missing
from syncline.destinations.duckdb.errors import classify
from syncline.destinations.duckdb.types import duckdb_type, qi
from syncline.destinations.history import HistorySQL, history_columns
from syncline.errors import (
    ConcurrencyError,
    DestinationError,
    IntegrityError,
    ShrinkRefused,
)
from syncline.failpoints import failpoint
from syncline.schema import BOOLEAN, TIMESTAMPTZ, Column, ColumnChange, DataType, diff_columns
from syncline.stream import BadRecord


class _Memory(Protocol):
    @property
    def memory_limit(self) -> str: ...
    @property
    def merge_memory_limit(self) -> str: ...


class LoaderHost(Protocol):
    """What a loader needs of the DuckDB destination that made it (no import back)."""

    @property
    def con(self) -> duckdb.DuckDBPyConnection: ...

    @property
    def config(self) -> _Memory: ...

    def fence_token(self, schema: str, connection: str) -> int | None: ...

    def table_columns(self, schema: str, table: str) -> dict[str, DataType] | None: ...

    def let_go_of_written_blocks(self) -> None: ...

    def write_state(self, schema: str, stream: str, state: dict[str, Any], run_id: int) -> None: ...

BUILDING_SUFFIX = "__syncline_building"
SPILL_BYTES = 64 * 1024 * 1024
SEQ = "__syncline_seq"
CHANGED_TYPE = pa.timestamp("us", tz="UTC")


class DuckDBLoader(StreamLoader):
    def __init__(self, dest: LoaderHost, target: LoadTarget) -> None:
        self.dest = dest
        self.target = target
        self.qi = qi
        self.pending: list[pa.RecordBatch] = []
        self.pending_bytes = 0
        self.spilled = False
        self.bad: list[BadRecord] = []
        self.seq = 0
        self.stage = f"_syncline_stage_{abs(hash((target.data_schema, target.table))) % 10**8}"
        self.table = target.table
        if target.build_beside:
            self.table = target.table + BUILDING_SUFFIX
        # write: history straight into its table (incremental, cdc), or through a build
        # beside that the end of a full refresh applies to the versions (a snapshot)
        self.history = target.write == "history"
        self.snapshot = self.history and target.build_beside
        #: the staged rows become versions of the table directly
        self.versions = self.history and not target.build_beside
        self.keyed = bool(target.primary_key) and (target.write == "merge" or self.snapshot)
        self.changes = self._prepare()
        # a first load into an empty table whose keys each come once: inserts, not merges
        self.insert_only = target.keys_once and not self.versions and self._empty_table()
        self.json_columns = [i for i, c in enumerate(target.stream.columns) if c.type.kind == "json"]
        # rows the table built beside holds, as the commits counted them
        self.built = (0 if target.restart_build else target.built_rows) if target.build_beside else None

    # -- table preparation -----------------------------------------------------------

    @property
    def fq(self) -> str:
        return f"{self.qi(self.target.data_schema)}.{self.qi(self.table)}"

    def _incoming(self) -> list[Column]:
        return [*self.target.stream.columns, Column(SYNCED_AT, TIMESTAMPTZ), Column(DELETED, BOOLEAN)]

    def _prepare(self) -> list[ColumnChange]:
        con = self.dest.con
        if self.target.build_beside and self.target.restart_build:
            con.execute(f"DROP TABLE IF EXISTS {self.fq}")
        existing = self.dest.table_columns(self.target.data_schema, self.table)
        if existing is None:
            incoming = [*self._incoming(), *(history_columns() if self.versions else [])]
            self._create(self.fq, incoming)
            self.columns = {c.name: c.type for c in self._incoming()}
            changes: list[ColumnChange] = []
        else:
            if self.versions and VALID_FROM not in existing:
                raise not_history(self.target)
            self.columns, changes = self._evolve(self.fq, existing)
        self.final_columns: dict[str, DataType] | None = None
        if self.snapshot and not self.target.history_restart:
            final = self.dest.table_columns(self.target.data_schema, self.target.table)
            if final is not None and VALID_FROM in final:  # the versions the build is applied to
                self.final_columns, changes = self._evolve(self._final, final)
        return changes

    def _create(self, fq: str, columns: list[Column]) -> None:
        cols = ", ".join(f"{self.qi(c.name)} {duckdb_type(c.type)}" for c in columns)
        self.dest.con.execute(f"CREATE TABLE {fq} ({cols})")

    def _evolve(self, fq: str, existing: dict[str, DataType]
                ) -> tuple[dict[str, DataType], list[ColumnChange]]:
        """Add and widen the columns of table ``fq`` for the incoming stream."""
        con = self.dest.con
        changes = diff_columns(existing, self._incoming())
        bad = [c for c in changes if c.action == "incompatible"]
        if bad:
            raise incompatible(bad, self.target)
        con.execute("BEGIN")
        try:
            for c in changes:
                assert c.result is not None
                if c.action == "add":
                    con.execute(f"ALTER TABLE {fq} ADD COLUMN {self.qi(c.column)} {duckdb_type(c.result)}")
                elif c.action == "widen":
                    con.execute(
                        f"ALTER TABLE {fq} ALTER COLUMN {self.qi(c.column)} TYPE {duckdb_type(c.result)}"
                    )
            con.execute("COMMIT")
        except duckdb.Error as exc:
            con.execute("ROLLBACK")
            raise DestinationError(f"cannot evolve {fq}: {exc}", connection=self.target.connection,
                                   stream=self.target.stream.name) from None
        columns = dict(existing)
        for c in changes:
            if c.result is not None:
                columns[c.column] = c.result
        return columns, changes

    @property
    def _final(self) -> str:
        return f"{self.qi(self.target.data_schema)}.{self.qi(self.target.table)}"

    # -- staging ---------------------------------------------------------------------

    def write(self, batch: pa.RecordBatch) -> None:
        if batch.num_rows == 0:
            return
        now = pa.scalar(dt.datetime.now(dt.UTC), type=pa.timestamp("us", tz="UTC"))
        n = batch.num_rows
        deleted: pa.Array = pa.repeat(pa.scalar(False), n)
        changed: pa.Array = pa.nulls(n, CHANGED_TYPE)
        if CHANGED_AT in batch.schema.names:  # a cdc source's commit times: they date versions
            i = batch.schema.get_field_index(CHANGED_AT)
            changed = batch.column(i).cast(CHANGED_TYPE)
            batch = batch.remove_column(i)
        if DELETED in batch.schema.names:  # a cdc source marks deletes itself: keep its tombstones
            i = batch.schema.get_field_index(DELETED)
            deleted = pc.fill_null(batch.column(i), False)
            batch = batch.remove_column(i)
        for i in self.json_columns:
            # already valid JSON text: as arrow.json, DuckDB stores it without parsing it again
            batch = batch.set_column(i, batch.schema.field(i).name,
                                     pa.ExtensionArray.from_storage(pa.json_(), batch.column(i)))
        batch = batch.append_column(SYNCED_AT, pa.repeat(now, n)) \
            .append_column(DELETED, deleted) \
            .append_column(SEQ, sequence(self.seq, n))
        if self.versions:
            batch = batch.append_column(CHANGED_AT, changed)
        self.seq += n
        self.pending.append(batch)
        self.pending_bytes += batch.nbytes
        if self.pending_bytes > SPILL_BYTES:
            self._spill()

    def _spill(self) -> None:
        con = self.dest.con
        table = pa.Table.from_batches(self.pending)
        con.register("_syncline_pending", table)
        try:
            if not self.spilled:
                con.execute(f"CREATE OR REPLACE TEMP TABLE {self.stage} AS SELECT * FROM _syncline_pending")
                self.spilled = True
            else:
                con.execute(f"INSERT INTO {self.stage} SELECT * FROM _syncline_pending")
        finally:
            con.unregister("_syncline_pending")
        self.pending, self.pending_bytes = [], 0

    def quarantine(self, record: BadRecord) -> None:
        self.bad.append(record)

    # -- commit ----------------------------------------------------------------------

    def commit(self, state: dict[str, Any]) -> CommitResult:
        con = self.dest.con
        if self.spilled:
            self._spill() if self.pending else None
            source = self.stage
        else:
            source = "_syncline_pending"
            con.register(source, self._pending_rows())
        merging = self.keyed or self.history
        if merging:
            con.execute(f"SET memory_limit = '{self.dest.config.merge_memory_limit}'")
        try:
            with self._transaction():
                written, built = self._commit_now(source, state)
            self.built = built
        finally:
            if not self.spilled:
                con.unregister(source)
            if merging:
                con.execute(f"SET memory_limit = '{self.dest.config.memory_limit}'")
        if not merging or self.insert_only:  # a merge reads the table again: it keeps them
            self.dest.let_go_of_written_blocks()
        failpoint("after_commit")
        result = CommitResult(rows=written.rows, quarantined=len(self.bad), skipped=written.skipped,
                              added=written.added)
        self._clear()
        return result

    def _commit_now(self, source: str, state: dict[str, Any]) -> tuple[Written, int | None]:
        """Inside the commit's transaction: rows, quarantine, state row and load record."""
        con = self.dest.con
        self._check_fence()
        staged = (con.execute(f"SELECT count(*) FROM {source}").fetchall()[0][0] if self.spilled
                  else sum(b.num_rows for b in self.pending))
        written = self._publish(source, staged)
        self._write_quarantine()
        failpoint("in_commit")
        built = None if self.built is None else self.built + written.added
        self.dest.write_state(self.target.schema, self.target.stream.name,
                              with_built_rows(state, self.target, built), self.target.run_id)
        con.execute(
            f"INSERT INTO {self.qi(self.target.schema)}.{LOADS_TABLE} VALUES (?, ?, ?, ?, ?, ?)",
            [self.target.run_id, self.target.stream.name, self.table, written.rows, len(self.bad),
             dt.datetime.now(dt.UTC)],
        )
        return written, built

    @contextmanager
    def _transaction(self) -> Iterator[None]:
        """One destination transaction: committed at the end, rolled back on any error."""
        self.dest.con.execute("BEGIN")
        try:
            yield
            self.dest.con.execute("COMMIT")
        except duckdb.Error as exc:
            self._rollback()
            raise classify(exc, self.target) from None
        except BaseException:
            self._rollback()
            raise

    def _check_fence(self) -> None:
        """A paused or zombie run must never commit after its lease was taken over."""
        token = self.target.fence_token
        if token is None:
            return
        current = self.dest.fence_token(self.target.schema, self.target.connection)
        if current != token:
            raise ConcurrencyError(
                f"fencing token {token} is stale (newest is {current}): another run took over "
                "this connection, so this commit is refused",
                connection=self.target.connection, stream=self.target.stream.name,
                fix="nothing to do: the newer run continues from the last committed checkpoint",
            )

    def _rollback(self) -> None:
        try:
            self.dest.con.execute("ROLLBACK")
        except duckdb.Error:
            pass

    def _clear(self) -> None:
        self.pending, self.pending_bytes, self.bad = [], 0, []
        if self.spilled:
            self.dest.con.execute(f"DROP TABLE IF EXISTS {self.stage}")
            self.spilled = False

    def _pending_rows(self) -> pa.Table:
        self.pending = joined(self.pending)
        return pa.Table.from_batches(self.pending) if self.pending else self._empty()

    def _empty(self) -> pa.Table:
        fields = [c.arrow_field() for c in self._incoming()] + [pa.field(SEQ, pa.int64())]
        if self.versions:
            fields.append(pa.field(CHANGED_AT, CHANGED_TYPE))
        return pa.Table.from_batches([], schema=pa.schema(fields))

    def _select_list(self, alias: str) -> tuple[str, str]:

        names = [c.name for c in self._incoming()]
        cols = ", ".join(self.qi(n) for n in names)
        exprs = ", ".join(
            f"CAST({alias}.{self.qi(n)} AS {duckdb_type(self.columns[n])})" for n in names
        )
        return cols, exprs

    def _empty_table(self) -> bool:
        return not self.dest.con.execute(f"SELECT EXISTS (SELECT 1 FROM {self.fq})").fetchall()[0][0]

    def _publish(self, source: str, staged: int) -> Written:
        con = self.dest.con
        if self.versions:
            return self._publish_versions(source, staged)
        cols, exprs = self._select_list("s")
        if not self.keyed or self.insert_only:
            inserted = con.execute(f"INSERT INTO {self.fq} ({cols}) SELECT {exprs} FROM {source} s").fetchall()[0][0]
            if inserted != staged:
                raise IntegrityError(
                    f"staged {staged} rows but inserted {inserted}",
                    connection=self.target.connection, stream=self.target.stream.name,
                )
            return Written(int(inserted), 0, int(inserted))
        pk = [self.qi(k) for k in self.target.primary_key]
        on = " AND ".join(f"t.{k} = s.{k}" for k in pk)
        latest = (
            f"(SELECT * FROM {source} QUALIFY row_number() OVER "
            f"(PARTITION BY {', '.join(pk)} ORDER BY {SEQ} DESC) = 1)"
        )
        con.execute(f"CREATE OR REPLACE TEMP TABLE _syncline_latest AS SELECT * FROM {latest}")
        unique = con.execute("SELECT count(*) FROM _syncline_latest").fetchall()[0][0]
        newer = "false"
        if self.target.cursor and not self.target.source_wins:
            c = self.qi(self.target.cursor)
            newer = f"coalesce(t.{c} > s.{c}, false)"
        deleted = con.execute(
            f"DELETE FROM {self.fq} t USING _syncline_latest s WHERE {on} AND NOT {newer}"
        ).fetchall()[0][0]
        kept = con.execute(
            f"SELECT count(*) FROM _syncline_latest s JOIN {self.fq} t ON {on}"
        ).fetchall()[0][0]
        inserted = con.execute(
            f"INSERT INTO {self.fq} ({cols}) SELECT {exprs} FROM _syncline_latest s "
            f"WHERE NOT EXISTS (SELECT 1 FROM {self.fq} t WHERE {on})"
        ).fetchall()[0][0]
        con.execute("DROP TABLE _syncline_latest")
        if inserted + kept != unique:
            raise IntegrityError(
                f"merge of {unique} keys inserted {inserted} and kept {kept} newer rows",
                connection=self.target.connection, stream=self.target.stream.name,
            )
        # written: new keys and replaced rows; skipped: superseded within the batch by a later
        # version of their key, or older than the row the destination already has
        return Written(int(inserted), int(staged - inserted), int(inserted - deleted))

    def _versions(self, columns: dict[str, DataType]) -> HistorySQL:
        return HistorySQL(
            table=self._final, columns=[(c.name, columns[c.name]) for c in self.target.stream.columns],
            keys=self.target.primary_key, cursor=self.target.cursor,
            source_wins=self.target.source_wins, quote=self.qi, type_of=duckdb_type, text="VARCHAR",
            seq=SEQ, changed_at=CHANGED_AT)

    def _publish_versions(self, source: str, staged: int) -> Written:
        counted, _, added = versions.run(self.dest.con, self._versions(self.columns).changes(source))
        # written: changes that made or closed a version; skipped: the same values again, a
        # delete of a key not live, or older than the current version
        return Written(counted, staged - counted, added)

    def _apply_snapshot(self) -> int:
        """The build into the history table; returns how many live keys it lacked (closed)."""
        columns = self.final_columns
        if columns is None:  # no history table yet, or one the build replaces: start it
            self.dest.con.execute(f"DROP TABLE IF EXISTS {self._final}")
            self._create(self._final, [*self._incoming(), *history_columns()])
            columns = self.columns
        steps = self._versions(columns).snapshot(self.fq, "?")
        _, closed, _ = versions.run(self.dest.con, steps, dt.datetime.now(dt.UTC))
        self.dest.con.execute(f"DROP TABLE {self.fq}")
        return closed[-1]

    def _write_quarantine(self) -> None:
        if not self.bad:
            return
        now = dt.datetime.now(dt.UTC)
        self.dest.con.executemany(
            f"INSERT INTO {self.qi(self.target.schema)}.{QUARANTINE_TABLE} VALUES (?, ?, ?, ?, ?)",
            [
                [self.target.run_id, self.target.stream.name,
                 json.dumps(b.record, default=str, ensure_ascii=False), b.error, now]
                for b in self.bad
            ],
        )

    # -- end of stream ---------------------------------------------------------------

    def finish(self, state: dict[str, Any]) -> None:
        con = self.dest.con
        refused = None
        with self._transaction():
            self._check_fence()
            if self.target.build_beside:
                refused = self._check_build()
            if refused is not None:
                self._refuse(state)
            elif self.target.build_beside:
                if self.snapshot:
                    self.soft_deleted = self._apply_snapshot()
                    failpoint("in_swap")
                else:
                    if self.keyed:
                        self.soft_deleted = self._keep_missing(self._final)
                    con.execute(f"DROP TABLE IF EXISTS {self._final}")
                    failpoint("in_swap")
                    con.execute(f"ALTER TABLE {self.fq} RENAME TO {self.qi(self.target.table)}")
            if refused is None:
                self.dest.write_state(self.target.schema, self.target.stream.name, state,
                                      self.target.run_id)
        if refused is not None:
            raise refused

    def _keep_missing(self, final: str) -> int:
        names = carried_columns(self.dest, self.target, self.table)
        if names is None:
            return 0
        return keep_missing(self.dest.con, self.fq, final, names, self.target.primary_key)

    def _count(self, table: str, live: bool = False) -> int:
        where = f" WHERE {DELETED} IS NOT TRUE" if live else ""
        if live and self.final_columns is not None:  # versions: the current ones are live
            where = f" WHERE {IS_CURRENT}"
        return int(self.dest.con.execute(f"SELECT count(*) FROM {table}{where}").fetchall()[0][0])

    def _check_build(self) -> ShrinkRefused | None:
        """Before the swap: the build holds what its commits wrote, and did not shrink too far."""
        rows = self._count(self.fq)
        mismatch = build_mismatch(self.target, rows, self.built)
        if mismatch is not None:
            raise mismatch
        final = f"{self.qi(self.target.data_schema)}.{self.qi(self.target.table)}"
        if self.dest.table_columns(self.target.data_schema, self.target.table) is None:
            return None
        return shrink_refused(self.target, self._count(final, live=True), rows, "replacing the table")

    def _refuse(self, state: dict[str, Any]) -> None:
        """Keep the old table: drop the build, and make the next run start the refresh over."""
        self.dest.con.execute(f"DROP TABLE {self.fq}")
        self.dest.write_state(self.target.schema, self.target.stream.name,
                              {**state, "phase": "refused", "source": None}, self.target.run_id)

    def delete_keys(self, keys: pa.Table, state: dict[str, Any]) -> int:
        con = self.dest.con
        mark = mark_gone(self._final, "_syncline_gone", self.target.primary_key, self.qi, "?",
                         self.history)
        con.register("_syncline_gone", keys)
        try:
            with self._transaction():
                self._check_fence()
                marked = int(con.execute(mark, [dt.datetime.now(dt.UTC)]).fetchall()[0][0])
                self.dest.write_state(self.target.schema, self.target.stream.name, state,
                                      self.target.run_id)
        finally:
            con.unregister("_syncline_gone")
        return marked

    def abort(self) -> None:
        self._clear()


__all__ = ["BUILDING_SUFFIX", "DataType", "DuckDBLoader"]
