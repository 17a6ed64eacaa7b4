"""A load's memory does not grow with its table: DuckDB lets go of the blocks it wrote."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pyarrow as pa
import pytest

from syncline.destinations.base import LoadTarget
from syncline.destinations.duckdb import destination as duckdb_destination
from syncline.destinations.duckdb.destination import DuckDBConfig, DuckDBDestination
from syncline.schema import Column, DataType, StreamSchema

STREAM = StreamSchema("events", (Column("id", DataType("int64")), Column("note", DataType("string"))))
ROWS = 122_880  # one row group a commit


@pytest.fixture
def dest(tmp_path: Path) -> Iterator[DuckDBDestination]:
    d = DuckDBDestination("wh", DuckDBConfig(type="duckdb", path=str(tmp_path / "wh.duckdb")), ".")
    yield d
    d.close()


def held(dest: DuckDBDestination) -> int:
    rows = dest.query("SELECT memory_usage_bytes FROM duckdb_memory() WHERE tag = 'BASE_TABLE'")
    return int(rows[0][0]) if rows else 0


def commit_row_groups(dest: DuckDBDestination, write: str, groups: int) -> list[int]:
    """Load `groups` commits of distinct rows; what DuckDB holds of the table after each."""
    loader = dest.loader(LoadTarget(connection="c", schema="dst", table="events", stream=STREAM,
                                    write=write, primary_key=(), cursor=None, build_beside=False,
                                    run_id=1))
    after = []
    for g in range(groups):
        ids = pa.array(range(g * ROWS, (g + 1) * ROWS), pa.int64())
        notes = pa.compute.binary_join_element_wise("note ", pa.compute.cast(ids, pa.string()), "")
        loader.write(pa.record_batch([ids, notes], schema=STREAM.arrow_schema()))
        loader.commit({"g": g})
        after.append(held(dest))
    loader.finish({"g": groups})
    return after


def test_an_append_load_holds_no_more_than_a_few_commits_of_written_blocks(
        dest: DuckDBDestination, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(duckdb_destination, "WRITTEN_BLOCKS_KEPT", 1 << 20)
    after = commit_row_groups(dest, "append", 12)
    per_commit = max(after[:2])  # what one or two commits write, before any is let go
    assert per_commit > 0
    assert max(after) <= (1 << 20) + per_commit  # flat: not the whole table's blocks
    assert dest.query("SELECT count(*), count(DISTINCT id) FROM dst.events") == [(12 * ROWS, 12 * ROWS)]
