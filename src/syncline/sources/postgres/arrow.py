"""PostgreSQL rows as Arrow: the ADBC driver's binary COPY reader, batches, checkpoints, its errors.

The driver runs ``COPY (SELECT ...) TO STDOUT (FORMAT binary)`` and decodes the rows into
Arrow record batches in C. This module opens its connection inside the snapshot of the
psycopg transaction that read the upper bound, cuts the driver's batches into batches of
the requested size, and marks a checkpoint after each.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import adbc_driver_manager
import adbc_driver_postgresql.dbapi
import psycopg
import pyarrow as pa
import pyarrow.compute as pc

from syncline.errors import IntegrityError
from syncline.failpoints import failpoint
from syncline.schema import Column
from syncline.sources.postgres.read import Columns
from syncline.sources.postgres.types import arrow_to_batch
from syncline.stream import Checkpoint, ReadRequest, StreamItem

#: What the driver and its reader raise: DB-API errors, and Arrow's for a failure mid-stream.
ERRORS: tuple[type[Exception], ...] = (adbc_driver_manager.Error, pa.ArrowException, OSError)
_HINT = "adbc.postgresql.batch_size_hint_bytes"
# A failure mid-stream arrives as text without its SQLSTATE: these are worth a retry.
_TRANSIENT = re.compile(r"PQgetCopyData|server closed|connection|terminat|cancel|timeout|serializ|"
                        r"deadlock|out of memory|shutdown|recovery", re.IGNORECASE)


def conninfo(kw: dict[str, Any]) -> str:
    """A libpq connection string from psycopg's connect() arguments (`conninfo` plus keywords)."""
    params = {k: v for k, v in kw.items() if k not in ("conninfo", "autocommit")}
    return psycopg.conninfo.make_conninfo(kw.get("conninfo", ""), **params)


def connect(info: str) -> Any:
    """An ADBC connection; raises the driver's errors (the caller classifies them)."""
    return adbc_driver_postgresql.dbapi.connect(info, autocommit=True)


def hint_bytes(batch_size: int) -> int:
    """The driver's batch size: large enough to amortise, small enough to keep memory flat
    (4 MiB loads as fast as 16 and holds less while a batch's rows are gathered)."""
    return min(4 << 20, max(1 << 20, batch_size * 256))


@contextmanager
def record_batches(conn: Any, setup: list[str], query: str, hint: int) -> Iterator[Any]:
    """The query's result as a pyarrow RecordBatchReader, after `setup` ran on the connection."""
    cur = conn.cursor()
    try:
        for statement in setup:
            cur.execute(statement)
            if cur.description:
                cur.fetchall()
        cur.adbc_statement.set_options(**{_HINT: str(hint)})
        cur.execute(query)
        reader = cur.fetch_record_batch()
        try:
            yield reader
        finally:
            reader.close()
    finally:
        cur.close()


def error_class(exc: BaseException) -> type[BaseException]:
    """The psycopg error class an ADBC or Arrow error corresponds to, by SQLSTATE or symptom."""
    if isinstance(exc, psycopg.Error):
        return type(exc)
    state = getattr(exc, "sqlstate", None)
    if state:
        try:
            return psycopg.errors.lookup(state)
        except KeyError:
            pass
    if isinstance(exc, (adbc_driver_manager.OperationalError, adbc_driver_manager.InterfaceError)):
        return psycopg.OperationalError
    if not isinstance(exc, adbc_driver_manager.Error) and _TRANSIENT.search(str(exc)):
        return psycopg.OperationalError  # the connection or the statement died mid-stream
    return psycopg.DatabaseError


@dataclass
class Physical:
    """A full refresh in ctid order, and what its checkpoints prove about the rows before them.

    Each checkpoint carries the fingerprint ``ctid:<filenode>:<rows>:<ctid>:<snapshot>``:
    the table's file, the rows read up to and including that ctid, and the snapshot they
    were read in (``PostgresSource.changed_since`` checks that prefix).
    """

    filenode: int
    snapshot: str
    #: rows at or before the checkpoint this read resumes from
    rows: int
    #: the JSON text of the rows at these ctids, in the read's snapshot
    texts: Callable[[list[str]], dict[str, str]]
    last: bytes = b""

    def fingerprint(self, last: str) -> str:
        return f"ctid:{self.filenode}:{self.rows}:{last}:{self.snapshot}"


def tid_text(value: bytes) -> str:
    """A ctid's text, '(block,offset)', from its 6-byte binary form."""
    return f"({int.from_bytes(value[:4], 'big')},{int.from_bytes(value[4:6], 'big')})"


def _ordered(tids: pa.ChunkedArray, physical: Physical, stream: str) -> None:
    """Raise unless the ctids rise strictly from the previous batch's last: resuming after
    a ctid is exact only for rows read in that order. Big-endian bytes of one length
    compare as the numbers do."""
    values = pa.chunked_array([c.storage if isinstance(c, pa.ExtensionArray) else c for c in tids.chunks])
    n = len(values)
    first = values[0].as_py()
    rising = n < 2 or pc.all(pc.greater(values.slice(1), values.slice(0, n - 1))).as_py()
    if not rising or first <= physical.last or values.null_count:
        raise IntegrityError(
            f"rows of {stream} did not arrive in ctid order (after {tid_text(physical.last or bytes(6))})",
            stream=stream, fix="this is a Syncline bug: keep the run log and report it; rerun to retry")
    physical.last = values[-1].as_py()


def read_items(reader: Any, req: ReadRequest, positions: list[str], columns: Columns,
               physical: Physical | None = None) -> Iterator[StreamItem]:
    """Batches of ``req.batch_size`` rows, each followed by its checkpoint."""
    types = [req.stream.column(p) for p in positions]
    at = columns.positions_at(req.stream, positions)
    keyless_incremental = req.mode == "incremental" and not req.primary_key
    row_text = columns.row_text_at(req.stream, positions)
    for rows, lookahead in _slices(reader, req.batch_size):
        texts: Callable[[list[int]], list[str | None]] | None = None
        if physical is not None:
            tids = rows.column(at[0])
            _ordered(tids, physical, req.stream.name)
            texts = _by_ctid(tids, physical)
        elif row_text is not None:
            texts = _by_index(rows.column(row_text))
        batch, bad = arrow_to_batch(rows, req.stream, columns.native, texts)
        failpoint("source_read")
        yield from bad
        yield batch
        if physical is not None:
            physical.rows += rows.num_rows
            last_tid = tid_text(physical.last)
            yield Checkpoint({"after": [last_tid], "columns": positions, "rows": physical.rows,
                              "snapshot": physical.snapshot, "filenode": physical.filenode,
                              "fingerprint": physical.fingerprint(last_tid)})
            continue
        last = [_json_safe(types[i], rows.column(j)[-1].as_py()) for i, j in enumerate(at)]
        if req.mode == "full_refresh":
            if positions:
                yield Checkpoint({"after": last, "columns": positions})
            elif lookahead is None:  # no key to resume by: one mark when the whole table is read
                yield Checkpoint({"after": None, "complete": True, "columns": []})
            continue
        if keyless_incremental and lookahead is not None:
            # Without a key, rows sharing a cursor value cannot be told apart: mark only
            # where the cursor changes, so `cursor > last` never skips the rest of a tie.
            if lookahead.column(at[0])[0].as_py() == rows.column(at[0])[-1].as_py():
                continue
        yield Checkpoint({"cursor": last[0], "key": last[1:], "columns": positions})


def _by_index(column: pa.ChunkedArray) -> Callable[[list[int]], list[str | None]]:
    return lambda rows: [column[i].as_py() for i in rows]


def _by_ctid(tids: pa.ChunkedArray, physical: Physical) -> Callable[[list[int]], list[str | None]]:
    def texts(rows: list[int]) -> list[str | None]:
        wanted = [tid_text(tids[i].as_py()) for i in rows]
        found = physical.texts(wanted)
        return [found.get(t) for t in wanted]
    return texts


def _slices(reader: Any, size: int) -> Iterator[tuple[pa.Table, pa.Table | None]]:
    """Tables of ``size`` rows (the last may be shorter), each with the row after it, if any.

    The driver's batches are cut by bytes; at most one of them beyond ``size`` rows is held.
    """
    held: list[pa.RecordBatch] = []
    count = 0
    for batch in reader:
        if batch.num_rows == 0:
            continue
        held.append(batch)
        count += batch.num_rows
        if count <= size:
            continue
        table = pa.Table.from_batches(held)
        start = 0
        while count - start > size:
            yield table.slice(start, size), table.slice(start + size, 1)
            start += size
        rest = table.slice(start)
        held, count = rest.to_batches(), rest.num_rows
    if count:
        yield pa.Table.from_batches(held), None


def _json_safe(col: Column | None, value: str | int | None) -> Any:
    """A checkpoint value: PostgreSQL's own text (exact, cast back in SQL), ints as ints."""
    if value is not None and col is not None and col.type.kind in ("int32", "int64"):
        return int(value)
    return value
