"""A DuckDB table built beside the one it replaces: the rows a merge's snapshot lacks, kept."""

from __future__ import annotations

import duckdb

from syncline.destinations.base import DELETED, SYNCED_AT
from syncline.destinations.duckdb.types import qi


def keep_missing(con: duckdb.DuckDBPyConnection, build: str, final: str, names: list[str],
                 primary_key: tuple[str, ...]) -> int:
    """Rows of the old table whose key the snapshot lacks: into the build, soft-deleted.
    Returns how many keys were live until now."""
    values = [
        "true" if n == DELETED
        else f"CASE WHEN t.{DELETED} THEN t.{SYNCED_AT} ELSE now() END" if n == SYNCED_AT
        else f"t.{qi(n)}"
        for n in names
    ]
    pk = [qi(k) for k in primary_key]
    on = " AND ".join(f"b.{k} = t.{k}" for k in pk)
    missing = f"FROM {final} t WHERE NOT EXISTS (SELECT 1 FROM {build} b WHERE {on})"
    newly = con.execute(
        f"SELECT count(DISTINCT ({', '.join('t.' + k for k in pk)})) {missing} "
        f"AND t.{DELETED} IS NOT TRUE").fetchall()[0][0]
    # an old append table may hold several versions of a key: keep its newest
    con.execute(
        f"INSERT INTO {build} ({', '.join(qi(n) for n in names)}) "
        f"SELECT {', '.join(values)} {missing} "
        f"QUALIFY row_number() OVER (PARTITION BY {', '.join('t.' + k for k in pk)} "
        f"ORDER BY t.{SYNCED_AT} DESC) = 1")
    return int(newly)
