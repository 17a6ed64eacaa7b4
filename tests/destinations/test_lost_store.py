"""A lost or new metadata store never stops a pipeline: the destination's fencing token and load
records are the truth, and a new store takes over above them."""

from __future__ import annotations

import json
import shutil

import duckdb
import psycopg
from typer.testing import CliRunner

import syncline.cli.app as cli

from warehouse import DSN, Warehouse

ITEMS = ("CREATE TABLE items (id INTEGER PRIMARY KEY, v TEXT, updated_at TEXT NOT NULL);"
         "INSERT INTO items VALUES " + ", ".join(f"({i}, 'v{i}', '2026-01-01 00:00:{i:02d}')"
                                                 for i in range(1, 21)) + ";")


def runs(wh: Warehouse) -> list[dict[str, object]]:
    done = CliRunner().invoke(cli.app, ["runs", "c", "--workspace", str(wh.root), "--json"])
    listed: list[dict[str, object]] = json.loads(done.stdout)
    return listed


def drop(wh: Warehouse, table: str) -> None:
    sql = f'DROP TABLE "{wh.schema}".{table}'
    if wh.kind == "duckdb":
        with duckdb.connect(str(wh.root / "wh.duckdb")) as con:
            con.execute(sql)
    else:
        with psycopg.connect(DSN, autocommit=True) as pg:
            pg.execute(sql)  # type: ignore[arg-type]


def test_a_deleted_store_takes_over_above_the_destinations_runs(wh: Warehouse) -> None:
    wh.source(ITEMS)
    wh.streams({"items": {"mode": "incremental", "cursor": "updated_at"}})
    for _ in range(3):
        assert wh.sync()[0] == 0
    shutil.rmtree(wh.root / ".syncline")  # an ephemeral store: a container, a CI job
    wh.source("INSERT INTO items VALUES (21, 'v21', '2026-01-01 00:01:00');")
    code, out = wh.sync()
    assert code == 0, out
    assert "the metadata store had no record of this connection's runs up to fencing token 3" in out
    [run] = runs(wh)
    assert run["id"] == 4 and run["status"] == "succeeded"  # no id the destination has seen
    assert wh.query("SELECT count(*), count(DISTINCT id) FROM {s}.items") == [(21, 21)]
    loads = wh.query("SELECT run_id, count(*) FROM {s}._syncline_loads GROUP BY run_id ORDER BY run_id")
    assert [r for r, _ in loads] == [1, 2, 3, 4]
    code, out = wh.sync()  # and the new store goes on by itself
    assert code == 0 and "no record" not in out, out


def test_a_new_metadata_store_url_takes_over_too(wh: Warehouse) -> None:
    wh.source(ITEMS)
    wh.streams({"items": {"mode": "incremental", "cursor": "updated_at"}})
    assert wh.sync()[0] == 0
    text = (wh.root / "syncline.yaml").read_text()
    other = f"sqlite:///{wh.root / 'other.db'}"
    (wh.root / "syncline.yaml").write_text(text.replace("version: 1", f"version: 1\nmetadata: {other}"))
    code, out = wh.sync()
    assert code == 0, out
    assert [r["id"] for r in runs(wh)] == [2]


def test_a_run_killed_while_creating_the_system_tables_leaves_a_destination_the_next_run_completes(
        wh: Warehouse) -> None:
    wh.source(ITEMS)
    wh.streams({"items": {"mode": "incremental", "cursor": "updated_at"}})
    assert wh.sync()[0] == 0
    # what a kill between two of the first run's CREATE TABLEs left behind: no fencing table
    drop(wh, "_syncline_fence")
    wh.source("INSERT INTO items VALUES (21, 'v21', '2026-01-01 00:01:00');")
    code, out = wh.sync()
    assert code == 0, out
    assert wh.query("SELECT count(*), count(DISTINCT id) FROM {s}.items") == [(21, 21)]
    assert wh.query("SELECT count(*) FROM {s}._syncline_fence") == [(1,)]
