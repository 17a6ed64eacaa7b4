"""Deterministic sample SQLite "shop" database: customers, products, orders and order items."""

from __future__ import annotations

import datetime as dt
import json
import random
import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

BASE = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
TABLES = ("customers", "products", "orders", "order_items")
PRODUCTS = 500
_CHUNK = 20_000

SCHEMA = """
CREATE TABLE customers (id INTEGER PRIMARY KEY, email TEXT NOT NULL, full_name TEXT,
  country TEXT, city TEXT, marketing_opt_in BOOLEAN, signup_date DATE, created_at TIMESTAMPTZ,
  updated_at TIMESTAMP);
CREATE TABLE products (id INTEGER PRIMARY KEY, sku TEXT NOT NULL, name TEXT NOT NULL,
  category TEXT, price DECIMAL(10,2) NOT NULL, weight_kg DOUBLE, attributes JSON, active BOOLEAN,
  updated_at TIMESTAMP);
CREATE TABLE orders (id INTEGER PRIMARY KEY, customer_id INTEGER NOT NULL, status TEXT NOT NULL,
  currency TEXT, total DECIMAL(12,2), discount DECIMAL(5,4), note TEXT, shipping_address JSON,
  placed_at TIMESTAMPTZ NOT NULL, updated_at TIMESTAMP NOT NULL);
CREATE TABLE order_items (id INTEGER PRIMARY KEY, order_id INTEGER NOT NULL,
  product_id INTEGER NOT NULL, quantity INTEGER NOT NULL, unit_price DECIMAL(10,2) NOT NULL,
  updated_at TIMESTAMP NOT NULL);
"""
INDEXES = ("CREATE INDEX orders_updated_at_id ON orders (updated_at, id)",
           "CREATE INDEX order_items_updated_at_id ON order_items (updated_at, id)")

# (display, ascii) so emails stay plain ASCII while names do not.
_FIRST = (("Zoë", "zoe"), ("José", "jose"), ("Łukasz", "lukasz"), ("Siobhán", "siobhan"),
          ("Björn", "bjorn"), ("Chloé", "chloe"), ("Ana", "ana"), ("Mei", "mei"),
          ("Olivia", "olivia"), ("Noah", "noah"), ("Jürgen", "jurgen"), ("太郎", "taro"))
_LAST = (("Ångström", "angstrom"), ("Núñez", "nunez"), ("Żółć", "zolc"), ("Müller", "muller"),
         ("Dubois", "dubois"), ("Conceição", "conceicao"), ("山田", "yamada"), ("Smith", "smith"),
         ("O'Brien", "obrien"), ("Nguyễn", "nguyen"), ("García", "garcia"))
_PLACES = (("BR", "São Paulo", "BRL"), ("PL", "Kraków", "PLN"), ("JP", "東京", "JPY"),
           ("DE", "München", "EUR"), ("CH", "Zürich", "CHF"), ("SE", "Malmö", "SEK"),
           ("GR", "Αθήνα", "EUR"), ("TR", "İstanbul", "TRY"), ("ES", "Córdoba", "EUR"),
           ("US", "New York", "USD"), ("GB", "London", "GBP"), ("FR", "Paris", "EUR"))
_STREETS = ("Rua Augusta", "ul. Floriańska", "銀座通り", "Hauptstraße", "Main St", "Calle Mayor")
# Empty string, quotes and a newline are here on purpose: they trip up naive CSV/escaping code.
_NOTES = ("Leave at the door 🚪", "Gift wrap, please 🎁", "Call before delivery ☎️",
          "Fragile — handle with care", "Bitte beim Nachbarn abgeben", "置き配を希望します", "",
          'He said "ring twice"', "Line one\nline two", "Ça va? Merci! 🙏")
_CATEGORIES = ("kitchen", "garden", "books", "toys", "apparel", "électronique")
_ADJECTIVES = ("Classic", "Crème", "Nordic", "Über", "Tiny", "Smart", "Rustic")
_NOUNS = ("Mug", "Lamp", "Kettle", "Café Table", "Notebook", "Backpack", "Kimono 着物", "Scarf")
_COLORS = ("red", "black", "bleu ciel", "grün", "白")
_QTY = (1, 1, 1, 1, 1, 2, 2, 3, 4, 10)
_DISCOUNT_BP = (500, 750, 1000, 1234, 1500, 2000, 2500)  # basis points of 1.0000
_NEXT_STATUS = {"pending": ("paid", "cancelled"), "paid": ("shipped", "refunded"),
                "shipped": ("delivered",), "delivered": ("refunded",),
                "cancelled": ("cancelled",), "refunded": ("refunded",)}

Row = tuple[object, ...]
T = TypeVar("T")


@dataclass(frozen=True)
class ShopStats:
    """Row counts per table after generating or updating a shop database."""

    rows: dict[str, int]


def _pick(rng: random.Random, seq: Sequence[T]) -> T:
    # Cheaper than rng.choice, which matters at ~2 million picks per 100k orders.
    return seq[int(rng.random() * len(seq))]


def _money(cents: int) -> str:
    # Same text as str(Decimal(cents).scaleb(-2)), without the Decimal cost per row.
    return f"{cents // 100}.{cents % 100:02d}"


def _ts(t: dt.datetime) -> str:
    """Aware ISO text; slicing off the last 6 characters gives the naive UTC form."""
    return t.isoformat(" ", "microseconds")


def _address(rng: random.Random, place: tuple[str, str, str]) -> str:
    return json.dumps({"line1": f"{_pick(rng, _STREETS)} {1 + int(rng.random() * 200)}",
                       "city": place[1], "postal_code": f"{10000 + int(rng.random() * 90000)}",
                       "country": place[0]}, ensure_ascii=False)


def _customer(rng: random.Random, cid: int, place: tuple[str, str, str], created: dt.datetime,
              updated: dt.datetime) -> Row:
    (first, first_ascii), (last, last_ascii) = _pick(rng, _FIRST), _pick(rng, _LAST)
    country, city, _ = place
    r = rng.random()
    opt_in = None if r < 0.1 else int(r < 0.55)
    return (cid, f"{first_ascii}.{last_ascii}{cid}@example.com",
            None if rng.random() < 0.03 else f"{first} {last}", country,
            None if rng.random() < 0.1 else city, opt_in, created.date().isoformat(),
            _ts(created), _ts(updated)[:-6])


def _product(rng: random.Random, pid: int, updated: dt.datetime) -> tuple[Row, int]:
    """A product row and its price in cents."""
    name = f"{_pick(rng, _ADJECTIVES)} {_pick(rng, _NOUNS)}"
    weight = None if rng.random() < 0.1 else round(0.05 + rng.random() * 20, 3)
    attributes = None if rng.random() < 0.2 else json.dumps(
        {"color": _pick(rng, _COLORS), "size": _pick(rng, ("S", "M", "L", "XL")),
         "tags": sorted(rng.sample(("new", "eco", "bestseller", "límited", "🔥"), 2))},
        ensure_ascii=False)
    price = 199 + int(rng.random() * 49_800)
    return (pid, f"SKU-{pid:05d}", name, _pick(rng, _CATEGORIES), _money(price), weight,
            attributes, int(rng.random() < 0.9), _ts(updated)[:-6]), price


def _order(rng: random.Random, oid: int, item_id: int, customer_id: int, status: str,
           placed: str, updated: str, address: str | None, currency: str,
           prices: Sequence[tuple[int, int]]) -> tuple[Row, list[Row]]:
    """One order with its items; `placed` is aware text, `updated` naive text."""
    rnd = rng.random
    items: list[Row] = []
    subtotal = 0
    n_prices, n_qty = len(prices), len(_QTY)
    for k in range(1 + int(rnd() * 5)):
        # _pick inlined: this loop runs ~300k times and the calls were a tenth of the time.
        pid, cents = prices[int(rnd() * n_prices)]
        if rnd() < 0.1:
            cents = cents * 9 // 10  # sale price, still whole cents
        qty = _QTY[int(rnd() * n_qty)]
        subtotal += cents * qty
        # Items are written with the order, so they share its placement time: more ties.
        items.append((item_id + k, oid, pid, qty, _money(cents), placed[:-6]))
    discount = None
    if rnd() >= 0.5:
        bp = _pick(rng, _DISCOUNT_BP)
        discount = f"0.{bp:04d}"
        subtotal = (subtotal * (10_000 - bp) + 5_000) // 10_000
    note = None if rnd() < 0.7 else _pick(rng, _NOTES)
    return (oid, customer_id, status, currency, _money(subtotal), discount, note, address,
            placed, updated), items


def _status_by_age(rng: random.Random, age_days: float) -> str:
    r = rng.random()
    if age_days < 2:
        return "pending" if r < 0.6 else "paid"
    if age_days < 10:
        return "paid" if r < 0.3 else "shipped" if r < 0.9 else "cancelled"
    return "delivered" if r < 0.85 else "cancelled" if r < 0.93 else "refunded" if r < 0.98 \
        else "shipped"


def _stats(con: sqlite3.Connection) -> ShopStats:
    return ShopStats({t: int(con.execute(f"SELECT count(*) FROM {t}").fetchone()[0])
                      for t in TABLES})


def _insert(con: sqlite3.Connection, table: str, rows: list[Row]) -> None:
    if rows:
        marks = ", ".join("?" * len(rows[0]))
        con.executemany(f"INSERT INTO {table} VALUES ({marks})", rows)
        rows.clear()


def generate_shop(path: Path, *, orders: int = 100_000, seed: int = 7) -> ShopStats:
    """Write a fresh shop database at `path` (replacing any), identical for the same seed."""
    path = Path(path)
    for p in (path, path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm")):
        p.unlink(missing_ok=True)
    path.parent.mkdir(parents=True, exist_ok=True)
    rng = random.Random(seed)
    rnd = rng.random
    # Autocommit mode so the PRAGMAs and our explicit BEGIN/COMMIT do exactly what they say.
    con = sqlite3.connect(path, isolation_level=None)
    try:
        con.execute("PRAGMA journal_mode = WAL")
        # A half-written demo file is worthless anyway, so durability is not worth the fsyncs.
        con.execute("PRAGMA synchronous = OFF")
        con.executescript(SCHEMA)
        con.execute("BEGIN")
        day = dt.timedelta(days=1)
        n_customers = max(1, orders // 10)
        # Customers sign up over the two years before the first possible order.
        first_signup, signup_span = BASE - 3 * 365 * day, 2 * 365 * 86_400_000_000
        signups = sorted(int(rnd() * signup_span) for _ in range(n_customers))
        rows: list[Row] = []
        addresses: list[tuple[str, str]] = []
        for cid, offset in enumerate(signups, 1):
            created = first_signup + dt.timedelta(microseconds=offset)
            updated = min(created + dt.timedelta(days=rnd() * 600), BASE - day)
            place = _pick(rng, _PLACES)
            rows.append(_customer(rng, cid, place, created, updated))
            addresses.append((_address(rng, place), place[2]))
        _insert(con, "customers", rows)
        prices: list[tuple[int, int]] = []
        for pid in range(1, PRODUCTS + 1):
            row, cents = _product(rng, pid, BASE - dt.timedelta(seconds=int(rnd() * 90 * 86_400)))
            rows.append(row)
            prices.append((pid, cents))
        _insert(con, "products", rows)
        # Sorted placement times so ids grow with time, as in a real auto-increment table.
        span = 365 * 86_400_000_000
        placed_offsets = sorted(int(rnd() * span) for _ in range(orders))
        start = BASE - 365 * day
        items: list[Row] = []
        item_id = 1
        for oid, offset in enumerate(placed_offsets, 1):
            placed = start + dt.timedelta(microseconds=offset)
            status = _status_by_age(rng, (span - offset) / 86_400_000_000)
            updated = placed
            if status != "pending":
                updated = placed + dt.timedelta(microseconds=int(rnd() * 10 * 86_400_000_000))
                if status in ("shipped", "delivered") and rnd() < 0.5:
                    # The nightly fulfilment job stamps whole batches with one time: the ties
                    # that make a compound (updated_at, id) cursor necessary.
                    updated = updated.replace(hour=2, minute=0, second=0, microsecond=0) + day
                if updated >= BASE:
                    updated = placed
            customer_id = 1 + int(rnd() * n_customers)
            address: str | None
            address, currency = addresses[customer_id - 1]
            if rnd() < 0.1:
                place = _pick(rng, _PLACES)
                address, currency = _address(rng, place), place[2]
            elif rnd() < 0.05:
                address = None  # digital goods: nothing to ship
            order, new_items = _order(rng, oid, item_id, customer_id, status, _ts(placed),
                                      _ts(updated)[:-6], address, currency, prices)
            rows.append(order)
            items.extend(new_items)
            item_id += len(new_items)
            if len(items) >= _CHUNK:
                _insert(con, "orders", rows)
                _insert(con, "order_items", items)
        _insert(con, "orders", rows)
        _insert(con, "order_items", items)
        for ddl in INDEXES:  # after the rows: one sort beats 400k B-tree inserts
            con.execute(ddl)  # not executescript: it would commit the transaction first
        con.execute("COMMIT")
        return _stats(con)
    finally:
        con.close()


def update_shop(path: Path, *, changed_orders: int = 1000, new_orders: int = 500,
                seed: int = 8) -> ShopStats:
    """Simulate business activity after the latest `updated_at`, deterministic for the seed.

    Changes status (and sometimes the amount) of `changed_orders` existing orders, places
    `new_orders` orders with items, signs up a few customers and reprices a few products.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no shop database at {path}")
    rng = random.Random(seed)
    rnd = rng.random
    con = sqlite3.connect(path, isolation_level=None)
    try:
        con.execute("BEGIN IMMEDIATE")
        latest = max((con.execute(f"SELECT max(updated_at) FROM {t}").fetchone()[0] or "")
                     for t in TABLES)
        # Every new stamp is later than any existing one, so incremental syncs must see it.
        now = (dt.datetime.fromisoformat(latest).replace(tzinfo=dt.UTC) if latest else BASE) \
            + dt.timedelta(seconds=1)

        def tick() -> dt.datetime:
            nonlocal now
            if rnd() >= 0.3:  # otherwise reuse the last stamp: ties among the changes too
                now += dt.timedelta(microseconds=1 + int(rnd() * 2_000_000))
            return now

        old = con.execute("SELECT id, status, total, discount FROM orders ORDER BY id").fetchall()
        if changed_orders > len(old):
            raise ValueError(f"cannot change {changed_orders} orders: only {len(old)} exist")
        max_customer = int(con.execute("SELECT coalesce(max(id), 0) FROM customers").fetchone()[0])
        new_customers = max(1, new_orders // 50) if new_orders else 0
        rows: list[Row] = []
        for cid in range(max_customer + 1, max_customer + 1 + new_customers):
            t = tick()
            rows.append(_customer(rng, cid, _pick(rng, _PLACES), t, t))
        _insert(con, "customers", rows)
        max_customer += new_customers
        updates: list[Row] = []
        for oid, status, total, discount in rng.sample(old, changed_orders):
            nexts = _NEXT_STATUS.get(status, ("paid",))
            status = _pick(rng, nexts)
            if discount is None and total is not None and rnd() < 0.15:
                # Goodwill discount after the fact: the amount changes, not only the status.
                bp = _pick(rng, _DISCOUNT_BP)
                cents = (round(float(total) * 100) * (10_000 - bp) + 5_000) // 10_000
                total, discount = _money(cents), f"0.{bp:04d}"
            updates.append((status, total, discount, _ts(tick())[:-6], oid))
        con.executemany("UPDATE orders SET status = ?, total = ?, discount = ?, updated_at = ? "
                        "WHERE id = ?", updates)
        cents_by_id = {int(pid): round(float(price) * 100) for pid, price in
                       con.execute("SELECT id, price FROM products ORDER BY id")}
        repriced = rng.sample(sorted(cents_by_id), min(len(cents_by_id), changed_orders // 200))
        for pid in repriced:  # -10% .. +10%, and new orders below already pay the new price
            cents_by_id[pid] = max(1, cents_by_id[pid] * (90 + int(rnd() * 21)) // 100)
        con.executemany("UPDATE products SET price = ?, updated_at = ? WHERE id = ?",
                        [(_money(cents_by_id[pid]), _ts(tick())[:-6], pid) for pid in repriced])
        prices = list(cents_by_id.items()) or [(1, 100)]
        next_order = 1 + int(con.execute("SELECT coalesce(max(id), 0) FROM orders").fetchone()[0])
        item_id = 1 + int(
            con.execute("SELECT coalesce(max(id), 0) FROM order_items").fetchone()[0])
        items: list[Row] = []
        for oid in range(next_order, next_order + new_orders):
            placed = _ts(tick())
            place = _pick(rng, _PLACES)
            order, new_items = _order(rng, oid, item_id, 1 + int(rnd() * max(1, max_customer)),
                                      "pending" if rnd() < 0.7 else "paid", placed, placed[:-6],
                                      _address(rng, place), place[2], prices)
            rows.append(order)
            items.extend(new_items)
            item_id += len(new_items)
        _insert(con, "orders", rows)
        _insert(con, "order_items", items)
        con.execute("COMMIT")
        return _stats(con)
    finally:  # closing without COMMIT rolls back: a failed update leaves the file untouched
        con.close()
