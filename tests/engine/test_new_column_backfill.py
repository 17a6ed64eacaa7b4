"""A column added at the source with a default reaches the rows loaded before (merge), or the
run says they hold NULL there (append), on every SQL source."""

from __future__ import annotations

import json
from pathlib import Path

from sqlsources import Db, write_ws
from typer.testing import CliRunner

from syncline.cli import app as cli

from syncfixtures import dest_query, run_sync


def orders(db: Db) -> None:
    db.run("CREATE TABLE orders (id integer PRIMARY KEY, note varchar(20), updated_at timestamp NOT NULL)")
    db.run("INSERT INTO orders VALUES " + ", ".join(
        f"({i}, 'n{i}', {db.minutes_ago(90 - i)})" for i in range(1, 41)))


def test_under_merge_the_rows_loaded_before_get_the_new_columns_default(tmp_path: Path, db: Db) -> None:
    orders(db)
    write_ws(tmp_path, db, connection={"batch_size": 7}, mode="incremental", cursor="updated_at",
             write="merge")
    assert run_sync(tmp_path).rows_committed == 40
    db.run("ALTER TABLE orders ADD COLUMN tier varchar(10) DEFAULT 'bronze'")
    db.run(f"INSERT INTO orders VALUES (41, 'new', {db.minutes_ago(1)}, 'gold')")
    result = run_sync(tmp_path)
    assert result.status == "succeeded", result.error
    changes = result.streams[0].schema_changes
    assert any("new column(s) tier: the rows loaded before are read again" in c for c in changes)
    assert dest_query(tmp_path, "SELECT tier, count(*) FROM dst.orders GROUP BY tier ORDER BY tier") == [
        ("bronze", 40), ("gold", 1)]
    done = CliRunner().invoke(cli.app, ["verify", "c", "-w", str(tmp_path), "--json"])
    assert json.loads(done.stdout)[0]["ok"] is True, done.stdout
    assert run_sync(tmp_path).rows_read <= 1  # the next run is incremental again


def test_under_append_the_run_says_the_rows_loaded_before_hold_null(tmp_path: Path, db: Db) -> None:
    orders(db)
    write_ws(tmp_path, db, mode="incremental", cursor="updated_at", write="append")
    run_sync(tmp_path)
    db.run("ALTER TABLE orders ADD COLUMN tier varchar(10) DEFAULT 'bronze'")
    result = run_sync(tmp_path)
    assert result.status == "warning"
    assert "new column(s) tier: the rows loaded before hold NULL there" in result.streams[0].notices[0]
    assert dest_query(tmp_path, "SELECT count(*) FROM dst.orders WHERE tier IS NULL") == [(40,)]
