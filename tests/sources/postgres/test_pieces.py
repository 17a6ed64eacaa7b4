"""The driver's batches cut into pieces that end where every checkpoint's rows end."""

from __future__ import annotations

from collections.abc import Iterator

import pyarrow as pa

from syncline.sources.postgres.arrow import _pieces


def driver(sizes: list[int], taken: list[int]) -> Iterator[pa.RecordBatch]:
    start = 0
    for n in sizes:
        taken.append(n)
        yield pa.record_batch({"n": pa.array(range(start, start + n), pa.int64())})
        start += n


def test_pieces_end_at_every_size_rows_and_know_the_row_after() -> None:
    taken: list[int] = []
    got = [(p.column(0).to_pylist(), ends, None if after is None else after.column(0).to_pylist())
           for p, ends, after in _pieces(driver([5, 3, 0, 7, 2], taken), 4)]
    assert got == [
        ([0, 1, 2, 3], True, [4]),
        ([4], False, None),
        ([5, 6, 7], True, [8]),   # the row after comes from the next driver batch
        ([8, 9, 10, 11], True, [12]),
        ([12, 13, 14], False, None),
        ([15], True, [16]),
        ([16], True, None),       # the last rows end the read
    ]


def test_a_read_ending_on_a_boundary_ends_once() -> None:
    got = [(p.num_rows, ends, after) for p, ends, after in _pieces(driver([4, 4], []), 4)]
    assert [(n, ends) for n, ends, _ in got] == [(4, True), (4, True)]
    assert got[-1][2] is None


def test_pieces_are_passed_on_before_the_rest_is_read() -> None:
    taken: list[int] = []
    pieces = _pieces(driver([3] * 100, taken), 1_000)
    first, ends, _ = next(pieces)
    assert first.num_rows == 3 and not ends
    assert len(taken) == 2  # the batch in hand and the one after it, not a checkpoint's worth
    assert sum(p.num_rows for p, _, _ in pieces) == 297


def test_no_rows_no_pieces() -> None:
    assert list(_pieces(driver([0, 0], []), 4)) == []
