"""A cursor value dated in the future never freezes a stream: the checkpoint stays within
`max_cursor_skew` of the source's clock, and after `state --reset` the source wins every key."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sqlsources import Db, write_ws
from typer.testing import CliRunner

from syncline.cli import app as cli

from syncfixtures import dest_query, run_sync

FUTURE = "'2099-01-01 00:00:00'"


def orders(db: Db) -> None:
    db.run(f"CREATE TABLE orders (id integer PRIMARY KEY, note varchar(20), updated_at {db.datetime} "
           "NOT NULL)")
    db.run(f"INSERT INTO orders VALUES (1, 'a', {db.minutes_ago(30)}), (2, 'b', {db.minutes_ago(20)}), "
           f"(3, 'c', {db.minutes_ago(10)}), (4, 'typo', {FUTURE})")


def rows(root: Path, db: Db) -> tuple[list[tuple[Any, ...]], list[tuple[Any, ...]]]:
    source = [tuple(r) for r in db.run("SELECT id, note FROM orders ORDER BY id")]
    return [tuple(r) for r in dest_query(root, "SELECT id, note FROM dst.orders ORDER BY id")], source


def test_under_merge_a_future_row_is_loaded_every_run_and_later_changes_still_arrive(
        tmp_path: Path, db: Db) -> None:
    orders(db)
    write_ws(tmp_path, db, mode="incremental", cursor="updated_at", write="merge")
    first = run_sync(tmp_path)
    assert first.status == "warning", first.error
    [notice] = first.streams[0].notices
    assert notice.startswith(f"{db.stream}: 1 row with a cursor more than 1d past the source's clock")
    assert "loaded again on every run" in notice
    dest, source = rows(tmp_path, db)
    assert dest == source  # the future row is there too
    db.run(f"UPDATE orders SET note = 'b changed', updated_at = {db.minutes_ago(1)} WHERE id = 2")
    second = run_sync(tmp_path)
    assert second.status == "warning"
    dest, source = rows(tmp_path, db)
    assert dest == source  # the stream did not freeze at 2099


def test_under_append_a_future_row_waits_and_is_counted(tmp_path: Path, db: Db) -> None:
    orders(db)
    write_ws(tmp_path, db, mode="incremental", cursor="updated_at", write="append")
    first = run_sync(tmp_path)
    assert first.status == "warning"
    assert "1 row with a cursor more than 1d past" in first.streams[0].notices[0]
    assert "wait until the source's clock reaches them" in first.streams[0].notices[0]
    db.run(f"INSERT INTO orders VALUES (5, 'e', {db.minutes_ago(1)})")
    run_sync(tmp_path)
    assert [i for (i,) in dest_query(tmp_path, "SELECT id FROM dst.orders ORDER BY id")] == [1, 2, 3, 5]


def test_a_streams_max_cursor_skew_overrides_the_connections(tmp_path: Path, db: Db) -> None:
    orders(db)
    write_ws(tmp_path, db, mode="incremental", cursor="updated_at", write="append",
             max_cursor_skew="36500d")
    result = run_sync(tmp_path)
    assert result.status == "succeeded" and result.streams[0].notices == []  # 2099 is within it
    assert [i for (i,) in dest_query(tmp_path, "SELECT id FROM dst.orders ORDER BY id")][:3] == [1, 2, 3]


def test_after_the_value_is_corrected_a_state_reset_lets_the_source_win(tmp_path: Path, db: Db) -> None:
    orders(db)
    write_ws(tmp_path, db, mode="incremental", cursor="updated_at", write="merge")
    run_sync(tmp_path)
    db.run(f"UPDATE orders SET note = 'fixed', updated_at = {db.minutes_ago(1)} WHERE id = 4")
    reset = CliRunner().invoke(cli.app, ["state", "c", "--reset", db.stream, "-w", str(tmp_path)])
    assert reset.exit_code == 0, reset.output
    again = run_sync(tmp_path)
    assert again.status == "succeeded", again.streams[0].notices if again.streams else again.error
    dest, source = rows(tmp_path, db)
    assert dest == source
    assert dest_query(tmp_path, "SELECT count(*) FROM dst.orders WHERE updated_at > '2098-01-01'") == [(0,)]
