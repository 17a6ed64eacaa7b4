"""A stream whose write, key or cursor changed never silently duplicates rows: its table is
rebuilt by a full refresh (said so in the output), or, when it holds history only it has,
the run is refused with the command that rebuilds it."""

from __future__ import annotations

from warehouse import Warehouse

ITEMS = ("CREATE TABLE items (id INTEGER, region TEXT, v TEXT, updated_at INTEGER NOT NULL, "
         "PRIMARY KEY (id, region));"
         "INSERT INTO items VALUES (1, 'a', 'x', 1), (1, 'b', 'y', 2), (2, 'a', 'z', 3);")
REBUILT = "so the table is rebuilt by a full refresh"


def rows(wh: Warehouse) -> list[tuple[object, ...]]:
    return wh.query("SELECT id, region, v FROM {s}.items ORDER BY id, region, v")


def synced(wh: Warehouse, *args: str) -> str:
    code, out = wh.sync(*args)
    assert code == 0, out
    return out


def test_append_after_replace_rebuilds_the_table_then_appends_only_new_rows(wh: Warehouse) -> None:
    wh.source(ITEMS)
    wh.streams({"items": {"mode": "full_refresh", "write": "replace"}})
    synced(wh)
    wh.streams({"items": {"mode": "incremental", "write": "append", "cursor": "updated_at"}})
    out = synced(wh)
    assert "write: replace built the table and write: append would add every row again" in out
    assert REBUILT in out
    assert rows(wh) == [(1, "a", "x"), (1, "b", "y"), (2, "a", "z")]
    wh.source("INSERT INTO items VALUES (3, 'a', 'new', 4);")
    assert REBUILT not in synced(wh)
    assert len(rows(wh)) == 4


def test_a_new_key_under_merge_rebuilds_the_table(wh: Warehouse) -> None:
    wh.source(ITEMS)
    merge = {"mode": "incremental", "write": "merge", "cursor": "updated_at"}
    wh.streams({"items": {**merge, "primary_key": ["id", "region"]}})
    synced(wh)
    wh.streams({"items": {**merge, "primary_key": ["region", "id"]}})
    out = synced(wh)
    assert "merged on primary key (id, region) and is now merged on (region, id)" in out and REBUILT in out
    assert rows(wh) == [(1, "a", "x"), (1, "b", "y"), (2, "a", "z")]
    # a key that is not unique is refused before anything is committed, not collapsed
    wh.streams({"items": {**merge, "primary_key": ["id"]}})
    code, out = wh.sync()
    assert code == 1 and "the primary key (id) is not unique" in out
    assert rows(wh) == [(1, "a", "x"), (1, "b", "y"), (2, "a", "z")]


def test_a_new_cursor_under_merge_rebuilds_the_table(wh: Warehouse) -> None:
    wh.source(ITEMS)
    wh.streams({"items": {"mode": "incremental", "write": "merge", "cursor": "updated_at"}})
    synced(wh)
    wh.streams({"items": {"mode": "incremental", "write": "merge", "cursor": "id"}})
    out = synced(wh)
    assert "read by cursor updated_at and is now read by cursor id" in out and REBUILT in out
    assert len(rows(wh)) == 3


def test_a_change_to_an_append_table_is_refused_until_a_full_refresh(wh: Warehouse) -> None:
    wh.source(ITEMS)
    wh.streams({"items": {"mode": "incremental", "write": "append", "cursor": "updated_at"}})
    synced(wh)
    wh.source("UPDATE items SET v = 'x2', updated_at = 5 WHERE id = 1 AND region = 'a';")
    synced(wh)
    history = rows(wh)
    assert len(history) == 4
    wh.streams({"items": {"mode": "incremental", "write": "append", "cursor": "id"}})
    code, out = wh.sync()
    assert code == 2, out
    assert "read by cursor updated_at and is now read by cursor id" in out
    assert "would lose the history only the table holds" in out
    assert "`syncline sync c --stream items --full-refresh`" in out
    assert rows(wh) == history
    out = synced(wh, "--full-refresh")
    assert rows(wh) == [(1, "a", "x2"), (1, "b", "y"), (2, "a", "z")]
    synced(wh)  # the table now belongs to the new settings
    assert len(rows(wh)) == 3
