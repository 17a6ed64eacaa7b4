"""A key of two columns: merge updates the row with both parts equal, never a row that shares
one part, and a merge refresh soft-deletes exactly the pair the source lost."""

from __future__ import annotations

from warehouse import Warehouse

ROWS = ("CREATE TABLE lines (order_id INTEGER, line INTEGER, qty INTEGER, updated_at TIMESTAMP, "
        "PRIMARY KEY (order_id, line));"
        "INSERT INTO lines VALUES (1, 1, 10, '2026-01-01'), (1, 2, 20, '2026-01-01'),"
        " (2, 1, 30, '2026-01-01');")


def _lines(wh: Warehouse) -> list[tuple[object, ...]]:
    return wh.query('SELECT order_id, line, qty, "_syncline_deleted" FROM {s}.lines ORDER BY 1, 2')


def test_an_incremental_merge_on_a_two_column_key_updates_only_the_matching_pair(wh: Warehouse) -> None:
    wh.source(ROWS)
    wh.streams({"lines": {"mode": "incremental", "write": "merge", "cursor": "updated_at"}})
    assert wh.sync()[0] == 0
    wh.source("UPDATE lines SET qty = 21, updated_at = '2026-01-02' WHERE order_id = 1 AND line = 2;"
              "INSERT INTO lines VALUES (2, 2, 40, '2026-01-02');")
    assert wh.sync()[0] == 0
    assert _lines(wh) == [(1, 1, 10, False), (1, 2, 21, False), (2, 1, 30, False), (2, 2, 40, False)]


def test_a_merge_refresh_on_a_two_column_key_soft_deletes_only_the_lost_pair(wh: Warehouse) -> None:
    wh.source(ROWS)
    wh.streams({"lines": {"mode": "full_refresh", "write": "merge"}})
    assert wh.sync()[0] == 0
    wh.source("DELETE FROM lines WHERE order_id = 1 AND line = 2; UPDATE lines SET qty = 31 "
              "WHERE order_id = 2;")
    code, output = wh.sync()
    assert code == 0, output
    assert _lines(wh) == [(1, 1, 10, False), (1, 2, 20, True), (2, 1, 31, False)]
