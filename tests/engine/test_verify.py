"""`syncline verify` finds every kind of divergence, and only real ones."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
from pathlib import Path

import duckdb

from syncline.config import load_workspace
from syncline.engine.verify import verify_connection

from syncfixtures import item_row, make_items, rebuild_t, run_sync, sqlite_script, write_ws


def _verify_cli(root: Path) -> tuple[int, list[dict[str, object]]]:
    out = subprocess.run([sys.executable, "-m", "syncline", "verify", "c", "--json", "-w", str(root)],
                         capture_output=True, text=True, timeout=120)
    return out.returncode, json.loads(out.stdout)


def _dest(root: Path, sql: str) -> None:
    con = duckdb.connect(str(root / "wh.duckdb"))
    con.execute(sql)
    con.close()


def test_verify_passes_after_a_clean_sync_and_lists_every_divergence(tmp_path: Path) -> None:
    db = tmp_path / "src.db"
    make_items(db, 3000)
    write_ws(tmp_path, {"items": {"mode": "incremental", "write": "merge", "cursor": "updated_at"}},
             batch_size=500)
    assert run_sync(tmp_path).status == "succeeded"
    code, report = _verify_cli(tmp_path)
    assert code == 0 and report[0]["ok"] is True
    assert report[0]["source_rows"] == report[0]["destination_rows"] == 3000

    _dest(tmp_path, "DELETE FROM dst.items WHERE id IN (5, 6)")                   # lost rows
    _dest(tmp_path, "UPDATE dst.items SET name = 'tampered' WHERE id = 10")        # wrong values
    _dest(tmp_path, "INSERT INTO dst.items SELECT * FROM dst.items WHERE id = 20") # duplicate
    _dest(tmp_path, "INSERT INTO dst.items SELECT * REPLACE (99999 AS id) FROM dst.items WHERE id = 30")
    code, report = _verify_cli(tmp_path)
    r = report[0]
    assert code == 1 and r["ok"] is False
    assert (r["missing"], r["different"], r["duplicated"], r["extra"]) == (2, 1, 1, 1)
    samples = r["samples"]
    assert samples["missing"] == [["5"], ["6"]] and samples["different"] == [["10"]]
    assert samples["duplicated"] == [["20"]] and samples["extra"] == [["99999"]]


def test_source_changes_since_the_sync_show_until_the_next_sync(tmp_path: Path) -> None:
    db = tmp_path / "src.db"
    make_items(db, 200)
    write_ws(tmp_path, {"items": {"mode": "incremental", "write": "merge", "cursor": "updated_at"}})
    run_sync(tmp_path)
    con = sqlite3.connect(db)
    con.execute("DELETE FROM items WHERE id = 7")
    con.execute("INSERT INTO items VALUES (?,?,?,?,?,?,?,?,?)", item_row(201))
    con.commit()
    con.close()
    verdict = verify_connection(load_workspace(tmp_path), "c")[0]
    assert verdict.counts == {"missing": 1, "extra": 1, "different": 0, "duplicated": 0}
    assert verdict.missing == [["201"]] and verdict.extra == [["7"]]
    run_sync(tmp_path)  # incremental catches the insert; a hard delete needs CDC or a full refresh
    verdict = verify_connection(load_workspace(tmp_path), "c")[0]
    assert verdict.counts["missing"] == 0 and verdict.counts["extra"] == 1


def test_quarantined_rows_are_not_reported_missing(tmp_path: Path) -> None:
    db = tmp_path / "src.db"
    make_items(db, 50)
    con = sqlite3.connect(db)
    con.execute("UPDATE items SET born = 'not a date' WHERE id = 3")
    con.commit()
    con.close()
    write_ws(tmp_path, {"items": {"mode": "full_refresh", "write": "replace"}})
    run_sync(tmp_path)
    verdict = verify_connection(load_workspace(tmp_path), "c")[0]
    assert verdict.ok and verdict.quarantined_at_source == 1 and verdict.destination_rows == 49


def test_verify_after_a_source_type_change_says_so_and_passes_after_the_next_sync(tmp_path: Path) -> None:
    db = tmp_path / "src.db"
    sqlite_script(db, "CREATE TABLE t (id INTEGER PRIMARY KEY, qty INTEGER, u TEXT);"
                      "INSERT INTO t VALUES (1, 5, '2026-01-01'), (2, 6, '2026-01-02');")
    write_ws(tmp_path, {"t": {"mode": "incremental", "write": "merge", "cursor": "u"}})
    assert run_sync(tmp_path).status == "succeeded"
    rebuild_t(db, "CREATE TABLE t (id INTEGER PRIMARY KEY, qty TEXT, u TEXT)", "id, qty, u",
              "(3, 'five', '2026-01-03')")
    out = subprocess.run([sys.executable, "-m", "syncline", "verify", "c", "--json", "-w", str(tmp_path)],
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 1, out
    error = json.loads(out.stdout)["error"]
    message = error["message"]
    assert error["failure_class"] == "data" and error["fix"].startswith("run `syncline sync`"), error
    assert ("column 'qty' is int64 in the loaded table, but the source now gives string values such "
            "as 'five' that are not: the column's type changed in the source") in message, error
    assert "Syncline bug" not in out.stdout and "ArrowInvalid" not in out.stdout
    assert run_sync(tmp_path).status == "succeeded"  # the column widens to text
    code, report = _verify_cli(tmp_path)
    assert code == 0 and report[0]["ok"] is True, report
