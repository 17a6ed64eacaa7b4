"""`deletes: reconcile`: the keys an incremental stream's table holds and its source no longer
does, found by comparing key buckets (a cursor read never sees a delete).

Every `reconcile_every` runs, after the run's last commit, the source's keys (one snapshot,
key columns only) and the table's live keys are hashed into buckets (engine/buckets.py);
only the buckets that differ are read again, key by key. A key the table holds and the
source lacks was deleted at the source: the loader marks it in one transaction with the
state row. A key the source has and the table lacks was inserted after the run's read: the
next incremental read loads it, so it is not this module's business.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace

import pyarrow as pa

from syncline.destinations.base import Destination
from syncline.engine.buckets import BUCKETS, Hasher, bucket_totals, collect
from syncline.engine.plan import StreamPlan
from syncline.errors import DataError
from syncline.sources.base import Source
from syncline.stream import BadRecord, ReadRequest


def gone_keys(source: Source, destination: Destination, schema: str, plan: StreamPlan,
              batch_size: int, connection: str) -> tuple[pa.Table, int]:
    """The table's live keys the source no longer has, typed as the table holds them, and how
    many live keys the table holds."""
    keys = list(plan.primary_key)
    table_schema = plan.table_schema or schema
    types = destination.table_columns(table_schema, plan.table) or {}
    target = pa.schema([pa.field(k, types[k].to_arrow()) for k in keys])
    stream = replace(plan.stream, columns=tuple(c for c in plan.stream.columns if c.name in keys))
    hasher = Hasher(keys, keys)

    def conform(batch: pa.RecordBatch) -> pa.RecordBatch:
        return pa.RecordBatch.from_arrays(
            [batch.column(batch.schema.get_field_index(f.name)).cast(f.type) for f in target],
            schema=target)

    def src() -> Iterator[pa.RecordBatch]:
        request = ReadRequest(stream=stream, mode="full_refresh", primary_key=plan.primary_key,
                              batch_size=batch_size)
        for item in source.read(request):
            if isinstance(item, BadRecord):  # a key not read is not a key deleted
                raise DataError(
                    f"a key of the source could not be read ({item.error}), so no key is marked "
                    "deleted", connection=connection, stream=plan.stream.name,
                    fix="see the quarantined rows of this stream; the next reconciliation tries again")
            if isinstance(item, pa.RecordBatch):
                yield conform(item)

    def dst() -> Iterator[pa.RecordBatch]:
        for batch in destination.scan(table_schema, plan.table, keys, None, batch_size):
            yield conform(batch)

    try:
        in_source, _ = bucket_totals(hasher, src())
        in_table, live = bucket_totals(hasher, dst())
        bad = {b for b in in_source.keys() | in_table.keys() if in_source.get(b) != in_table.get(b)}
        if not bad:
            return target.empty_table(), live
        found = collect(hasher, src(), bad)
        gone: list[pa.RecordBatch] = []
        for batch in dst():
            h = hasher.hashes(batch)
            take = [i for i, (kh, k) in enumerate(zip(h.column("kh").to_pylist(),
                                                      h.column("k").to_pylist(), strict=True))
                    if kh % BUCKETS in bad and tuple(k) not in found]
            if take:
                gone.append(batch.take(pa.array(take, type=pa.int64())))
        return pa.Table.from_batches(gone, schema=target), live
    finally:
        hasher.close()
