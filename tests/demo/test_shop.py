"""Tests of the deterministic sample shop database."""

from __future__ import annotations

import inspect
import json
import re
import shutil
import sqlite3
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from syncline.demo.shop import TABLES, ShopStats, generate_shop, update_shop
from syncline.sources.base import SourceContext
from syncline.sources.sqlite import SqliteConfig, SqliteSource
from syncline.stream import BadRecord, ReadRequest

ORDERS = 2000
NAIVE = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{6}$")
AWARE = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{6}\+00:00$")


def dump(path: Path) -> dict[str, list[tuple[Any, ...]]]:
    con = sqlite3.connect(path)
    try:
        return {t: con.execute(f"SELECT * FROM {t} ORDER BY id").fetchall() for t in TABLES}
    finally:
        con.close()


def column(path: Path, sql: str) -> list[Any]:
    con = sqlite3.connect(path)
    try:
        return [r[0] for r in con.execute(sql)]
    finally:
        con.close()


@pytest.fixture(scope="module")
def shop(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("shop") / "shop.db"
    generate_shop(path, orders=ORDERS)
    return path


def test_same_seed_gives_identical_rows_and_another_seed_does_not(
    shop: Path, tmp_path: Path
) -> None:
    again, other = tmp_path / "again.db", tmp_path / "other.db"
    generate_shop(again, orders=ORDERS)
    generate_shop(other, orders=ORDERS, seed=99)
    assert dump(again) == dump(shop)
    assert dump(other)["orders"] != dump(shop)["orders"]


def test_default_size_is_at_least_100k_orders() -> None:
    assert inspect.signature(generate_shop).parameters["orders"].default >= 100_000


def test_row_counts_match_stats_and_spec(shop: Path, tmp_path: Path) -> None:
    stats = generate_shop(tmp_path / "s.db", orders=ORDERS)
    assert stats == ShopStats({t: len(rows) for t, rows in dump(shop).items()})
    assert stats.rows["customers"] == ORDERS // 10
    assert stats.rows["products"] == 500
    assert stats.rows["orders"] == ORDERS
    per_order = column(shop, "SELECT count(*) FROM orders o LEFT JOIN order_items i "
                             "ON i.order_id = o.id GROUP BY o.id")
    assert len(per_order) == ORDERS and min(per_order) == 1 and max(per_order) == 5
    assert sum(per_order) == stats.rows["order_items"]


def test_generate_replaces_an_existing_database(tmp_path: Path) -> None:
    path, fresh = tmp_path / "shop.db", tmp_path / "fresh.db"
    generate_shop(path, orders=300, seed=1)
    # An old database with an un-checkpointed write still in its WAL.
    con = sqlite3.connect(path)
    con.execute("PRAGMA wal_autocheckpoint = 0")
    con.execute("INSERT INTO products (id, sku, name, price) VALUES (9999, 'x', 'stale', 1)")
    con.commit()
    stale = (tmp_path / "shop.db-wal").read_bytes()
    con.close()
    (tmp_path / "shop.db-wal").write_bytes(stale)
    stats = generate_shop(path, orders=100)
    generate_shop(fresh, orders=100)
    assert stats.rows["orders"] == 100
    assert dump(path) == dump(fresh)
    assert column(path, "PRAGMA journal_mode") == ["wal"]


def test_schema_types_and_indexes(shop: Path) -> None:
    declared = {(t, name): kind for t in TABLES for name, kind in zip(
        column(shop, f"SELECT name FROM pragma_table_info('{t}')"),
        column(shop, f"SELECT type FROM pragma_table_info('{t}')"))}
    assert declared[("orders", "total")] == "DECIMAL(12,2)"
    assert declared[("orders", "discount")] == "DECIMAL(5,4)"
    assert declared[("orders", "placed_at")] == "TIMESTAMPTZ"
    assert declared[("orders", "updated_at")] == "TIMESTAMP"
    assert declared[("products", "attributes")] == "JSON"
    assert declared[("products", "weight_kg")] == "DOUBLE"
    assert declared[("customers", "marketing_opt_in")] == "BOOLEAN"
    assert declared[("customers", "signup_date")] == "DATE"
    sqls = column(shop, "SELECT sql FROM sqlite_master WHERE type = 'index' AND sql IS NOT NULL")
    assert any("orders (updated_at, id)" in s and "order_items" not in s for s in sqls)
    assert any("order_items (updated_at, id)" in s for s in sqls)


def test_nulls_non_ascii_and_json(shop: Path) -> None:
    notes = column(shop, "SELECT note FROM orders")
    assert 0.6 < notes.count(None) / len(notes) < 0.8
    discounts = column(shop, "SELECT discount FROM orders")
    assert 0.4 < discounts.count(None) / len(discounts) < 0.6
    for sql in ("SELECT city FROM customers", "SELECT weight_kg FROM products",
                "SELECT attributes FROM products", "SELECT shipping_address FROM orders"):
        values = column(shop, sql)
        assert None in values and any(v is not None for v in values), sql
    names = column(shop, "SELECT full_name FROM customers WHERE full_name IS NOT NULL")
    assert any(not n.isascii() for n in names) and any(n.isascii() for n in names)
    assert {"São Paulo", "Kraków", "東京"} <= set(column(shop, "SELECT city FROM customers"))
    assert any(n and any(ord(ch) > 0xFFFF for ch in n) for n in notes)  # an emoji
    for sql in ("SELECT attributes FROM products", "SELECT shipping_address FROM orders"):
        texts = [v for v in column(shop, sql) if v is not None]
        assert all(isinstance(json.loads(v), dict) for v in texts)
        assert any(not v.isascii() for v in texts)  # ensure_ascii=False kept it readable


def test_decimals_and_timestamps_have_declared_shape(shop: Path) -> None:
    for sql, places in (("SELECT total FROM orders", 2), ("SELECT unit_price FROM order_items", 2),
                        ("SELECT price FROM products", 2), ("SELECT discount FROM orders", 4)):
        for v in column(shop, sql):
            if v is not None:
                d = Decimal(repr(v))
                assert d == d.quantize(Decimal(1).scaleb(-places)), (sql, v)
    for t in TABLES:
        assert all(NAIVE.match(v) for v in column(shop, f"SELECT updated_at FROM {t}")), t
    assert all(AWARE.match(v) for v in column(shop, "SELECT placed_at FROM orders"))
    assert all(AWARE.match(v) for v in column(shop, "SELECT created_at FROM customers"))


def test_orders_updated_at_has_ties(shop: Path) -> None:
    tied = column(shop, "SELECT count(*) FROM orders GROUP BY updated_at HAVING count(*) > 1")
    assert sum(tied) > ORDERS // 10


def test_update_moves_exactly_changed_orders_forward_and_adds_new_ones(shop: Path,
                                                                       tmp_path: Path) -> None:
    path = tmp_path / "shop.db"
    shutil.copy(shop, path)
    before = dump(path)
    old_max = {t: max(r[-1] for r in rows) for t, rows in before.items()}
    old_orders = {r[0]: r for r in before["orders"]}
    stats = update_shop(path, changed_orders=400, new_orders=40)
    after = dump(path)
    changed = [r for r in after["orders"] if r[0] in old_orders and r[-1] != old_orders[r[0]][-1]]
    assert len(changed) == 400
    assert all(r[-1] > old_max["orders"] for r in changed)
    added = [r for r in after["orders"] if r[0] not in old_orders]
    assert len(added) == 40 and stats.rows["orders"] == ORDERS + 40
    assert all(r[-1] > old_max["orders"] for r in added)
    new_items = after["order_items"][len(before["order_items"]):]
    assert {r[1] for r in new_items} == {r[0] for r in added}
    for t in TABLES:  # every table has new or changed rows, all stamped after its old max
        old = set(before[t])
        fresh = [r for r in after[t] if r not in old]
        assert fresh and all(r[-1] > old_max[t] for r in fresh), t


def test_update_is_deterministic_for_its_seed(shop: Path, tmp_path: Path) -> None:
    a, b, c = (tmp_path / f"{n}.db" for n in "abc")
    for p in (a, b, c):
        shutil.copy(shop, p)
    update_shop(a, changed_orders=50, new_orders=20)
    update_shop(b, changed_orders=50, new_orders=20)
    update_shop(c, changed_orders=50, new_orders=20, seed=9)
    assert dump(a) == dump(b)
    assert dump(a) != dump(c)


def test_update_refuses_more_changes_than_orders(shop: Path, tmp_path: Path) -> None:
    path = tmp_path / "shop.db"
    shutil.copy(shop, path)
    with pytest.raises(ValueError, match=f"only {ORDERS} exist"):
        update_shop(path, changed_orders=ORDERS + 1)
    assert dump(path) == dump(shop)  # rolled back: nothing half-applied


def test_sqlite_source_reads_every_table_without_bad_records(shop: Path) -> None:
    source = SqliteSource("shop", SqliteConfig(type="sqlite", path=str(shop), tables=None),
                          SourceContext(root=str(shop.parent)))
    streams = {s.name: s for s in source.discover()}
    kinds = {c.name: c.type.kind for c in streams["orders"].columns}
    assert kinds["total"] == "decimal" and kinds["placed_at"] == "timestamptz"
    assert kinds["updated_at"] == "timestamp" and kinds["shipping_address"] == "json"
    for name, stream in streams.items():
        items = list(source.read(ReadRequest(stream, "full_refresh", primary_key=("id",))))
        assert not [i for i in items if isinstance(i, BadRecord)], name
        assert sum(i.num_rows for i in items if hasattr(i, "num_rows")) == len(dump(shop)[name])
