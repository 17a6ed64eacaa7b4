"""The Destination interface: staging writes and one atomic commit per checkpoint."""

from __future__ import annotations

import threading
from abc import ABC, abstractmethod
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, Protocol

import pyarrow as pa
import pyarrow.compute as pc
from pydantic import BaseModel

from syncline.errors import ContractError, IntegrityError, ShrinkRefused
from syncline.schema import ColumnChange, DataType, StreamSchema
from syncline.stream import BadRecord, Write

SYNCED_AT = "_syncline_synced_at"
DELETED = "_syncline_deleted"
SYSTEM_COLUMNS = (SYNCED_AT, DELETED)
#: a cdc source's commit time of each change: staged to date versions, never stored
CHANGED_AT = "_syncline_changed_at"
#: ``write: history``: when a version became current, when it stopped being (NULL: it is),
#: whether it is, and the hash of its values (system columns excluded) that tells a change
VALID_FROM = "_syncline_valid_from"
VALID_TO = "_syncline_valid_to"
IS_CURRENT = "_syncline_is_current"
ROW_HASH = "_syncline_row_hash"
HISTORY_COLUMNS = (VALID_FROM, VALID_TO, IS_CURRENT, ROW_HASH)
STATE_TABLE = "_syncline_state"
FENCE_TABLE = "_syncline_fence"
LOADS_TABLE = "_syncline_loads"
QUARANTINE_TABLE = "_syncline_quarantine"


def sequence(start: int, n: int) -> pa.Array:
    """start, start + 1, ... (n values): the staging order of rows, built in C."""
    return pc.add(pc.cumulative_sum(pa.repeat(pa.scalar(1, pa.int64()), n)), start - 1)


def joined(batches: list[pa.RecordBatch]) -> list[pa.RecordBatch]:
    """One commit's batches as one (as they are, if fewer than two): DuckDB inserts a table of
    many pieces in parallel, each thread building row groups of its own, and COPY sends
    longer pieces. Once copied, the pieces can be let go, so a commit holds its rows once."""
    if len(batches) < 2:
        return batches
    one: list[pa.RecordBatch] = pa.Table.from_batches(batches).combine_chunks().to_batches()
    return one


@dataclass(frozen=True)
class LoadTarget:
    """Where one stream of one run lands and how."""

    connection: str
    #: the connection's schema: its state, loads, quarantine and fence tables
    schema: str
    table: str
    stream: StreamSchema
    write: Write
    primary_key: tuple[str, ...]
    cursor: str | None
    build_beside: bool
    run_id: int
    #: With ``build_beside``: drop a half-built table instead of resuming it.
    restart_build: bool = False
    #: The run's fencing token; every commit checks it is still the newest one.
    fence_token: int | None = None
    #: A merge whose rows come from one read of one snapshot, from its start, by the table's
    #: own primary key: no key comes twice, so into an empty table it may simply insert.
    keys_once: bool = False
    #: A merge read from the start of an incremental stream (its first run, or after `state
    #: --reset`): the source's version of every key wins, even over a destination row whose
    #: cursor is newer (a value dated in the future, since corrected at the source).
    source_wins: bool = False
    #: With ``build_beside``: rows already in a resumed build (None: not known).
    built_rows: int | None = 0
    #: A full refresh may not publish a table that lost more than this share of its live rows
    #: (or all of them); None allows any shrink (``sync --allow-empty``).
    max_shrink: float | None = 0.9
    #: the schema of ``table`` when a dotted `table:` names another than the connection's
    table_schema: str | None = None
    #: ``write: history`` rebuilt under another key or from another write: the build replaces
    #: the table and its history starts over (else a build is applied to the versions)
    history_restart: bool = False

    @property
    def data_schema(self) -> str:
        """The schema the stream's table (and a table built beside it) is in."""
        return self.table_schema or self.schema


@dataclass(frozen=True)
class CommitResult:
    #: rows written to the table, as the database counted them: inserted, or updated by a merge
    rows: int
    quarantined: int
    #: staged rows not written: a later version of the key came in the same commit, or the
    #: table's row is newer
    skipped: int = 0
    #: how many rows the table grew by
    added: int = 0


@dataclass(frozen=True)
class Written:
    """What one publish did to the table: rows written, staged rows skipped, rows added."""

    rows: int
    skipped: int
    added: int


def with_built_rows(state: dict[str, Any], target: LoadTarget, built: int | None) -> dict[str, Any]:
    """The state row of a build beside carries how many rows the build holds, for a resume."""
    return {**state, "built_rows": built} if target.build_beside else state


class TableColumns(Protocol):
    """Anything that tells a table's columns: a destination, or what a loader holds of it."""

    def table_columns(self, schema: str, table: str) -> dict[str, DataType] | None: ...


def carried_columns(dest: TableColumns, target: LoadTarget, build_table: str) -> list[str] | None:
    """The columns a row missing from a merge's full refresh keeps when it moves from the old
    table into the build: same name, same type (others are NULL). None: no old table, or a
    key column did not survive, so no old row can be matched to the build."""
    old = dest.table_columns(target.schema, target.table)
    build = dest.table_columns(target.schema, build_table)
    if not old or not build:
        return None
    names = [name for name, t in build.items() if old.get(name) == t]
    return names if all(k in names for k in target.primary_key) else None


def shrink_refused(target: LoadTarget, before: int, after: int, doing: str) -> ShrinkRefused | None:
    """The error when a full refresh would leave ``after`` of a table's ``before`` live rows."""
    if target.max_shrink is None or before == 0:
        return None
    if after > 0 and (before - after) / before <= target.max_shrink:
        return None
    table = f"{target.schema}.{target.table}"
    return ShrinkRefused(
        f"the full refresh read {after:,} rows where {table} holds {before:,}, so {doing} "
        f"would remove {before - after:,} of them ({(before - after) / before:.0%}, more than "
        f"max_shrink {target.max_shrink:.0%}); {table} is kept as it was",
        connection=target.connection, stream=target.stream.name,
        fix="check the source (emptied table, wrong credentials or filter); if it really lost "
        "those rows, run `syncline sync " + target.connection + " --stream " + target.stream.name
        + " --allow-empty`, which lets this refresh replace the table with what the source holds "
        "now (or raise `max_shrink` of the stream)",
    )


def incompatible(bad: list[ColumnChange], target: LoadTarget) -> ContractError:
    """The error when a loaded table's columns cannot take the stream's types."""
    table = f"{target.data_schema}.{target.table}"
    fix = ("run `syncline sync --full-refresh` for this stream to rebuild the table, or restore "
           "the source column's type")
    if target.write == "history":
        fix = (f"restore the source column's type; or rename {table} (its versions are kept "
               "there) and run `syncline sync --full-refresh` for this stream, which starts the "
               "history over")
    return ContractError("; ".join(c.describe() for c in bad) + f" (table {table})",
                         connection=target.connection, stream=target.stream.name, fix=fix)


def not_history(target: LoadTarget) -> ContractError:
    """The error when write: history would continue a table that holds no versions."""
    table = f"{target.data_schema}.{target.table}"
    return ContractError(
        f"table {table} has no _syncline_valid_from column: another write built it, so it holds "
        "no versions to continue under write: history",
        connection=target.connection, stream=target.stream.name,
        fix=f"run `syncline sync {target.connection} --stream {target.stream.name} --full-refresh`, "
        "which makes it a history table starting from what the source holds now")


def build_mismatch(target: LoadTarget, rows: int, built: int | None) -> IntegrityError | None:
    """The error when a table built beside holds ``rows`` where its commits wrote ``built``."""
    if built is None or rows == built:
        return None
    return IntegrityError(
        f"the table built beside {target.schema}.{target.table} holds {rows} rows "
        f"but its commits wrote {built}; the old table is kept",
        connection=target.connection, stream=target.stream.name,
        fix="this is a Syncline bug: keep the run log and report it; "
        "`syncline sync --full-refresh` rebuilds the table",
    )


class StreamLoader(ABC):
    """Loads one stream of one run: ``write`` stages, ``commit`` publishes atomically."""

    changes: list[ColumnChange]
    #: With ``build_beside``: the rows the commits so far wrote into the build (else None).
    built: int | None
    #: After ``finish`` of a full refresh under merge: rows of the old table missing from the
    #: snapshot, kept in the new one with ``_syncline_deleted = true``.
    soft_deleted: int = 0

    @abstractmethod
    def write(self, batch: pa.RecordBatch) -> None:
        """Stage a batch; nothing is visible until the next commit."""

    @abstractmethod
    def quarantine(self, record: BadRecord) -> None:
        """Keep a bad record; it is committed with the next checkpoint."""

    @abstractmethod
    def commit(self, state: dict[str, Any]) -> CommitResult:
        """In ONE transaction: staged rows into the target, quarantined records, the state row."""

    @abstractmethod
    def finish(self, state: dict[str, Any]) -> None:
        """End of the stream: check a table built beside the target holds the rows committed
        into it and did not shrink too far, swap it in, then write ``state``.

        Under ``write: merge`` the rows of the old table whose key the build lacks are kept
        in it with ``_syncline_deleted = true`` (their values as last seen) before the swap:
        a full refresh records deletes instead of forgetting the rows.

        A refused shrink (``ShrinkRefused``) keeps the old table, drops the build and leaves
        ``state`` in phase ``refused``, so the next run starts the full refresh over."""

    @abstractmethod
    def delete_keys(self, keys: pa.Table, state: dict[str, Any]) -> int:
        """In ONE transaction: mark the live rows of ``keys`` (the key columns, as the table
        types them) deleted, keeping their last values (under history: close their current
        version), and write ``state``. Returns how many rows it marked."""

    @abstractmethod
    def abort(self) -> None:
        """Drop what was staged and not committed."""


def _quoted(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


class Destination(ABC):
    """A configured loader."""

    #: True when ``fence`` is implemented and commits check the fencing token.
    supports_fencing: bool = False
    #: Rows the destination stores together; batches sized by bytes are rounded to a multiple.
    row_group_rows: int = 1

    def __init__(self, name: str, config: BaseModel, root: str) -> None:
        self.name = name
        self.config = config
        self.root = root
        #: set by the engine to its stop request: a stop cuts a wait (for a lock) short
        self.stop = threading.Event()
        #: whether opening waits for a lock another process holds; False for a glance
        self.wait_for_lock = True

    @abstractmethod
    def check(self) -> None:
        """Raise when the destination cannot be written."""

    @abstractmethod
    def loader(self, target: LoadTarget) -> StreamLoader:
        """Prepare the target table (create, evolve) and return a loader for it."""

    @abstractmethod
    def read_state(self, schema: str, stream: str) -> dict[str, Any] | None:
        """The committed state row of a stream, or None."""

    @abstractmethod
    def all_states(self, schema: str) -> dict[str, dict[str, Any]]:
        """Every committed state row of a destination schema."""

    @abstractmethod
    def reset_state(self, schema: str, stream: str) -> bool:
        """Forget a stream's state so the next run starts over; True if there was one."""

    @abstractmethod
    def put_state(self, schema: str, stream: str, state: dict[str, Any]) -> None:
        """Replace a stream's committed state row (`state --set`), in a transaction of its own."""

    @abstractmethod
    def table_columns(self, schema: str, table: str) -> dict[str, DataType] | None:
        """Canonical types of a table's columns, or None when it does not exist."""

    @abstractmethod
    def query(self, sql: str, params: list[Any] | None = None) -> list[tuple[Any, ...]]:
        """Run a read-only query (for verification and tests)."""

    #: How the destination's driver writes a query parameter.
    placeholder: str = "?"

    def load_totals(self, schema: str, run_ids: list[int]) -> dict[tuple[int, str], tuple[int, int]]:
        """Rows committed and quarantined per (run, stream), from the destination's load records:
        the truth about what a run published, even one that was killed before recording it."""
        if not run_ids or self.table_columns(schema, LOADS_TABLE) is None:
            return {}
        marks = ", ".join([self.placeholder] * len(run_ids))
        rows = self.query(
            f"SELECT run_id, stream, sum(rows), sum(quarantined) FROM {_quoted(schema)}.{LOADS_TABLE} "
            f"WHERE run_id IN ({marks}) GROUP BY run_id, stream", list(run_ids))
        return {(int(r), str(st)): (int(n or 0), int(q or 0)) for r, st, n, q in rows}

    def scan(
        self,
        schema: str,
        table: str,
        columns: list[str],
        latest: tuple[tuple[str, ...], str | None] | None,
        batch_size: int,
    ) -> Iterator[pa.RecordBatch]:
        """Live rows of a table as Arrow batches, for verification: not soft-deleted, and in a
        history table the current versions.

        ``latest=(key, cursor)`` keeps only the newest version of each key (append tables).
        """
        raise NotImplementedError

    def fence(self, schema: str, connection: str, token: int) -> None:
        """Record ``token`` as the newest run of ``connection``; refuse an older one."""
        raise NotImplementedError

    def fence_token(self, schema: str, connection: str) -> int | None:
        """The newest fencing token recorded for ``connection``, or None."""
        return None

    def history(self, schema: str, connection: str) -> tuple[int, int]:
        """(newest fencing token, newest run id of a load record) of a connection's schema, 0
        where none: what runs of any metadata store have done here. A new or lost store takes
        over above both, so its tokens and run ids never fall among them."""
        if self.table_columns(schema, LOADS_TABLE) is None:
            return 0, 0
        rows = self.query(f"SELECT max(run_id) FROM {_quoted(schema)}.{LOADS_TABLE}")
        run = int(rows[0][0]) if rows and rows[0][0] is not None else 0
        # a run killed while it created the system tables may have left no fencing table
        fenced = self.supports_fencing and self.table_columns(schema, FENCE_TABLE) is not None
        return (self.fence_token(schema, connection) or 0) if fenced else 0, run

    def close(self) -> None:
        """Release connections."""
