"""Shared loader parts: one commit's batches joined into one."""

from __future__ import annotations

import pyarrow as pa

from syncline.destinations.base import joined


def test_a_commits_batches_become_one_with_every_row_in_order() -> None:
    pieces = [pa.record_batch({"n": pa.array(range(i, i + 3), pa.int64())}) for i in (0, 3, 6)]
    [one] = joined(pieces)
    assert one.column(0).to_pylist() == list(range(9))


def test_a_single_batch_is_passed_on_as_it_is() -> None:
    batch = pa.record_batch({"n": pa.array([1, 2], pa.int64())})
    assert joined([batch])[0] is batch
    assert joined([]) == []
