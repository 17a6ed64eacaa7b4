"""A full refresh under merge counts each row it soft-deletes once, and stamps it when it
first goes missing: the first refresh deletes nothing, a row already deleted keeps its time."""

from __future__ import annotations

from syncline.config import load_workspace
from syncline.engine.run import Runner
from syncline.store.store import MetadataStore

from warehouse import Warehouse


def deleted_now(wh: Warehouse) -> int:
    """Run the sync; the rows it soft-deleted."""
    ws = load_workspace(wh.root)
    store = MetadataStore(ws.metadata_url())
    try:
        result = Runner(ws, store).sync("c")
    finally:
        store.close()
    assert result.status == "succeeded", result.error
    return result.streams[0].rows_deleted


def synced_at(wh: Warehouse, key: int) -> object:
    return wh.query(f"SELECT _syncline_synced_at FROM {{s}}.items WHERE id = {key}")[0][0]


def test_a_merge_refresh_counts_and_stamps_each_soft_deleted_row_once(wh: Warehouse) -> None:
    wh.source("CREATE TABLE items (id INTEGER PRIMARY KEY, v TEXT);"
              "INSERT INTO items VALUES (1, 'a'), (2, 'b'), (3, 'c');")
    wh.streams({"items": {"mode": "full_refresh", "write": "merge"}})
    assert deleted_now(wh) == 0  # the first refresh: there was no table to delete from
    loaded = synced_at(wh, 3)
    wh.source("DELETE FROM items WHERE id = 3;")
    assert deleted_now(wh) == 1
    gone = synced_at(wh, 3)
    assert gone is not None and gone > loaded  # type: ignore[operator]
    assert deleted_now(wh) == 0  # still missing: not deleted again
    assert synced_at(wh, 3) == gone
    assert wh.query("SELECT id, v, _syncline_deleted FROM {s}.items ORDER BY id") == [
        (1, "a", False), (2, "b", False), (3, "c", True)]
