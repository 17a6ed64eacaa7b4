"""DuckDB merges: the newer row wins, and within one commit the last staged version of a key."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest

from syncline.destinations.base import LoadTarget
from syncline.destinations.duckdb import loader as duckdb_loader
from syncline.destinations.duckdb.destination import DuckDBConfig, DuckDBDestination
from syncline.schema import Column, DataType, StreamSchema

STREAM = StreamSchema("kv", (Column("k", DataType("int64")), Column("v", DataType("string")),
                             Column("ts", DataType("int64"))), primary_key=("k",))


def batch(rows: list[tuple[Any, ...]]) -> pa.RecordBatch:
    return pa.RecordBatch.from_pylist([dict(zip(["k", "v", "ts"], r)) for r in rows],
                                      schema=STREAM.arrow_schema())


@pytest.fixture
def dest(tmp_path: Path) -> Iterator[DuckDBDestination]:
    d = DuckDBDestination("wh", DuckDBConfig(type="duckdb", path=str(tmp_path / "wh.duckdb")), ".")
    yield d
    d.close()


@pytest.fixture(params=[False, True], ids=["in-memory", "spilled"])
def spill(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> bool:
    if request.param:  # every write goes through the temporary stage table
        monkeypatch.setattr(duckdb_loader, "SPILL_BYTES", 1)
    return bool(request.param)


def target(cursor: str | None) -> LoadTarget:
    return LoadTarget(connection="c", schema="dst", table="kv", stream=STREAM, write="merge",
                      primary_key=("k",), cursor=cursor, build_beside=False, run_id=1)


def rows(dest: DuckDBDestination) -> list[tuple[Any, ...]]:
    return dest.query('SELECT k, v, ts FROM dst.kv ORDER BY k')


def test_an_older_incoming_row_never_overwrites_a_newer_one(dest: DuckDBDestination,
                                                            spill: bool) -> None:
    loader = dest.loader(target("ts"))
    loader.write(batch([(1, "a5", 5), (2, "b5", 5), (3, "c5", 5)]))
    loader.commit({"n": 1})
    loader.write(batch([(1, "a-old", 4), (2, "b-same", 5), (3, "c-new", 6), (4, "d", None)]))
    result = loader.commit({"n": 2})
    loader.finish({"n": 3})
    # what the table got: two rows replaced, one added; the older row of key 1 is skipped
    assert (result.rows, result.skipped, result.added) == (3, 1, 1)
    # key 1: the table's row is newer and stays; an equal or newer cursor replaces it
    assert rows(dest) == [(1, "a5", 5), (2, "b-same", 5), (3, "c-new", 6), (4, "d", None)]


@pytest.mark.parametrize("cursor", ["ts", None], ids=["tied-cursor", "no-cursor"])
def test_the_last_staged_version_of_a_key_wins_within_one_commit(
        dest: DuckDBDestination, spill: bool, cursor: str | None) -> None:
    loader = dest.loader(target(cursor))
    loader.write(batch([(1, "first", 1), (2, "only", 1)]))
    loader.write(batch([(1, "second", 1)]))
    loader.write(batch([(1, "third", 1)]))
    loader.commit({"n": 1})
    loader.write(batch([(2, "again-1", 2), (2, "again-2", 2)]))
    loader.commit({"n": 2})
    loader.finish({"n": 3})
    assert rows(dest) == [(1, "third", 1), (2, "again-2", 2)]
    assert dest.query("SELECT count(*) FROM dst.kv WHERE _syncline_deleted") == [(0,)]
