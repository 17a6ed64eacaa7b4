"""Batch sizes: a source that knows its row width asks for ~24 MiB, rounded to DuckDB row groups."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
import yaml

from services import HOST, postgres_schema
from syncfixtures import dest_query, run_sync

CONNINFO = f"host={HOST} user=postgres dbname=test"
ROW_GROUP = 122_880


@pytest.fixture
def wide_table() -> Iterator[str]:
    """300,000 rows of about 220 bytes each, analyzed, in a schema of their own."""
    with postgres_schema("syncline_batch") as schema, \
            psycopg.connect(CONNINFO, autocommit=True) as con:
        con.execute(f'CREATE TABLE "{schema}".t (id bigint PRIMARY KEY, body text)')
        con.execute(f"INSERT INTO \"{schema}\".t SELECT i, repeat(md5(i::text), 6) "
                    "FROM generate_series(1, 300000) AS i")
        con.execute(f'ANALYZE "{schema}".t')
        yield schema


def _workspace(root: Path, schema: str, batch_size: int | None) -> None:
    conn = {"source": "src", "destination": "wh", "destination_schema": "dst",
            "streams": {f"{schema}.t": {"mode": "full_refresh", "write": "replace"}}}
    if batch_size:
        conn["batch_size"] = batch_size
    (root / "syncline.yaml").write_text(yaml.safe_dump({
        "version": 1,
        "sources": {"src": {"type": "postgres", "host": HOST, "user": "postgres", "database": "test",
                            "schemas": [schema]}},
        "destinations": {"wh": {"type": "duckdb", "path": "wh.duckdb"}},
        "connections": {"c": conn},
    }))


def _commits(root: Path) -> list[int]:
    return [r[0] for r in dest_query(root, "SELECT rows FROM dst._syncline_loads ORDER BY committed_at")]


def test_without_a_batch_size_commits_hold_whole_row_groups_of_about_24_mib(
    tmp_path: Path, wide_table: str
) -> None:
    _workspace(tmp_path, wide_table, None)
    result = run_sync(tmp_path)
    assert result.status == "succeeded", result.error
    assert result.rows_committed == 300_000
    # ~226 bytes a row: 24 MiB is ~110,000 rows, rounded to one row group
    assert _commits(tmp_path) == [ROW_GROUP, ROW_GROUP, 300_000 - 2 * ROW_GROUP]


def test_a_configured_batch_size_is_kept_as_it_is(tmp_path: Path, wide_table: str) -> None:
    _workspace(tmp_path, wide_table, 100_000)
    assert run_sync(tmp_path).status == "succeeded"
    assert _commits(tmp_path) == [100_000, 100_000, 100_000]
