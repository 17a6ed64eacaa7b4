"""`write: history` keeps every version of a row: an update closes the version before it at
the new one's source time, a delete closes it without a successor, the same values seen again
add nothing, and every key has at most one current version with no gaps or overlaps."""

from __future__ import annotations

import datetime as dt
from typing import Any

from typer.testing import CliRunner

import syncline.cli.app as cli

from warehouse import Warehouse

VERSIONS = ("SELECT id, v, _syncline_valid_from, _syncline_valid_to, _syncline_is_current, "
            "_syncline_deleted FROM {s}.items ORDER BY id, _syncline_valid_from, _syncline_is_current")


def versions(wh: Warehouse) -> dict[int, list[tuple[Any, ...]]]:
    """Each key's versions, oldest first, after checking the promise of a history table."""
    out: dict[int, list[tuple[Any, ...]]] = {}
    for row in wh.query(VERSIONS):
        out.setdefault(row[0], []).append(row[1:])
    for key, rows in out.items():
        assert sum(1 for r in rows if r[3]) <= 1, f"key {key}: more than one current version"
        for older, newer in zip(rows, rows[1:], strict=False):
            assert not older[3], f"key {key}: a current version is not the newest"
            if older[4]:  # closed by a delete: the key may come back later
                assert older[2] is not None and newer[1] >= older[2], f"key {key}: overlap"
            else:
                assert older[2] == newer[1], f"key {key}: gap or overlap {older} → {newer}"
        last = rows[-1]
        assert (last[2] is None) == last[3], f"key {key}: the current version is open-ended"
    return out


def current(wh: Warehouse) -> dict[int, str]:
    return {k: rows[-1][0] for k, rows in versions(wh).items() if rows[-1][3]}


def test_incremental_history_keeps_each_version_at_its_source_time(wh: Warehouse) -> None:
    wh.source("CREATE TABLE items (id INTEGER PRIMARY KEY, v TEXT, updated_at TIMESTAMP NOT NULL);"
              "INSERT INTO items VALUES (1, 'a', '2026-01-01 10:00:00'), (2, 'b', '2026-01-01 11:00:00'),"
              " (3, 'c', '2026-01-01 12:00:00');")
    wh.streams({"items": {"mode": "incremental", "cursor": "updated_at", "write": "history"}})
    code, out = wh.sync()
    assert code == 0, out
    assert current(wh) == {1: "a", 2: "b", 3: "c"}
    wh.source("UPDATE items SET v = 'b2', updated_at = '2026-01-02 09:30:00' WHERE id = 2;")
    code, out = wh.sync()
    assert code == 0, out
    rows = versions(wh)
    assert [r[0] for r in rows[2]] == ["b", "b2"]
    at = dt.datetime(2026, 1, 2, 9, 30, tzinfo=dt.UTC)
    assert rows[2][0][2] == at and rows[2][1][1] == at  # closed at the update's source time
    assert rows[2][0][1] == dt.datetime(2026, 1, 1, 11, tzinfo=dt.UTC)
    assert len(rows[1]) == len(rows[3]) == 1
    # the rows at the checkpoint's cursor value are read again, and nothing changed: no version
    code, out = wh.sync()
    assert code == 0, out
    assert wh.query("SELECT count(*) FROM {s}.items") == [(4,)]
    assert current(wh) == {1: "a", 2: "b2", 3: "c"}


def test_full_refresh_history_closes_changed_and_deleted_keys(wh: Warehouse) -> None:
    wh.source("CREATE TABLE items (id INTEGER PRIMARY KEY, v TEXT);"
              "INSERT INTO items VALUES (1, 'a'), (2, 'b'), (3, 'c'), (4, 'd');")
    wh.streams({"items": {"mode": "full_refresh", "write": "history"}})
    code, out = wh.sync()
    assert code == 0, out
    wh.source("UPDATE items SET v = 'a2' WHERE id = 1; DELETE FROM items WHERE id = 3;")
    code, out = wh.sync()
    assert code == 0, out
    assert "full_refresh/history | 3 | 3 | 0 | 1 |" in " ".join(out.replace("│", "|").split())
    rows = versions(wh)
    assert current(wh) == {1: "a2", 2: "b", 4: "d"}
    assert [r[0] for r in rows[1]] == ["a", "a2"]
    assert rows[3] == [("c", rows[3][0][1], rows[3][0][2], False, True)]  # closed as deleted
    assert len(rows[2]) == len(rows[4]) == 1  # unchanged: nothing added
    wh.source("INSERT INTO items VALUES (3, 'c-again');")
    code, out = wh.sync()
    assert code == 0, out
    assert [r[0] for r in versions(wh)[3]] == ["c", "c-again"]
    assert current(wh) == {1: "a2", 2: "b", 3: "c-again", 4: "d"}
    verified = CliRunner().invoke(cli.app, ["verify", "c", "--workspace", str(wh.root), "--json"])
    assert verified.exit_code == 0, verified.output  # the current versions match the source


def test_a_forced_refresh_of_a_history_stream_keeps_its_versions(wh: Warehouse) -> None:
    wh.source("CREATE TABLE items (id INTEGER PRIMARY KEY, v TEXT, updated_at TIMESTAMP NOT NULL);"
              "INSERT INTO items VALUES (1, 'a', '2026-01-01'), (2, 'b', '2026-01-01');")
    wh.streams({"items": {"mode": "incremental", "cursor": "updated_at", "write": "history"}})
    assert wh.sync()[0] == 0
    wh.source("UPDATE items SET v = 'a2', updated_at = '2026-01-03' WHERE id = 1;"
              "DELETE FROM items WHERE id = 2;")
    code, out = wh.sync("--full-refresh")
    assert code == 0, out
    rows = versions(wh)
    assert [r[0] for r in rows[1]] == ["a", "a2"] and rows[2][-1][3:] == (False, True)


def test_switching_to_and_from_history(wh: Warehouse) -> None:
    wh.source("CREATE TABLE items (id INTEGER PRIMARY KEY, v TEXT);"
              "INSERT INTO items VALUES (1, 'a'), (2, 'b');")
    wh.streams({"items": {"mode": "full_refresh", "write": "merge"}})
    assert wh.sync()[0] == 0
    wh.streams({"items": {"mode": "full_refresh", "write": "history"}})
    code, out = wh.sync()  # a merge table holds no versions: rebuilt as a history table
    assert code == 0, out
    assert current(wh) == {1: "a", 2: "b"}
    wh.streams({"items": {"mode": "full_refresh", "write": "merge"}})
    code, out = wh.sync()
    assert code != 0 and "--full-refresh" in out  # the versions would be lost: refused
    assert len(versions(wh)) == 2


def test_history_needs_a_key(wh: Warehouse) -> None:
    wh.source("CREATE TABLE items (id INTEGER, v TEXT); INSERT INTO items VALUES (1, 'a');")
    wh.streams({"items": {"mode": "full_refresh", "write": "history"}})
    code, out = wh.sync()
    assert code == 2 and "write: history needs a primary key" in out, out
