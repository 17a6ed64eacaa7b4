"""A full refresh built beside the live table: what the build carries over from the old one."""

from __future__ import annotations

from typing import Any

import psycopg
from psycopg import sql

from syncline.destinations.base import DELETED, SYNCED_AT


def keep_missing(con: psycopg.Connection[Any], build: sql.Identifier, final: sql.Identifier,
                 names: list[str], primary_key: tuple[str, ...]) -> int:
    """Rows of the old table whose key the snapshot lacks: into the build, soft-deleted.
    Returns how many keys were live until now."""
    d, at = sql.Identifier("t", DELETED), sql.Identifier("t", SYNCED_AT)
    values = [
        sql.SQL("true") if n == DELETED
        else sql.SQL("CASE WHEN {} THEN {} ELSE now() END").format(d, at) if n == SYNCED_AT
        else sql.Identifier("t", n)
        for n in names
    ]
    pk = [sql.Identifier("t", k) for k in primary_key]
    on = sql.SQL(" AND ").join(
        sql.SQL("{} = {}").format(sql.Identifier("b", k), sql.Identifier("t", k))
        for k in primary_key)
    missing = sql.SQL("FROM {final} t WHERE NOT EXISTS (SELECT 1 FROM {build} b WHERE {on})"
                      ).format(final=final, build=build, on=on)
    row = con.execute(sql.SQL(
        "SELECT count(DISTINCT ({pk})) {missing} AND {d} IS NOT TRUE"
    ).format(pk=sql.SQL(", ").join(pk), missing=missing, d=d)).fetchone()
    # an old append table may hold several versions of a key: keep its newest
    con.execute(sql.SQL(
        "INSERT INTO {build} ({cols}) SELECT DISTINCT ON ({pk}) {values} {missing} "
        "ORDER BY {pk}, {at} DESC"
    ).format(build=build, cols=sql.SQL(", ").join(map(sql.Identifier, names)),
             pk=sql.SQL(", ").join(pk), values=sql.SQL(", ").join(values), missing=missing,
             at=at))
    return int(row[0]) if row else 0
