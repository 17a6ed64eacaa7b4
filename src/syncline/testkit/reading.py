"""One read of one stream as the test kit sees it: a multiset of row digests, checkpoints, cursor range."""

from __future__ import annotations

import datetime as dt
import decimal
import hashlib
import json
import re
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from syncline.engine.plan import StreamPlan
from syncline.records import parse_timestamp
from syncline.sources.base import Source
from syncline.stream import BadRecord, Checkpoint, Notice, ReadRequest, SchemaChange

SHOWN_CHARS = 160


@dataclass
class Read:
    """What one read yielded; rows are kept as digests so equal rows compare as equal."""

    rows: Counter[bytes] = field(default_factory=Counter)
    shown: dict[bytes, str] = field(default_factory=dict)
    records: int = 0
    bad: int = 0
    #: (records and bad records before the mark, the mark's value)
    checkpoints: list[tuple[int, dict[str, Any]]] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    notices: list[str] = field(default_factory=list)
    high: Any = None  # the largest value of the tracked column
    older: int = 0  # rows whose tracked column is below ``below``
    stopped: bool = False

    @property
    def total(self) -> int:
        return self.records + self.bad

    @property
    def final(self) -> dict[str, Any] | None:
        return self.checkpoints[-1][1] if self.checkpoints else None

    def sample(self, digests: Counter[bytes], limit: int = 3) -> str:
        """A few of ``digests`` as text, for a message."""
        return "; ".join(self.shown.get(d, "?") for d in list(digests)[:limit])

    def _add(self, digest: bytes, text: str) -> None:
        self.rows[digest] += 1
        if digest not in self.shown:
            self.shown[digest] = text if len(text) <= SHOWN_CHARS else text[:SHOWN_CHARS - 3] + "..."


def read_stream(source: Source, plan: StreamPlan, *, checkpoint: dict[str, Any] | None, batch_size: int,
                track: str | None = None, below: Any = None, stop_at: int | None = None) -> Read:
    """Read ``plan``'s stream after ``checkpoint``; stop at the ``stop_at``-th checkpoint, like a kill."""
    request = ReadRequest(stream=plan.stream, mode=plan.mode, cursor=plan.cursor,
                          primary_key=plan.primary_key, checkpoint=checkpoint, batch_size=batch_size,
                          lookback_s=plan.lookback_s)
    expected = plan.stream.arrow_schema()
    names = plan.stream.column_names
    out = Read()
    items = source.read(request)
    try:
        for item in items:
            if isinstance(item, pa.RecordBatch):
                if not item.schema.equals(expected):
                    out.problems.append(f"a batch has schema ({_schema(item.schema)}) where the stream "
                                        f"declares ({_schema(expected)})")
                    continue
                if item.num_rows > batch_size:
                    out.problems.append(f"a batch holds {item.num_rows} rows, more than batch_size "
                                        f"{batch_size}: memory is no longer bounded by the batch size")
                _add_batch(out, item, names, track, below)
            elif isinstance(item, BadRecord):
                out.bad += 1
                text = json.dumps(item.record, sort_keys=True, default=str)
                out._add(_digest("bad", text), f"bad record {text} ({item.error})")
            elif isinstance(item, Checkpoint):
                try:
                    json.dumps(item.value, allow_nan=False)
                except (TypeError, ValueError) as exc:
                    out.problems.append(f"checkpoint {len(out.checkpoints) + 1} cannot be stored as "
                                        f"JSON: {exc}")
                out.checkpoints.append((out.total, item.value))
                if stop_at is not None and len(out.checkpoints) >= stop_at:
                    out.stopped = True
                    break
            elif isinstance(item, Notice):
                out.notices.append(item.message)
            elif isinstance(item, SchemaChange):
                out.notices.extend(item.changes)
                if item.stream is not None:  # the batches after it carry the evolved schema
                    expected = item.stream.arrow_schema()
            else:
                out.problems.append(f"read yielded a {type(item).__name__}, which is not a stream item")
    finally:
        close = getattr(items, "close", None)
        if close is not None:  # a stopped read releases its connection as a killed one would
            close()
    return out


def _add_batch(out: Read, batch: pa.RecordBatch, names: list[str], track: str | None, below: Any) -> None:
    out.records += batch.num_rows
    for row in batch.to_pylist():
        values = tuple(row[n] for n in names)
        out._add(_digest("row", repr(values)), show(row))
    if track is None or batch.num_rows == 0:
        return
    column = batch.column(track)
    high = pc.max(column).as_py()
    if high is not None and (out.high is None or high > out.high):
        out.high = high
    if below is not None:
        out.older += int(pc.sum(pc.less(column, pa.scalar(below, type=column.type))).as_py() or 0)


def window_low(high: Any, seconds: float) -> Any:
    """The lowest cursor value a read may yield that re-reads ``seconds`` below ``high``, or
    None when a time window cannot move the cursor's values (text)."""
    if seconds <= 0 or high is None:
        return high
    if isinstance(high, (dt.datetime, dt.date)):
        return high - dt.timedelta(seconds=seconds)
    if isinstance(high, decimal.Decimal):
        return high - decimal.Decimal(str(seconds))
    if isinstance(high, (int, float)) and not isinstance(high, bool):
        return high - seconds
    return None


def show(value: Any) -> str:
    """A value as a message shows it: instants in ISO form, not as Python constructor calls."""
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k}: {show(v)}" for k, v in value.items()) + "}"
    if isinstance(value, (dt.date, dt.time)):
        return value.isoformat()
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    return str(value)


def _digest(kind: str, text: str) -> bytes:
    return hashlib.blake2b(f"{kind}:{text}".encode(), digest_size=16).digest()


def _schema(schema: pa.Schema) -> str:
    return ", ".join(f"{f.name} {f.type}" for f in schema)


# -- a checkpoint beyond the end --------------------------------------------------------


def beyond_end(checkpoint: dict[str, Any], high: Any) -> dict[str, Any] | None:
    """``checkpoint`` with every value equal to ``high`` moved far into the future, or None
    when it holds no such value (an opaque position: file offsets, page tokens)."""
    moved = False

    def walk(value: Any) -> Any:
        nonlocal moved
        if isinstance(value, dict):
            return {k: walk(v) for k, v in value.items()}
        if isinstance(value, list):
            return [walk(v) for v in value]
        far = _far(value) if _same(value, high) else None
        if far is None:
            return value
        moved = True
        return far

    out = walk(checkpoint)
    return out if moved else None


_YEAR = re.compile(r"^[0-9]{4}-")


def _same(stored: Any, high: Any) -> bool:
    """Whether a checkpoint value is ``high`` as the source stored it (text, number, instant)."""
    if isinstance(stored, bool) or stored is None:
        return False
    if stored == high:
        return True
    try:
        if isinstance(high, dt.datetime) and isinstance(stored, str):
            return parse_timestamp(stored, aware=high.tzinfo is not None) == high
        if isinstance(high, dt.date) and isinstance(stored, str):
            return dt.date.fromisoformat(stored) == high
        if isinstance(high, (decimal.Decimal, float, int)) and isinstance(stored, (str, float, int)):
            return decimal.Decimal(str(stored)) == decimal.Decimal(str(high))
    except (ValueError, ArithmeticError):
        return False
    return False


def _far(value: Any) -> Any:
    """A value of the same form as ``value`` that no row of a real source reaches."""
    if isinstance(value, int):
        return 2**62
    if isinstance(value, float):
        return 1e18
    if isinstance(value, str) and _YEAR.match(value):
        return "9999" + value[4:]
    return None
