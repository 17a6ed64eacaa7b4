"""`deletes: reconcile`: an incremental stream marks the keys gone from its source every
`reconcile_every` runs (a cursor read never sees a delete), keeping their last values."""

from __future__ import annotations

from typing import Any

from warehouse import Warehouse


def loaded(wh: Warehouse, write: str = "merge", every: int = 2, rows: int = 10) -> None:
    values = ", ".join(f"({i}, 'v{i}', '2026-01-01 00:00:{i:02d}')" for i in range(1, rows + 1))
    wh.source("CREATE TABLE items (id INTEGER PRIMARY KEY, v TEXT, updated_at TEXT NOT NULL);"
              f"INSERT INTO items VALUES {values};")
    wh.streams({"items": {"mode": "incremental", "cursor": "updated_at", "write": write,
                          "deletes": "reconcile", "reconcile_every": every}})
    code, out = wh.sync()
    assert code == 0, out


def deleted(wh: Warehouse) -> list[tuple[Any, ...]]:
    return wh.query("SELECT id, v FROM {s}.items WHERE _syncline_deleted ORDER BY id")


def test_keys_gone_from_the_source_are_marked_every_n_runs(wh: Warehouse) -> None:
    loaded(wh)
    wh.source("DELETE FROM items WHERE id IN (3, 7);"
              "INSERT INTO items VALUES (11, 'v11', '2026-01-02 00:00:00');")
    code, out = wh.sync()  # the second run: reconciles
    assert code == 0, out
    assert deleted(wh) == [(3, "v3"), (7, "v7")]  # with their last values
    # read again: the checkpoint's row and row 11; deleted: 2
    assert "| 2 | 2 | 0 | 2 |" in out.replace("│", "|"), out
    wh.source("DELETE FROM items WHERE id = 5;")
    code, out = wh.sync()  # the third: not due
    assert code == 0, out
    assert [i for i, _ in deleted(wh)] == [3, 7]
    code, out = wh.sync()  # the fourth: due again
    assert code == 0, out
    assert [i for i, _ in deleted(wh)] == [3, 5, 7]
    assert wh.query("SELECT count(*) FROM {s}.items WHERE NOT _syncline_deleted") == [(8,)]
    wh.source("INSERT INTO items VALUES (5, 'back', '2026-01-03 00:00:00');")
    code, out = wh.sync()  # a key that comes back is live again
    assert code == 0, out
    assert [i for i, _ in deleted(wh)] == [3, 7]


def test_history_closes_the_current_version_of_a_key_gone(wh: Warehouse) -> None:
    loaded(wh, write="history", every=1)
    wh.source("DELETE FROM items WHERE id = 4;")
    code, out = wh.sync()
    assert code == 0, out
    assert wh.query("SELECT v, _syncline_is_current, _syncline_valid_to IS NOT NULL, _syncline_deleted "
                    "FROM {s}.items WHERE id = 4") == [("v4", False, True, True)]
    assert wh.query("SELECT count(*) FROM {s}.items WHERE _syncline_is_current") == [(9,)]


def test_a_source_that_lost_most_keys_is_not_a_mass_delete(wh: Warehouse) -> None:
    loaded(wh, every=1)
    wh.source("DELETE FROM items WHERE id > 0;")
    code, out = wh.sync()
    assert code == 1 and "no longer has 10 of the 10 keys" in out and "--allow-empty" in out, out
    assert deleted(wh) == []
    code, out = wh.sync("--allow-empty")
    assert code == 0, out
    assert len(deleted(wh)) == 10


def test_reconcile_is_refused_where_it_has_no_meaning(wh: Warehouse) -> None:
    wh.source("CREATE TABLE items (id INTEGER PRIMARY KEY, v TEXT); INSERT INTO items VALUES (1, 'a');")
    wh.streams({"items": {"mode": "full_refresh", "write": "merge", "deletes": "reconcile"}})
    code, out = wh.sync()
    assert code == 2 and "deletes: reconcile is for incremental streams" in out, out
