"""Loading one stream into PostgreSQL: COPY into a temp stage, one transaction per checkpoint."""

from __future__ import annotations

import datetime as dt
import itertools
from collections.abc import Iterator
from typing import Any

import psycopg
import pyarrow as pa
import pyarrow.compute as pc
from psycopg import sql

from syncline.destinations.base import (
    CHANGED_AT,
    DELETED,
    IS_CURRENT,
    LOADS_TABLE,
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
from syncline.destinations.history import HistorySQL
from syncline.destinations.postgres import history
from syncline.destinations.postgres.build import keep_missing
from syncline.destinations.postgres.copy import (
    copy_batches,
    copy_quarantine,
    server_types,
    set_apart,
)
from syncline.destinations.postgres.host import LoaderHost
from syncline.destinations.postgres.merge import Merge
from syncline.destinations.postgres.types import pg_type, widen_using
from syncline.errors import (
    ConcurrencyError,
    ConfigurationError,
    IntegrityError,
    ShrinkRefused,
)
from syncline.failpoints import failpoint
from syncline.schema import BOOLEAN, TIMESTAMPTZ, Column, ColumnChange, DataType, diff_columns
from syncline.stream import BadRecord

BUILDING_SUFFIX = "__syncline_building"
SPILL_BYTES = 64 * 1024 * 1024
SEQ = "__syncline_seq"
CHANGED_TYPE = pa.timestamp("us", tz="UTC")
MAX_NAME_BYTES = 63  # PostgreSQL silently truncates longer identifiers
_STAGES = itertools.count(1)


class PostgresLoader(StreamLoader):
    def __init__(self, dest: LoaderHost, target: LoadTarget) -> None:
        self.dest = dest
        self.target = target
        self.where: dict[str, Any] = {"connection": target.connection, "stream": target.stream.name}
        self.pending: list[pa.RecordBatch] = []
        self.pending_bytes = 0
        self.bad: list[BadRecord] = []
        self.seq = 0
        self.spilled = False
        self.stage = f"_syncline_stage_{next(_STAGES)}"
        self.table = target.table + BUILDING_SUFFIX if target.build_beside else target.table
        # write: history straight into its table (incremental, cdc), or through a build
        # beside (merged) that the end of a full refresh applies to the versions
        self.history = target.write == "history"
        self.snapshot = self.history and target.build_beside
        self.versions = self.history and not target.build_beside
        self.merge = bool(target.primary_key) and (target.write == "merge" or self.snapshot)
        self.final_columns: dict[str, DataType] | None = None
        # the soft-delete flag is staged with the rows: a cdc source sends its tombstones in it
        self.names = [*(c.name for c in target.stream.columns), DELETED]
        self._check_names()
        self.upsert = False
        self.server_types: dict[bool, list[str]] = {}  # of the stage (True) and the table's columns
        # rows the table built beside holds, as the commits counted them
        self.built = (0 if target.restart_build else target.built_rows) if target.build_beside else None
        try:
            self.changes = self._prepare()
            self.changes = self._prepare_versions() or self.changes
            # one read of one snapshot by the table's own key into an empty table: no key comes
            # twice, so the rows go straight in (the key constraint still refuses a duplicate)
            self.insert_only = (self.merge and target.keys_once and not self.history
                                and self.dest.table_is_empty(self.target.data_schema, self.table))
            self._create_stage()
        except psycopg.Error as exc:
            raise self._classify(exc, f"preparing table {self.target.data_schema}.{self.table}") from None

    # -- table preparation ---------------------------------------------------------------

    @property
    def fq(self) -> sql.Identifier:
        return sql.Identifier(self.target.data_schema, self.table)

    def _cols(self, alias: str | None = None) -> sql.Composable:
        return sql.SQL(", ").join(
            sql.Identifier(alias, n) if alias else sql.Identifier(n) for n in self.names
        )

    def _check_names(self) -> None:
        names = [self.target.data_schema, self.target.table + BUILDING_SUFFIX, *self.names]
        for name in names:
            if len(name.encode()) > MAX_NAME_BYTES:
                raise ConfigurationError(
                    f"name {name!r} is longer than PostgreSQL's {MAX_NAME_BYTES}-byte limit",
                    fix=f"keep table names within {MAX_NAME_BYTES - len(BUILDING_SUFFIX)} bytes "
                    "(set `table:` of the stream) and schema and column names within "
                    f"{MAX_NAME_BYTES}", **self.where,
                )

    def _incoming(self) -> list[Column]:
        return [*self.target.stream.columns, Column(SYNCED_AT, TIMESTAMPTZ), Column(DELETED, BOOLEAN)]

    def _prepare(self) -> list[ColumnChange]:
        con = self.dest.con
        with con.transaction():  # DDL is transactional: the table evolves completely or not at all
            if self.target.build_beside and self.target.restart_build:
                con.execute(sql.SQL("DROP TABLE IF EXISTS {}").format(self.fq))
            existing = self.dest.table_columns(self.target.data_schema, self.table)
            if existing is None and self.versions:
                history.create(con, self.target.data_schema, self.table, self._incoming(),
                               self.target.primary_key)
                self.columns = {c.name: c.type for c in self._incoming()}
                return []
            if existing is None:  # the source's NOT NULL columns are NOT NULL here too
                cols = [sql.SQL("{} {}{}").format(sql.Identifier(c.name), pg_type(c.type),
                                                  sql.SQL("" if c.nullable else " NOT NULL"))
                        for c in self._incoming()]
                cols[-2:] = [sql.SQL("{} TIMESTAMPTZ DEFAULT now()").format(sql.Identifier(SYNCED_AT)),
                             sql.SQL("{} BOOLEAN DEFAULT false").format(sql.Identifier(DELETED))]
                if self.merge:
                    # the key index makes merges lookups, and the constraint refuses duplicates
                    cols.append(sql.SQL("PRIMARY KEY ({})").format(
                        sql.SQL(", ").join(map(sql.Identifier, self.target.primary_key))))
                con.execute(sql.SQL("CREATE TABLE {} ({})").format(self.fq, sql.SQL(", ").join(cols)))
                self.upsert = self.merge
                self.columns = {c.name: c.type for c in self._incoming()}
                return []
            if self.versions and VALID_FROM not in existing:
                raise not_history(self.target)
            changes = diff_columns(existing, self._incoming())
            bad = [c for c in changes if c.action == "incompatible"]
            if bad:
                raise incompatible(bad, self.target)
            if not self.merge and self.dest.has_primary_key(self.target.data_schema, self.table):
                raise ConfigurationError(
                    f"table {self.target.data_schema}.{self.table} has a primary key (made for write: merge) "
                    f"and write: {self.target.write} would add a second row per key",
                    fix="keep write: merge, or run `syncline sync --full-refresh` to rebuild the table "
                    "without the key", **self.where,
                )
            self.columns = self._evolve(self.fq, existing, changes)
            self.dest.relax_not_null(self.target.data_schema, self.table, self._not_null())
            self.dest.set_system_defaults(self.target.data_schema, self.table)
            self.upsert = self.merge and self.dest.key_is_unique(
                self.target.data_schema, self.table, self.target.primary_key)
        return changes

    def _prepare_versions(self) -> list[ColumnChange] | None:
        """A full refresh under write: history evolves the history table its build is applied
        to (None: there is none to keep)."""
        if not self.snapshot or self.target.history_restart:
            return None
        with self.dest.con.transaction():
            final = self.dest.table_columns(self.target.data_schema, self.target.table)
            if final is None or VALID_FROM not in final:
                return None
            changes = diff_columns(final, self._incoming())
            bad = [c for c in changes if c.action == "incompatible"]
            if bad:
                raise incompatible(bad, self.target)
            self.final_columns = self._evolve(self._final, final, changes)
        return changes

    @property
    def _final(self) -> sql.Identifier:
        return sql.Identifier(self.target.data_schema, self.target.table)

    def _evolve(self, table: sql.Identifier, existing: dict[str, DataType],
                changes: list[ColumnChange]) -> dict[str, DataType]:
        """Add and widen columns of ``table``; returns its column types after."""
        con = self.dest.con
        for c in changes:
            assert c.result is not None
            if c.action == "add":
                con.execute(sql.SQL("ALTER TABLE {} ADD COLUMN {} {}").format(
                    table, sql.Identifier(c.column), pg_type(c.result)))
            elif c.action == "widen":
                assert c.old is not None
                con.execute(sql.SQL("ALTER TABLE {} ALTER COLUMN {} TYPE {} USING {}").format(
                    table, sql.Identifier(c.column), pg_type(c.result),
                    widen_using(sql.Identifier(c.column), c.old, c.result)))
        return dict(existing) | {c.column: c.result for c in changes if c.result is not None}

    def _create_stage(self) -> None:
        # the stage takes the target's real column types, so COPY parses each value straight
        # into what the table holds (also for columns of tables Syncline did not create)
        con = self.dest.con
        con.execute(sql.SQL("DROP TABLE IF EXISTS pg_temp.{}").format(sql.Identifier(self.stage)))
        con.execute(sql.SQL("CREATE TEMP TABLE {} AS SELECT {} FROM {} WITH NO DATA").format(
            sql.Identifier(self.stage), self._cols(), self.fq))
        if self.versions:  # a cdc source's commit times date the versions
            con.execute(sql.SQL("ALTER TABLE pg_temp.{} ADD COLUMN {} TIMESTAMPTZ").format(
                sql.Identifier(self.stage), sql.Identifier(CHANGED_AT)))
        con.execute(sql.SQL("ALTER TABLE pg_temp.{} ADD COLUMN {} BIGINT").format(
            sql.Identifier(self.stage), sql.Identifier(SEQ)))

    # -- staging -------------------------------------------------------------------------

    def write(self, batch: pa.RecordBatch) -> None:
        batch = self._set_apart(batch)
        n = batch.num_rows
        if n == 0:
            return
        deleted: pa.Array = pa.array([False] * n, type=pa.bool_())
        changed: pa.Array = pa.nulls(n, CHANGED_TYPE)
        if CHANGED_AT in batch.schema.names:
            i = batch.schema.get_field_index(CHANGED_AT)
            changed = batch.column(i).cast(CHANGED_TYPE)
            batch = batch.remove_column(i)
        if DELETED in batch.schema.names:  # a cdc source marks deletes itself: keep its tombstones
            i = batch.schema.get_field_index(DELETED)
            deleted = pc.fill_null(batch.column(i), False)
            batch = batch.remove_column(i)
        batch = batch.append_column(DELETED, deleted)  # last, like in self.names: COPY is positional
        if self.versions:  # then the commit times, as the stage has them
            batch = batch.append_column(CHANGED_AT, changed)
        self.pending.append(batch)
        self.pending_bytes += batch.nbytes
        if self.pending_bytes > SPILL_BYTES:
            try:
                self._copy_pending(to_stage=True)
                self.spilled = True
            except psycopg.Error as exc:
                raise self._classify(exc, "staging rows") from None

    def _set_apart(self, batch: pa.RecordBatch) -> pa.RecordBatch:
        """Rows PostgreSQL cannot store go to quarantine instead of failing every retry."""
        kept, bad = set_apart(batch, self.target.stream.columns,
                              self.target.primary_key if self.merge or self.versions else ())
        self.bad.extend(bad)
        return kept

    def _copy_pending(self, *, to_stage: bool) -> int:
        """COPY the buffered batches into the stage (numbered, for merges) or the target."""
        if not self.pending:
            return 0
        table: sql.Composable = self.fq
        names = self.names
        schema: pa.Schema | None = self.pending[0].schema
        if any(not b.schema.equals(schema) for b in self.pending):
            schema = None  # batches of several types: as text, which the server parses into each
        else:
            self.pending = joined(self.pending)
        if to_stage:
            table = sql.SQL("pg_temp.{}").format(sql.Identifier(self.stage))
            names = [*self.names, *([CHANGED_AT] if self.versions else []), SEQ]
            schema = schema and schema.append(pa.field(SEQ, pa.int64()))

        def batches() -> Iterator[pa.RecordBatch]:
            for batch in self.pending:
                if to_stage:  # numbered, so a merge keeps each key's last row
                    batch = batch.append_column(SEQ, sequence(self.seq, batch.num_rows))
                    self.seq += batch.num_rows
                yield batch

        if to_stage not in self.server_types:  # the tables keep their types while this loader lives
            self.server_types[to_stage] = server_types(self.dest.con, table, names)
        copied = copy_batches(self.dest.con, table, names, schema, batches(), self.server_types[to_stage])
        self.pending, self.pending_bytes = [], 0
        return copied

    def quarantine(self, record: BadRecord) -> None:
        self.bad.append(record)

    # -- commit --------------------------------------------------------------------------

    def commit(self, state: dict[str, Any]) -> CommitResult:
        con = self.dest.con
        stage = sql.Identifier(self.stage)
        try:
            with con.transaction():
                self._check_fence()
                if (self.merge and not self.insert_only) or self.spilled or self.versions:
                    self._copy_pending(to_stage=True)
                    row = con.execute(sql.SQL("SELECT count(*) FROM pg_temp.{}").format(stage)).fetchone()
                    written = self._publish(int(row[0]) if row else 0)
                    con.execute(sql.SQL("TRUNCATE pg_temp.{}").format(stage))
                else:  # nothing to deduplicate and nothing spilled: straight into the target
                    buffered = sum(b.num_rows for b in self.pending)
                    copied = self._copy_pending(to_stage=False)
                    if copied != buffered:
                        raise IntegrityError(f"buffered {buffered} rows but copied {copied}",
                                             **self.where)
                    written = Written(copied, 0, copied)
                self._write_quarantine()
                failpoint("in_commit")
                built = None if self.built is None else self.built + written.added
                self.dest.write_state(self.target.schema, self.target.stream.name,
                                      with_built_rows(state, self.target, built), self.target.run_id)
                con.execute(
                    sql.SQL("INSERT INTO {} VALUES (%s, %s, %s, %s, %s, %s)").format(
                        sql.Identifier(self.target.schema, LOADS_TABLE)),
                    [self.target.run_id, self.target.stream.name, self.table, written.rows,
                     len(self.bad), dt.datetime.now(dt.UTC)],
                )
        except psycopg.Error as exc:
            raise self._classify(exc, f"committing to {self.target.data_schema}.{self.table}") from None
        self.built = built
        failpoint("after_commit")
        result = CommitResult(rows=written.rows, quarantined=len(self.bad), skipped=written.skipped,
                              added=written.added)
        self.pending, self.pending_bytes, self.bad, self.spilled = [], 0, [], False
        return result

    def _check_fence(self) -> None:
        """A paused or zombie run must never commit after its lease was taken over."""
        token = self.target.fence_token
        if token is None:
            return
        current = self.dest.fence_token(self.target.schema, self.target.connection, lock=True)
        if current != token:
            raise ConcurrencyError(
                f"fencing token {token} is stale (newest is {current}): another run took over "
                "this connection, so this commit is refused",
                fix="nothing to do: the newer run continues from the last committed checkpoint",
                **self.where,
            )

    def _merge(self) -> Merge:
        return Merge(self.dest.con, self.fq, self.target, self.names, self.columns, self.where)

    def _publish(self, staged: int) -> Written:
        con = self.dest.con
        if self.versions:
            steps = self._statements(self.fq, self.columns).changes(
                sql.SQL("pg_temp.{}").format(sql.Identifier(self.stage)).as_string(con))
            counted, _, added = history.run(con, steps)
            # skipped: the same values again, a delete of a key not live, or older than the
            # current version
            return Written(counted, staged - counted, added)
        if not self.merge or self.insert_only:
            return self._merge().append(sql.SQL("pg_temp.{}").format(sql.Identifier(self.stage)), staged)
        return self._merge().merge(self.stage, SEQ, staged, self.upsert)

    def _statements(self, table: sql.Identifier, columns: dict[str, DataType]) -> HistorySQL:
        return history.statements(self.dest.con, table, self.target, columns, SEQ, CHANGED_AT)

    def _apply_snapshot(self) -> int:
        """The build into the history table; returns how many live keys it lacked (closed)."""
        columns = self.final_columns
        con = self.dest.con
        if columns is None:  # no history table yet, or one the build replaces: start it
            con.execute(sql.SQL("DROP TABLE IF EXISTS {}").format(self._final))
            history.create(con, self.target.data_schema, self.target.table, self._incoming(),
                           self.target.primary_key)
            columns = self.columns
        steps = self._statements(self._final, columns).snapshot(self.fq.as_string(con), "%s")
        _, closed, _ = history.run(con, steps, dt.datetime.now(dt.UTC))
        con.execute(sql.SQL("DROP TABLE {}").format(self.fq))
        return closed[-1]

    def _write_quarantine(self) -> None:
        copy_quarantine(self.dest.con, self.target, self.bad)

    # -- end of stream -------------------------------------------------------------------

    def finish(self, state: dict[str, Any]) -> None:
        con = self.dest.con
        try:
            refused = None
            with con.transaction():
                self._check_fence()
                if self.target.build_beside:
                    refused = self._check_build()
                if refused is not None:  # keep the old table; the next run starts the refresh over
                    con.execute(sql.SQL("DROP TABLE {}").format(self.fq))
                    state = {**state, "phase": "refused", "source": None}
                elif self.snapshot:
                    self.soft_deleted = self._apply_snapshot()
                    failpoint("in_swap")
                elif self.target.build_beside:
                    final = self._final
                    if self.merge:
                        self.soft_deleted = self._keep_missing(final)
                    con.execute(sql.SQL("DROP TABLE IF EXISTS {}").format(final))
                    failpoint("in_swap")
                    con.execute(sql.SQL("ALTER TABLE {} RENAME TO {}").format(
                        self.fq, sql.Identifier(self.target.table)))
                    self.dest.rename_primary_key(self.target.data_schema, self.target.table)
                self.dest.write_state(self.target.schema, self.target.stream.name, state,
                                      self.target.run_id)
        except psycopg.errors.DependentObjectsStillExist as exc:
            raise self._classify(exc, f"replacing {self.target.data_schema}.{self.target.table}",
                                 fix="views depend on the table: drop them before a full refresh "
                                 "and recreate them after") from None
        except psycopg.Error as exc:
            raise self._classify(exc, f"replacing {self.target.data_schema}.{self.target.table}") from None
        self._drop_stage()
        if refused is not None:
            raise refused

    def _not_null(self) -> set[str]:
        return {c.name for c in self.target.stream.columns if not c.nullable}

    def _keep_missing(self, final: sql.Identifier) -> int:
        names = carried_columns(self.dest, self.target, self.table)
        if names is None:
            return 0
        # a kept row is NULL where its column changed type, and may be NULL where the old
        # table allowed it: such columns of the build take NULL
        was = self.dest.not_null_columns(self.target.data_schema, self.target.table)
        self.dest.relax_not_null(self.target.data_schema, self.table, self._not_null() & set(names) & was)
        return keep_missing(self.dest.con, self.fq, final, names, self.target.primary_key)

    def _count(self, table: sql.Composable, live: bool = False) -> int:
        where = sql.SQL(" WHERE {} IS NOT TRUE").format(sql.Identifier(DELETED)) if live else sql.SQL("")
        if live and self.final_columns is not None:  # versions: the current ones are live
            where = sql.SQL(" WHERE {}").format(sql.Identifier(IS_CURRENT))
        row = self.dest.con.execute(sql.SQL("SELECT count(*) FROM {}{}").format(table, where)).fetchone()
        return int(row[0]) if row else 0

    def _check_build(self) -> ShrinkRefused | None:
        """Before the swap: the build holds what its commits wrote, and did not shrink too far."""
        rows = self._count(self.fq)
        mismatch = build_mismatch(self.target, rows, self.built)
        if mismatch is not None:
            raise mismatch
        if self.dest.table_columns(self.target.data_schema, self.target.table) is None:
            return None
        final = sql.Identifier(self.target.data_schema, self.target.table)
        return shrink_refused(self.target, self._count(final, live=True), rows, "replacing the table")

    def delete_keys(self, keys: pa.Table, state: dict[str, Any]) -> int:
        con = self.dest.con
        mark = sql.SQL(mark_gone(self.fq.as_string(con), "pg_temp._syncline_gone",
                                 self.target.primary_key, history.quoted, "%s", self.history))
        try:
            with con.transaction():
                self._check_fence()
                history.stage_keys(con, "_syncline_gone", keys,
                                   {k: self.columns[k] for k in self.target.primary_key})
                marked = con.execute(mark, [dt.datetime.now(dt.UTC)]).rowcount
                self.dest.write_state(self.target.schema, self.target.stream.name, state,
                                      self.target.run_id)
        except psycopg.Error as exc:
            raise self._classify(exc, f"marking deletes in {self.target.data_schema}.{self.table}") from None
        return marked

    def abort(self) -> None:
        self.pending, self.pending_bytes, self.bad = [], 0, []
        self._drop_stage()

    def _drop_stage(self) -> None:
        try:
            self.dest.con.execute(sql.SQL("DROP TABLE IF EXISTS pg_temp.{}").format(
                sql.Identifier(self.stage)))
        except psycopg.Error:
            pass  # a broken connection takes its temp tables with it

    def _classify(self, exc: psycopg.Error, doing: str, fix: str | None = None) -> Exception:
        err = self.dest.classify(exc, doing, schema=self.target.schema, **self.where)
        if fix:
            err.fix = fix
            err.args = (str(err),)
        return err
