"""Workspace files written by `syncline init` and `syncline init --demo`."""

from __future__ import annotations

from pathlib import Path

from syncline.config import WORKSPACE_FILE
from syncline.errors import ConfigurationError

EMPTY_WORKSPACE = """\
# Syncline workspace. Reference: docs/configuration.md
version: 1
sources: {}
#  shop:
#    type: sqlite
#    path: data/shop.db
destinations: {}
#  warehouse:
#    type: duckdb
#    path: warehouse.duckdb
connections: {}
#  shop_to_warehouse:
#    source: shop
#    destination: warehouse
#    schedule: every 1h
# Tell people (docs/alerts.md): where, and what
# channels:
#   ops-hook: {type: webhook, url: "https://ops.example.com/syncline", secret: "${env:HOOK_SECRET}"}
# alerts:
#   connection-down: {notify: [ops-hook]}
# digest: {at: ["08:00", "20:00"], notify: [ops-hook]}
"""

DEMO_WORKSPACE = """\
# Syncline demo workspace: a generated shop database and a folder of CSV drops,
# replicated into one DuckDB file. Reference: docs/configuration.md
version: 1
sources:
  shop:
    type: sqlite
    path: data/shop.db
  drops:
    type: files
    path: inbox/*.csv
destinations:
  warehouse:
    type: duckdb
    path: warehouse.duckdb
connections:
  shop_to_warehouse:
    source: shop
    destination: warehouse
    destination_schema: shop
    schedule: every 1h
    streams:
      orders:
        mode: incremental
        write: merge
        cursor: updated_at
        primary_key: [id]
      order_items: {mode: incremental, write: merge, cursor: updated_at}
      customers: {mode: full_refresh, write: replace}
      products: {mode: full_refresh, write: replace}
  drops_to_warehouse:
    source: drops
    destination: warehouse
    destination_schema: drops
    schedule: every 15m
# Tell people when a connection fails (docs/alerts.md): `syncline alerts` shows the rules,
# `syncline digest` the failing connections; add a channel to send them somewhere, e.g.
# channels:
#   ops-hook: {type: webhook, url: "https://ops.example.com/syncline", secret: "${env:HOOK_SECRET}"}
# alerts:
#   connection-down: {notify: [ops-hook]}
"""

DEMO_CSV = """\
sku,warehouse,quantity,counted_at
SKU-00001,Lisboa,12,2026-01-05 08:00:00
SKU-00002,Kraków,0,2026-01-05 08:00:00
SKU-00003,São Paulo,7,2026-01-05 08:05:00
"""


def write_workspace(root: Path, *, demo: bool, force: bool = False) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    file = root / WORKSPACE_FILE
    if file.exists() and not force:
        raise ConfigurationError(
            f"{file} already exists",
            fix="edit it, or choose another folder with --workspace",
        )
    file.write_text(DEMO_WORKSPACE if demo else EMPTY_WORKSPACE, encoding="utf-8")
    if demo:
        (root / "data").mkdir(exist_ok=True)
        inbox = root / "inbox"
        inbox.mkdir(exist_ok=True)
        sample = inbox / "stock_2026-01-05.csv"
        if not sample.exists():
            sample.write_text(DEMO_CSV, encoding="utf-8")
    return file
