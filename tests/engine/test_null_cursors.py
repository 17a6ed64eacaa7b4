"""Rows whose cursor is NULL on every SQL source: read on every merge run, refused under append,
and a cursor that is never NULL picked first."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from sqlsources import Db, write_ws
from typer.testing import CliRunner

from syncline.cli import app as cli

from syncfixtures import dest_query, failpoints_on, run_sync


def orders(db: Db, cursor: str = "updated_at timestamp") -> None:
    db.run(f"CREATE TABLE orders (id integer PRIMARY KEY, note varchar(20), {cursor})")
    db.run(f"INSERT INTO orders VALUES (1, 'a', {db.minutes_ago(30)}), (2, 'b', NULL), "
           f"(3, 'c', {db.minutes_ago(20)})")


def both(root: Path, db: Db) -> tuple[list[tuple[Any, ...]], list[tuple[Any, ...]]]:
    source = [tuple(r) for r in db.run("SELECT id, note FROM orders ORDER BY id")]
    dest = dest_query(root, "SELECT id, note FROM dst.orders WHERE NOT _syncline_deleted ORDER BY id")
    return [tuple(r) for r in dest], source


def plan_of(root: Path) -> tuple[int, list[dict[str, Any]]]:
    done = CliRunner().invoke(cli.app, ["check", "-w", str(root), "c", "--json"])
    return done.exit_code, json.loads(done.stdout)


def test_a_row_inserted_or_updated_later_with_a_null_cursor_arrives_under_merge(
        tmp_path: Path, db: Db) -> None:
    orders(db)
    write_ws(tmp_path, db, mode="incremental", cursor="updated_at", write="merge")
    first = run_sync(tmp_path)
    assert first.status == "succeeded", first.error
    db.run("INSERT INTO orders VALUES (4, 'no stamp', NULL)")
    db.run("UPDATE orders SET note = 'unstamped', updated_at = NULL WHERE id = 1")
    db.run("UPDATE orders SET note = 'b again' WHERE id = 2")
    again = run_sync(tmp_path)
    assert again.status == "succeeded", again.error
    dest, source = both(tmp_path, db)
    assert dest == source
    assert dest_query(tmp_path, "SELECT count(*), count(DISTINCT id) FROM dst.orders") == [(4, 4)]


def test_a_nullable_cursor_is_refused_under_append_with_the_fix(tmp_path: Path, db: Db) -> None:
    orders(db)
    write_ws(tmp_path, db, mode="incremental", cursor="updated_at", write="append")
    code, outcomes = plan_of(tmp_path)
    assert code == 2
    message = outcomes[-1]["message"]
    assert "the cursor column 'updated_at' may be NULL" in message
    assert "make 'updated_at' NOT NULL" in message and "write: merge" in message
    result = run_sync(tmp_path)
    assert result.status == "failed" and result.error is not None
    assert result.error.failure_class == "configuration"


def test_the_default_cursor_is_one_that_is_never_null(tmp_path: Path, db: Db) -> None:
    db.run("CREATE TABLE orders (id integer PRIMARY KEY, note varchar(20), "
           "updated_at timestamp NULL, modified_at timestamp NOT NULL)")
    write_ws(tmp_path, db)
    code, outcomes = plan_of(tmp_path)
    assert code == 0, outcomes
    [plan] = outcomes[-1]["plan"]
    assert (plan["cursor"], plan["cursor_nullable"]) == ("modified_at", False)


def test_a_run_that_fails_among_the_null_rows_resumes_and_the_next_takes_them_all_again(
        tmp_path: Path, db: Db) -> None:
    db.run("CREATE TABLE orders (id integer PRIMARY KEY, note varchar(20), updated_at timestamp)")
    db.run("INSERT INTO orders VALUES " + ", ".join(
        f"({i}, 'n{i}', {'NULL' if i % 4 else db.minutes_ago(60 - i)})" for i in range(10, 30)))
    write_ws(tmp_path, db, connection={"batch_size": 4}, mode="incremental", cursor="updated_at",
             write="merge")
    assert run_sync(tmp_path).status == "succeeded"
    db.run("UPDATE orders SET note = 'changed' WHERE id IN (11, 27)")
    with failpoints_on("after_staging:2=raise"):  # the second batch of NULL rows fails
        failed = run_sync(tmp_path)
    assert failed.status == "failed"
    [(state,)] = dest_query(tmp_path, "SELECT state FROM dst._syncline_state")
    assert "null_key" in json.loads(state)["source"]  # it stopped inside the NULL rows
    db.run("INSERT INTO orders VALUES (1, 'below the resume key', NULL)")
    resumed = run_sync(tmp_path)  # goes on after the last NULL row committed
    assert resumed.status == "succeeded", resumed.error
    assert run_sync(tmp_path).status == "succeeded"  # and the next run takes every NULL row again
    dest, source = both(tmp_path, db)
    assert dest == source
    assert dest_query(tmp_path, "SELECT count(*), count(DISTINCT id) FROM dst.orders") == [(21, 21)]
