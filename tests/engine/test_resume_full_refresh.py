"""An interrupted full refresh from a source that cannot resume one starts over: every row once."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
import pytest
import yaml

from syncline.errors import SourceError

from services import HOST, postgres_schema
from syncfixtures import dest_query, failpoints_on, run_sync

FAKE = [sys.executable, str(Path(__file__).parents[1] / "sources" / "fake_tap.py")]
OVER = "the source cannot resume a full refresh, so the interrupted build starts over"


PG_DSN = f"host={HOST} port=5432 user=postgres dbname=test"


@dataclass
class Dest:
    """Where the connection loads: DuckDB, or a schema of its own on PostgreSQL."""

    config: dict[str, Any]
    schema: str
    query: Callable[[str], list[tuple[Any, ...]]]


@pytest.fixture(params=["duckdb", "postgres"])
def dest(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Dest]:
    if request.param == "duckdb":
        yield Dest({"type": "duckdb", "path": "wh.duckdb"}, "dst",
                   lambda sql: dest_query(tmp_path, sql.replace("{s}", "dst")))
        return

    with postgres_schema("syncline_restart") as name:
        def query(sql: str) -> list[tuple[Any, ...]]:
            with psycopg.connect(PG_DSN, autocommit=True) as con:
                return con.execute(sql.replace("{s}", name)).fetchall()  # type: ignore[arg-type]
        yield Dest({"type": "postgres", "dsn": PG_DSN}, name, query)


def write_ws(root: Path, dest: Dest, write: str, **tap: Any) -> None:
    doc = {
        "version": 1,
        "sources": {"tap": {"type": "singer", "command": FAKE,
                            "config": {"records": 50, "state_every": 10, "full_table": True, **tap}}},
        "destinations": {"wh": dest.config},
        "connections": {"c": {"source": "tap", "destination": "wh", "destination_schema": dest.schema,
                              "max_attempts": 1, "batch_size": 7,
                              "streams": {"items": {"mode": "full_refresh", "write": write}}}},
    }
    (root / "syncline.yaml").write_text(yaml.safe_dump(doc), encoding="utf-8")


def counts(dest: Dest) -> list[tuple[Any, ...]]:
    return dest.query("SELECT count(*), count(DISTINCT id), min(id), max(id) FROM {s}.items")


@pytest.mark.parametrize("write", ["replace", "merge"])
def test_a_full_table_refresh_whose_tap_exited_starts_over_and_publishes_each_row_once(
        tmp_path: Path, dest: Dest, write: str) -> None:
    write_ws(tmp_path, dest, write, fail_after=35)
    failed = run_sync(tmp_path)
    assert failed.status == "failed" and isinstance(failed.error, SourceError)
    write_ws(tmp_path, dest, write)
    resumed = run_sync(tmp_path)
    assert counts(dest) == [(50, 50, 0, 49)]
    assert resumed.status == "warning", resumed.error
    assert resumed.rows_read == 50
    assert OVER in [n for s in resumed.streams for n in s.notices]


def test_a_full_table_refresh_killed_after_its_first_commit_starts_the_build_over(
        tmp_path: Path, dest: Dest) -> None:
    write_ws(tmp_path, dest, "replace")
    assert run_sync(tmp_path).status == "succeeded"
    with failpoints_on("after_commit:1=raise"):
        assert run_sync(tmp_path).status == "failed"
    # the killed build committed its first rows beside the table, which readers never see
    assert counts(dest) == [(50, 50, 0, 49)]
    assert dest.query("SELECT count(*) FROM {s}.items__syncline_building") == [(10,)]
    resumed = run_sync(tmp_path)
    assert counts(dest) == [(50, 50, 0, 49)]
    assert resumed.status == "warning", resumed.error
    assert OVER in [n for s in resumed.streams for n in s.notices]


def test_an_appended_full_table_refresh_commits_at_once_so_a_restart_adds_each_row_once(
        tmp_path: Path, dest: Dest) -> None:
    write_ws(tmp_path, dest, "append")
    assert run_sync(tmp_path).status == "succeeded"
    write_ws(tmp_path, dest, "append", fail_after=35)
    assert run_sync(tmp_path).status == "failed"
    assert counts(dest) == [(50, 50, 0, 49)]  # nothing of the interrupted read was appended
    write_ws(tmp_path, dest, "append")
    again = run_sync(tmp_path)
    assert again.status == "succeeded", again.error
    assert dest.query("SELECT count(*), count(DISTINCT id), min(n), max(n) FROM "
                      "(SELECT id, count(*) AS n FROM {s}.items GROUP BY id) AS t") == [(50, 50, 2, 2)]
