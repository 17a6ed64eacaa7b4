"""`syncline verify`: reconcile a source and its destination by keys and content hashes.

Both sides are streamed as Arrow batches in bounded memory and hashed into key buckets
(engine/buckets.py); only the buckets whose (count, content sum) differ are read a second
time to list the missing, extra, different and duplicated keys.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from decimal import Decimal
from typing import Any

import pyarrow as pa

from syncline.config import Workspace
from syncline.destinations.base import Destination
from syncline.engine.buckets import Hasher, bucket_totals, collect
from syncline.engine.plan import StreamPlan, destination_schema, plan_streams
from syncline.engine.stream_load import batch_rows
from syncline.errors import DataError, InternalError, SynclineError
from syncline.schema import Column, DataType, from_arrow
from syncline.sources.base import OWN_TABLE_PREFIX, Source
from syncline.stream import BadRecord, ReadRequest

SAMPLE = 5


@dataclass
class StreamVerdict:
    stream: str
    table: str
    source_rows: int = 0
    destination_rows: int = 0
    quarantined_at_source: int = 0
    missing: list[Any] = field(default_factory=list)
    extra: list[Any] = field(default_factory=list)
    different: list[Any] = field(default_factory=list)
    duplicated: list[Any] = field(default_factory=list)
    counts: dict[str, int] = field(default_factory=dict)
    note: str | None = None
    #: Destination columns the source no longer has (kept, NULL in new rows); not compared.
    not_in_source: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not any(self.counts.get(k) for k in ("missing", "extra", "different", "duplicated"))

    def to_json(self) -> dict[str, Any]:
        return {
            "stream": self.stream, "table": self.table, "ok": self.ok,
            "source_rows": self.source_rows, "destination_rows": self.destination_rows,
            "quarantined_at_source": self.quarantined_at_source,
            "missing": self.counts.get("missing", 0), "extra": self.counts.get("extra", 0),
            "different": self.counts.get("different", 0),
            "duplicated": self.counts.get("duplicated", 0),
            "samples": {"missing": self.missing, "extra": self.extra,
                        "different": self.different, "duplicated": self.duplicated},
            "columns_not_in_source": self.not_in_source,
            "note": self.note,
        }


def _source_batches(source: Source, plan: StreamPlan, batch_size: int, verdict: StreamVerdict
                    ) -> Iterator[pa.RecordBatch]:
    request = ReadRequest(stream=plan.stream, mode="full_refresh", primary_key=plan.primary_key,
                          batch_size=batch_size)
    for item in source.read(request):
        if isinstance(item, pa.RecordBatch):
            yield item
        elif isinstance(item, BadRecord):
            verdict.quarantined_at_source += 1


def verify_stream(
    source: Source, destination: Destination, schema: str, plan: StreamPlan, batch_size: int = 50_000
) -> StreamVerdict:
    verdict = StreamVerdict(stream=plan.stream.name, table=plan.table)
    schema = plan.table_schema or schema  # the table's own, when a dotted `table:` names another
    dest_types = destination.table_columns(schema, plan.table)
    if dest_types is None:
        verdict.note = "the destination table does not exist yet: run a sync first"
        verdict.counts["missing"] = source.count(plan.stream) or 0
        return verdict
    # read as a sync would into this table (text stays text), and compare in the source's
    # terms: a boolean loaded from an integer column is compared as that integer, so a value
    # the boolean lost (2, -1) shows as a difference
    plan = replace(plan, stream=plan.stream.keeping_loaded(
        dest_types, but=tuple(c for c in (plan.cursor,) if c), booleans=False))
    columns = [c for c in plan.stream.column_names if c in dest_types]
    verdict.not_in_source = [c for c in dest_types
                             if c not in plan.stream.column_names and not c.startswith(OWN_TABLE_PREFIX)]
    target = pa.schema([pa.field(c, _compared(dest_types[c], plan.stream.column(c)).to_arrow())
                        for c in columns])
    json_cols = frozenset(c for c in columns if dest_types[c].kind == "json")
    latest = (plan.primary_key, plan.cursor) if plan.write == "append" and plan.primary_key else None
    if latest:
        verdict.note = "append stream: the latest version of each key is compared"
    hasher = Hasher(list(plan.primary_key), columns)

    def src() -> Iterator[pa.RecordBatch]:
        for b in _source_batches(source, plan, batch_size, verdict):
            yield _conform(b, target, json_cols)

    def dst() -> Iterator[pa.RecordBatch]:
        for b in destination.scan(schema, plan.table, columns, latest, batch_size):
            yield _conform(b, target, json_cols)

    try:
        s_buckets, verdict.source_rows = bucket_totals(hasher, src())
        d_buckets, verdict.destination_rows = bucket_totals(hasher, dst())
        bad = {b for b in set(s_buckets) | set(d_buckets) if s_buckets.get(b) != d_buckets.get(b)}
        if bad:
            _explain(hasher, src(), dst(), bad, verdict)
    finally:
        hasher.close()
    return verdict


def _compared(held: DataType, col: Column | None) -> DataType:
    """The type a column is compared in: the destination's, unless it lost values of the
    source's (an integer loaded as boolean)."""
    if col is not None and held.kind == "boolean" and col.type.kind in ("int32", "int64"):
        return col.type
    return held


def _canonical_json(col: pa.Array) -> pa.Array:
    """One text per JSON value: destinations such as PostgreSQL's jsonb reorder keys, drop
    spaces and respell numbers (1e2 as 100, -0.0 as 0.0)."""
    out = []
    for v in col.to_pylist():
        try:
            value = None if v is None else json.loads(v, parse_float=_json_number, parse_int=_json_int)
        except (TypeError, ValueError):
            out.append(v)
            continue
        try:
            out.append(None if v is None else json.dumps(
                value, sort_keys=True, separators=(",", ":"), ensure_ascii=False))
        except TypeError:  # a Decimal: some number no double holds exactly
            out.append(_exact_json(value))
    return pa.array(out, type=pa.string())


_MAX_INT_DIGITS = 4000  # Python refuses to print an int past 4300 digits


def _json_number(text: str) -> int | float | Decimal:
    """One Python value per JSON number, whatever its spelling: an int when integral, else
    a float when a double holds it exactly, else a Decimal."""
    d = Decimal(text)
    if d == d.to_integral_value() and d.adjusted() < _MAX_INT_DIGITS:
        return int(d)
    f = float(d)
    return f if Decimal(repr(f)) == d else d


def _json_int(text: str) -> int | float | Decimal:
    return int(text) if len(text) < _MAX_INT_DIGITS else _json_number(text)


def _exact_json(value: Any) -> str:
    """``json.dumps(value, sort_keys=True)`` in compact form, Decimals written exactly."""
    if isinstance(value, dict):
        return "{" + ",".join(f"{json.dumps(k, ensure_ascii=False)}:{_exact_json(value[k])}"
                              for k in sorted(value)) + "}"
    if isinstance(value, list):
        return "[" + ",".join(map(_exact_json, value)) + "]"
    if isinstance(value, Decimal):
        return str(value.normalize())
    return json.dumps(value, ensure_ascii=False)


def _conform(batch: pa.RecordBatch, target: pa.Schema, json_cols: frozenset[str] = frozenset()
             ) -> pa.RecordBatch:
    arrays = []
    for f in target:
        col = batch.column(batch.schema.get_field_index(f.name))
        if f.name in json_cols:
            arrays.append(_canonical_json(col.cast(pa.string())))
            continue
        if not col.type.equals(f.type):
            try:
                if from_arrow(col.type) == from_arrow(f.type) or pa.types.is_string(f.type):
                    col = col.cast(f.type)
                else:
                    col = col.cast(f.type, safe=False)
            except (pa.ArrowInvalid, pa.ArrowNotImplementedError, pa.ArrowTypeError):
                raise _type_changed(f, col) from None
        arrays.append(col)
    return pa.RecordBatch.from_arrays(arrays, schema=target)


def _type_changed(field: pa.Field, col: pa.Array) -> DataError:
    """The source's values of a column no longer fit the loaded table's type: say so, with one."""
    sample = next((v for v in col.to_pylist() if v is not None and not _fits(v, col.type, field.type)), None)
    such = f" such as {sample!r}" if sample is not None else ""
    return DataError(
        f"column '{field.name}' is {from_arrow(field.type)} in the loaded table, but the source now "
        f"gives {from_arrow(col.type)} values{such} that are not: the column's type changed in the source",
        fix="run `syncline sync` for this connection first: it widens the table's column to take "
            "the source's values; then verify compares the two")


def _fits(value: object, kind: pa.DataType, target: pa.DataType) -> bool:
    try:
        pa.array([value], type=kind).cast(target)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError, pa.ArrowTypeError):
        return False
    return True


def _explain(hasher: Hasher, src: Iterator[pa.RecordBatch], dst: Iterator[pa.RecordBatch],
             bad: set[int], verdict: StreamVerdict) -> None:
    s = collect(hasher, src, bad)
    d = collect(hasher, dst, bad)
    missing = [k for k in s if k not in d]
    extra = [k for k in d if k not in s]
    # a key the source holds several times (a declared key that is not unique) is duplicated,
    # whatever single version the destination kept of it
    different = [k for k in s if k in d and sorted(s[k]) != sorted(d[k]) and len(d[k]) == 1
                 and len(s[k]) == 1]
    duplicated = [k for k in {*s, *d} if len(s.get(k, [])) > 1
                  or len(d.get(k, [])) > max(1, len(s.get(k, [])))]
    for name, keys in (("missing", missing), ("extra", extra), ("different", different),
                       ("duplicated", duplicated)):
        verdict.counts[name] = len(keys)
        getattr(verdict, name).extend(list(k) for k in sorted(keys)[:SAMPLE])


def verify_connection(ws: Workspace, connection: str, only: list[str] | None = None
                      ) -> list[StreamVerdict]:
    """Verify every selected stream of a connection (or ``only`` these)."""
    from syncline.engine.endpoints import open_destination, open_source

    conn = ws.connection(connection)
    source = open_source(ws, conn.source)
    destination = open_destination(ws, conn.destination)
    schema = destination_schema(connection, conn, destination)
    try:
        source.check()
        plans = plan_streams(connection, conn, source, destination, only).checked()
        return [_verify_one(connection, source, destination, schema, p, conn.batch_size) for p in plans]
    finally:
        source.close()
        destination.close()


def _verify_one(connection: str, source: Source, destination: Destination, schema: str,
                plan: StreamPlan, batch_size: int | None) -> StreamVerdict:
    """One stream's verdict; any failure becomes an error naming the connection and stream."""
    try:
        return verify_stream(source, destination, schema, plan,
                             batch_size or batch_rows(source, destination, plan.stream))
    except SynclineError as exc:
        raise exc.at(connection=connection, stream=plan.stream.name) from None
    except Exception as exc:
        raise InternalError(
            f"verifying table {schema}.{plan.table} failed: {type(exc).__name__}: {exc}",
            connection=connection, stream=plan.stream.name,
            fix="check that the table still has the stream's columns (or run `syncline sync "
            "--full-refresh` to rebuild it); if it does, this is a Syncline bug: report it",
        ) from exc
