"""Declared types (`fields:`) on every SQL source's streams, and MariaDB's TINYINT(1): no value is
turned into another without a trace, and verify compares in the source's terms."""

from __future__ import annotations

import json
from pathlib import Path

import duckdb
from sqlsources import Db, write_ws
from typer.testing import CliRunner

from syncline.cli import app as cli

from syncfixtures import dest_query, run_sync


def flags(db: Db, column: str = "flag smallint") -> None:
    db.run(f"CREATE TABLE orders (id integer PRIMARY KEY, {column}, updated_at timestamp NOT NULL)")
    db.run("INSERT INTO orders VALUES " + ", ".join(
        f"({i}, {v}, {db.minutes_ago(60 - i)})" for i, v in enumerate([0, 1, 2, 9, -1, 1], start=1)))


def verify(root: Path) -> dict[str, object]:
    done = CliRunner().invoke(cli.app, ["verify", "c", "-w", str(root), "--json"])
    [verdict] = json.loads(done.stdout)
    assert isinstance(verdict, dict)
    return verdict


def test_a_declared_boolean_quarantines_what_is_not_0_or_1(tmp_path: Path, db: Db) -> None:
    flags(db)
    write_ws(tmp_path, db, mode="incremental", cursor="updated_at", fields={"flag": "boolean"})
    result = run_sync(tmp_path)
    assert (result.rows_read, result.rows_committed, result.rows_quarantined) == (6, 3, 3)
    assert dest_query(tmp_path, "SELECT id, flag FROM dst.orders ORDER BY id") == [
        (1, False), (2, True), (6, True)]
    bad = dest_query(tmp_path, "SELECT record FROM dst._syncline_quarantine ORDER BY record")
    assert all('"flag"' in r for (r,) in bad) and len(bad) == 3


def test_a_field_naming_no_column_is_a_configuration_error(tmp_path: Path, db: Db) -> None:
    flags(db)
    write_ws(tmp_path, db, mode="incremental", cursor="updated_at", fields={"flg": "boolean"})
    done = CliRunner().invoke(cli.app, ["check", "-w", str(tmp_path), "c", "--json"])
    assert done.exit_code == 2
    assert "`fields:` names column(s) flg the stream does not have" in done.stdout


def test_mariadb_tinyint_1_arrives_as_the_integer_it_holds(tmp_path: Path, db: Db) -> None:
    flags(db, "flag tinyint(1)" if db.source["type"] == "mysql" else "flag smallint")
    write_ws(tmp_path, db, mode="incremental", cursor="updated_at")
    assert run_sync(tmp_path).rows_committed == 6
    assert [v for (v,) in dest_query(tmp_path, "SELECT flag FROM dst.orders ORDER BY id")] == [
        0, 1, 2, 9, -1, 1]
    assert verify(tmp_path)["ok"] is True


def test_a_column_loaded_as_boolean_keeps_it_quarantines_the_rest_and_verify_sees_the_loss(
        tmp_path: Path, db: Db) -> None:
    flags(db)
    write_ws(tmp_path, db, mode="incremental", cursor="updated_at", fields={"flag": "boolean"})
    run_sync(tmp_path)  # as an older mapping left it: a boolean column
    con = duckdb.connect(str(tmp_path / "wh.duckdb"))
    con.execute("INSERT INTO dst.orders (id, flag, updated_at, _syncline_synced_at, _syncline_deleted) "
                "SELECT 3, true, now()::timestamp, now(), false")  # 2 loaded as true, long ago
    con.close()
    write_ws(tmp_path, db, mode="incremental", cursor="updated_at")  # the declaration is gone
    db.run(f"INSERT INTO orders VALUES (7, 5, {db.minutes_ago(1)}), (8, 0, {db.minutes_ago(1)})")
    again = run_sync(tmp_path)
    assert again.status == "warning", again.error  # its quarantined row is a warning
    assert dest_query(tmp_path, "SELECT flag FROM dst.orders WHERE id = 8") == [(False,)]
    assert again.rows_quarantined >= 1  # 5 is no boolean: quarantined, not loaded as true
    verdict = verify(tmp_path)
    assert verdict["ok"] is False
    assert verdict["different"] == 1  # id 3: the source holds 2, the table says true
