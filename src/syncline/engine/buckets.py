"""Key buckets: rows hashed by key and content in one DuckDB engine, summed per bucket.

Two sides with the same rows have the same (count, content sum) in every bucket; only the
buckets that differ need a second, key-by-key look. One in-memory DuckDB engine hashes both
sides, so equal values always hash equally. `verify` and `deletes: reconcile` use it.
"""

from __future__ import annotations

from collections.abc import Iterator

import duckdb
import pyarrow as pa

from syncline.destinations.duckdb.types import qi  # the buckets are hashed in DuckDB

BUCKETS = 1024


class Hasher:
    """Key and content hashes of Arrow batches, computed by one DuckDB engine."""

    def __init__(self, key: list[str], columns: list[str]) -> None:
        self.con = duckdb.connect()
        self.key = key or columns  # without a key, a row is its own key
        self.columns = columns

    def hashes(self, batch: pa.RecordBatch) -> pa.Table:
        self.con.register("_b", pa.Table.from_batches([batch]))
        try:
            keys = ", ".join(qi(k) for k in self.key)
            cols = ", ".join(qi(c) for c in self.columns)
            key_list = ", ".join(f"{qi(k)}::VARCHAR" for k in self.key)
            table: pa.Table = self.con.sql(
                f"SELECT hash({keys}) AS kh, hash({cols}) AS rh, [{key_list}] AS k FROM _b"
            ).to_arrow_table()
            return table
        finally:
            self.con.unregister("_b")

    def buckets(self, batch: pa.RecordBatch) -> list[tuple[int, int, int]]:
        """(bucket, rows, content sum) of a batch, aggregated inside DuckDB."""
        self.con.register("_h", self.hashes(batch))
        try:
            rows: list[tuple[int, int, int]] = self.con.execute(
                f"SELECT kh % {BUCKETS}, count(*), sum(rh::HUGEINT) % 18446744073709551616 "
                "FROM _h GROUP BY ALL"
            ).fetchall()
            return rows
        finally:
            self.con.unregister("_h")

    def close(self) -> None:
        self.con.close()


def bucket_totals(hasher: Hasher, batches: Iterator[pa.RecordBatch]
                  ) -> tuple[dict[int, tuple[int, int]], int]:
    """(rows, content sum) per bucket of every batch, and how many rows there were."""
    totals: dict[int, tuple[int, int]] = {}
    rows = 0
    for batch in batches:
        rows += batch.num_rows
        for b, n, s in hasher.buckets(batch):
            old_n, old_s = totals.get(b, (0, 0))
            totals[b] = (old_n + n, (old_s + int(s)) % 2**64)
    return totals, rows


def collect(hasher: Hasher, batches: Iterator[pa.RecordBatch], bad: set[int]
            ) -> dict[tuple[str, ...], list[int]]:
    """The content hashes of each key (as text) in the ``bad`` buckets."""
    out: dict[tuple[str, ...], list[int]] = {}
    for batch in batches:
        h = hasher.hashes(batch)
        for kh, rh, k in zip(h.column("kh").to_pylist(), h.column("rh").to_pylist(),
                             h.column("k").to_pylist()):
            if kh % BUCKETS in bad:
                out.setdefault(tuple(k), []).append(rh)
    return out
