"""Schema evolution, the same on every destination: columns added and widened in place, a
change no type can hold refused with a contract error until `--full-refresh` rebuilds the
table, a dropped column kept, and a history table evolving with its versions."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

from syncfixtures import rebuild_t
from warehouse import Warehouse

#: the column types each destination gives the widened columns
WIDENED = {
    "duckdb": {"code": "VARCHAR", "amount": "DECIMAL(", "seen": "TIMESTAMP WITH TIME ZONE"},
    "postgres": {"code": "text", "amount": "numeric", "seen": "timestamp with time zone"},
}


def test_columns_are_added_and_widened_in_place(wh: Warehouse) -> None:
    wh.source("CREATE TABLE t (id INTEGER PRIMARY KEY, code INTEGER, amount INTEGER, seen TIMESTAMP, "
              "updated_at TIMESTAMP); INSERT INTO t VALUES (1, 10, 7, '2026-01-01 10:00:00', "
              "'2026-01-01 00:00:00');")
    wh.streams({"t": {"mode": "incremental", "cursor": "updated_at"}})
    assert wh.sync()[0] == 0
    rebuild_t(wh.root / "src.db", "CREATE TABLE t (id INTEGER PRIMARY KEY, code TEXT, amount DECIMAL(6,2), seen TIMESTAMPTZ, "
                "extra DECIMAL(6,2), updated_at TIMESTAMP)", "id, code, amount, seen, NULL, updated_at",
            "(2, 'B-20', 2.5, '2026-01-02 10:00:00+02:00', 1.5, '2026-01-02 00:00:00')")
    code, out = wh.sync()
    assert code == 0, out
    rows = wh.query("SELECT id, code, amount, seen, extra FROM {s}.t ORDER BY id")
    assert [(i, c, a, s.astimezone(dt.UTC), e) for i, c, a, s, e in rows] == [
        (1, "10", Decimal("7.00"), dt.datetime(2026, 1, 1, 10, tzinfo=dt.UTC), None),
        (2, "B-20", Decimal("2.50"), dt.datetime(2026, 1, 2, 8, tzinfo=dt.UTC), Decimal("1.50")),
    ]
    types = wh.column_types()
    for column, wanted in WIDENED[wh.kind].items():
        assert types[column].startswith(wanted), (column, types[column])
    changes = wh.last_changes()
    assert any("widened" in c for c in changes) and any("extra" in c for c in changes), changes


def test_a_type_no_column_can_hold_is_refused_until_a_full_refresh(wh: Warehouse) -> None:
    wh.source("CREATE TABLE t (id INTEGER PRIMARY KEY, seen TIMESTAMP, updated_at TIMESTAMP); "
              "INSERT INTO t VALUES (1, '2026-01-01 00:00:00', '2026-01-01 00:00:00');")
    wh.streams({"t": {"mode": "incremental", "cursor": "updated_at"}})
    assert wh.sync()[0] == 0
    rebuild_t(wh.root / "src.db", "CREATE TABLE t (id INTEGER PRIMARY KEY, seen BOOLEAN, updated_at TIMESTAMP)",
            "id, 1, updated_at", "(2, 0, '2026-01-02 00:00:00')")
    code, out = wh.sync()
    assert code == 1 and "contract" in out and "column seen changed timestamp -> boolean" in out, out
    assert "--full-refresh" in out
    assert wh.query("SELECT id FROM {s}.t") == [(1,)]  # the table as it was
    code, out = wh.sync("--full-refresh")  # the fix it names: rebuilt with the new type
    assert code == 0, out
    assert wh.query("SELECT id, seen FROM {s}.t ORDER BY id") == [(1, True), (2, False)]


def test_a_dropped_column_is_kept_and_null_in_rows_read_after(wh: Warehouse) -> None:
    wh.source("CREATE TABLE t (id INTEGER PRIMARY KEY, b TEXT, updated_at TIMESTAMP); "
              "INSERT INTO t VALUES (1, 'kept', '2026-01-01 00:00:00'), (2, 'read again', "
              "'2026-01-01 12:00:00');")
    wh.streams({"t": {"mode": "incremental", "cursor": "updated_at"}})
    assert wh.sync()[0] == 0
    rebuild_t(wh.root / "src.db", "CREATE TABLE t (id INTEGER PRIMARY KEY, updated_at TIMESTAMP)", "id, updated_at",
            "(3, '2026-01-02 00:00:00')")
    code, out = wh.sync()
    assert code == 0, out
    # row 2 sits at the checkpoint's cursor value, so it is read again: as the source has it now
    assert wh.query("SELECT id, b FROM {s}.t ORDER BY id") == [(1, "kept"), (2, None), (3, None)]
    assert "dropped column b (kept in table t, NULL in new rows)" in wh.last_changes()


def test_a_history_table_gains_a_column_without_a_version_per_row(wh: Warehouse) -> None:
    wh.source("CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT, updated_at TIMESTAMP); "
              "INSERT INTO t VALUES (1, 'a', '2026-01-01 00:00:00'), (2, 'b', '2026-01-01 00:00:00');")
    wh.streams({"t": {"mode": "incremental", "cursor": "updated_at", "write": "history"}})
    assert wh.sync()[0] == 0
    rebuild_t(wh.root / "src.db", "CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT, note TEXT, updated_at TIMESTAMP)",
            "id, v, NULL, updated_at", "(3, 'c', 'new', '2026-01-02 00:00:00')")
    code, out = wh.sync()  # every row read again to fill the new column: NULL, so no new version
    assert code == 0, out
    assert wh.query("SELECT id, note, _syncline_is_current FROM {s}.t ORDER BY id") == [
        (1, None, True), (2, None, True), (3, "new", True)]
    assert any("note" in c for c in wh.last_changes())
