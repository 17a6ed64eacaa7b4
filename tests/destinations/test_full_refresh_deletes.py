"""A full refresh reads the whole source table: under `write: merge` a row it does not find
stays in the table with `_syncline_deleted = true`; under `write: replace` it is gone."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

import syncline.cli.app as cli

from warehouse import Warehouse


def loaded(wh: Warehouse, streams: dict[str, object]) -> None:
    values = ", ".join(f"({i}, 'v{i}', '2026-01-0{1 + i % 9}')" for i in range(1, 21))
    wh.source(f"CREATE TABLE items (id INTEGER PRIMARY KEY, v TEXT, updated_at TEXT NOT NULL);"
              f"INSERT INTO items VALUES {values};")
    wh.streams(streams)
    code, out = wh.sync()
    assert code == 0, out


def deleted_ids(wh: Warehouse) -> list[int]:
    return [i for (i,) in wh.query("SELECT id FROM {s}.items WHERE _syncline_deleted ORDER BY id")]


@pytest.mark.parametrize("streams", [
    {"items": {"mode": "full_refresh", "write": "merge"}},
    {"items": {"mode": "incremental", "write": "merge", "cursor": "updated_at"}},
], ids=["scheduled", "forced"])
def test_a_merge_refresh_keeps_rows_the_source_deleted_as_soft_deleted(
        wh: Warehouse, streams: dict[str, object]) -> None:
    loaded(wh, streams)
    wh.source("DELETE FROM items WHERE id IN (2, 5); UPDATE items SET v = 'new' WHERE id = 9;")
    forced = ("--full-refresh",) if streams["items"]["mode"] == "incremental" else ()  # type: ignore[index]
    code, out = wh.sync(*forced)
    assert code == 0, out
    assert deleted_ids(wh) == [2, 5]
    assert wh.query("SELECT v FROM {s}.items WHERE id IN (2, 5) ORDER BY id") == [("v2",), ("v5",)]
    assert wh.query("SELECT count(*) FROM {s}.items WHERE NOT _syncline_deleted") == [(18,)]
    assert wh.query("SELECT v FROM {s}.items WHERE id = 9") == [("new",)]
    assert wh.query("SELECT count(*) FROM {s}.items") == [(20,)]
    mode = streams["items"]["mode"]  # type: ignore[index]
    # the run summary: 18 read and committed, 0 quarantined, 2 deleted; a forced one says so
    shown = f"{mode}/merge" + (" (full refresh)" if forced else "")
    assert f"{shown} | 18 | 18 | 0 | 2 |" in " ".join(out.replace("│", "|").split())
    verified = CliRunner().invoke(cli.app, ["verify", "c", "--workspace", str(wh.root), "--json"])
    assert verified.exit_code == 0, verified.output  # soft-deleted rows count as absent


def test_a_replace_refresh_removes_rows_the_source_deleted(wh: Warehouse) -> None:
    loaded(wh, {"items": {"mode": "full_refresh", "write": "replace"}})
    wh.source("DELETE FROM items WHERE id IN (2, 5);")
    code, out = wh.sync()
    assert code == 0, out
    assert wh.query("SELECT count(*) FROM {s}.items WHERE id IN (2, 5)") == [(0,)]
    assert wh.query("SELECT count(*) FROM {s}.items") == [(18,)]


def test_a_key_with_several_appended_versions_is_kept_once_with_its_newest_values(
        wh: Warehouse) -> None:
    loaded(wh, {"items": {"mode": "incremental", "write": "append", "cursor": "updated_at"}})
    wh.source("UPDATE items SET v = 'v2-newest', updated_at = '2026-02-01' WHERE id = 2;")
    code, out = wh.sync()
    assert code == 0, out
    assert wh.query("SELECT count(*) FROM {s}.items WHERE id = 2") == [(2,)]  # both versions
    wh.source("DELETE FROM items WHERE id = 2;")
    wh.streams({"items": {"mode": "full_refresh", "write": "merge"}})
    code, out = wh.sync()
    assert code != 0 and "--full-refresh" in out  # refused: the table holds history
    code, out = wh.sync("--full-refresh")  # the fix it names
    assert code == 0, out
    assert wh.query("SELECT v, _syncline_deleted FROM {s}.items WHERE id = 2") == [
        ("v2-newest", True)]
    assert wh.query("SELECT count(*), count(DISTINCT id) FROM {s}.items") == [(20, 20)]
