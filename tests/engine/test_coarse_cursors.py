"""Coarse cursors and `lookback:` on every SQL source: a row that takes the checkpoint's cursor
value after it was read, or is stamped by its writer's own clock, still arrives (merge)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from sqlsources import Db, write_ws
from typer.testing import CliRunner

from syncline.cli import app as cli

from syncfixtures import dest_query, run_sync


def rows_equal(root: Path, db: Db) -> tuple[list[tuple[Any, ...]], list[tuple[Any, ...]]]:
    source = [tuple(r) for r in db.run("SELECT id, note FROM orders ORDER BY id")]
    return [tuple(r) for r in dest_query(root, "SELECT id, note FROM dst.orders ORDER BY id")], source


def test_a_row_that_takes_the_checkpoints_counter_value_later_arrives_under_merge(
        tmp_path: Path, db: Db) -> None:
    # a coarse cursor: a batch number many rows share, stamped by the writer
    db.run("CREATE TABLE orders (id integer PRIMARY KEY, batch integer NOT NULL, note varchar(20))")
    db.run("INSERT INTO orders VALUES (1, 1, 'a'), (2, 1, 'b'), (3, 1, 'c')")
    write_ws(tmp_path, db, mode="incremental", cursor="batch", write="merge")
    assert run_sync(tmp_path).rows_committed == 3
    db.run("UPDATE orders SET note = 'changed' WHERE id = 1")  # still batch 1, below key 3
    db.run("INSERT INTO orders VALUES (0, 1, 'late')")
    again = run_sync(tmp_path)
    assert again.status == "succeeded", again.error
    dest, source = rows_equal(tmp_path, db)
    assert dest == source
    assert dest_query(tmp_path, "SELECT count(*), count(DISTINCT id) FROM dst.orders") == [(4, 4)]


def test_lookback_reads_again_rows_stamped_by_the_writers_own_clock(tmp_path: Path, db: Db) -> None:
    db.run("CREATE TABLE orders (id integer PRIMARY KEY, updated_at timestamp NOT NULL, "
           "note varchar(20))")
    db.run(f"INSERT INTO orders VALUES (1, {db.minutes_ago(30)}, 'a'), (2, {db.minutes_ago(20)}, 'b')")
    write_ws(tmp_path, db, {"lookback": "15m"}, mode="incremental", cursor="updated_at")
    assert run_sync(tmp_path).rows_committed == 2
    # an application stamps a row with its own clock, 25 minutes back, and commits only now
    db.run(f"INSERT INTO orders VALUES (3, {db.minutes_ago(25)}, 'own clock')")
    assert run_sync(tmp_path).status == "succeeded"
    dest, source = rows_equal(tmp_path, db)
    assert dest == source


def test_a_streams_lookback_overrides_the_sources(tmp_path: Path, db: Db) -> None:
    db.run("CREATE TABLE orders (id integer PRIMARY KEY, updated_at timestamp NOT NULL, "
           "note varchar(20))")
    write_ws(tmp_path, db, {"lookback": "1h"}, mode="incremental", cursor="updated_at", write="append")
    refused = CliRunner().invoke(cli.app, ["check", "-w", str(tmp_path), "c", "--json"])
    assert refused.exit_code == 2
    assert "re-reads a lookback window (1h)" in refused.stdout and "lookback: 0s" in refused.stdout
    write_ws(tmp_path, db, {"lookback": "1h"}, mode="incremental", cursor="updated_at", write="append",
             lookback="0s")
    db.run(f"INSERT INTO orders VALUES (1, {db.minutes_ago(30)}, 'a')")
    assert run_sync(tmp_path).status == "succeeded"
    assert run_sync(tmp_path).rows_read == 0  # nothing appended twice
    assert dest_query(tmp_path, "SELECT count(*) FROM dst.orders") == [(1,)]


@pytest.mark.parametrize(("text", "earlier"), [
    ("2026-01-01 00:10:00", "2026-01-01 00:05:00"),
    ("2026-01-01T00:02:00.123456", "2025-12-31T23:57:00.123456"),
    ("2026-01-01 00:10:00.5", "2026-01-01 00:05:00.5"),
    ("2026-01-01T00:10:00Z", "2026-01-01T00:05:00Z"),
    ("2026-01-01", "2025-12-31"),
    ("not a time", None),
    (12345, None),
])
def test_a_sqlite_lookback_keeps_the_cursors_own_text_form(text: Any, earlier: str | None) -> None:
    from syncline.sources.sqlite import _iso_minus

    assert _iso_minus(text, 300) == earlier
