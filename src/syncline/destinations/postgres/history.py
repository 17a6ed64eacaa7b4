"""`write: history` on PostgreSQL: the history table, running the shared statements, and the
keys a reconciliation marks."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import psycopg
import pyarrow as pa
from psycopg import sql

from syncline.destinations.base import DELETED, IS_CURRENT, SYNCED_AT, LoadTarget
from syncline.destinations.history import HistorySQL, Steps, history_columns
from syncline.destinations.postgres.types import pg_type
from syncline.schema import Column, DataType


def quoted(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def statements(con: psycopg.Connection[Any], table: sql.Identifier, target: LoadTarget,
               columns: dict[str, DataType], seq: str, changed_at: str) -> HistorySQL:
    """The shared history statements for ``table``, in PostgreSQL's types."""
    return HistorySQL(
        table=table.as_string(con), columns=[(c.name, columns[c.name]) for c in target.stream.columns],
        keys=target.primary_key, cursor=target.cursor, source_wins=target.source_wins,
        quote=quoted, type_of=lambda t: pg_type(t).as_string(con), text="text", seq=seq,
        changed_at=changed_at, read_at="now()")


def run(con: psycopg.Connection[Any], steps: Steps, *params: Any) -> tuple[int, list[int], int]:
    """(changes that count, versions closed by each close statement, versions added)."""
    for text in steps.prepare:
        con.execute(sql.SQL(text))
    row = con.execute(sql.SQL(steps.counted)).fetchone()
    counted = int(row[0]) if row else 0
    closed = [con.execute(sql.SQL(text), list(params) if "%s" in text else None).rowcount
              for text in steps.close]
    added = con.execute(sql.SQL(steps.insert)).rowcount
    for text in steps.cleanup:
        con.execute(sql.SQL(text))
    return counted, closed, added


def create(con: psycopg.Connection[Any], schema: str, name: str, columns: Sequence[Column],
           primary_key: Sequence[str]) -> None:
    """A history table: the columns, the version columns, and at most one current version per
    key (a unique index on the key of the current versions, which also serves lookups)."""
    table = sql.Identifier(schema, name)
    cols = [sql.SQL("{} {}").format(sql.Identifier(c.name), pg_type(c.type))
            for c in [*columns, *history_columns()]]
    con.execute(sql.SQL("CREATE TABLE {} ({})").format(table, sql.SQL(", ").join(cols)))
    for column, default in ((SYNCED_AT, "now()"), (DELETED, "false")):
        con.execute(sql.SQL("ALTER TABLE {} ALTER COLUMN {} SET DEFAULT {}").format(
            table, sql.Identifier(column), sql.SQL(default)))
    index = name.encode()[:50].decode(errors="ignore") + "_current"
    con.execute(sql.SQL("CREATE UNIQUE INDEX {} ON {} ({}) WHERE {}").format(
        sql.Identifier(index), table, sql.SQL(", ").join(map(sql.Identifier, primary_key)),
        sql.Identifier(IS_CURRENT)))


def stage_keys(con: psycopg.Connection[Any], name: str, keys: pa.Table,
               types: dict[str, DataType]) -> None:
    """``keys`` into a temporary table ``name`` dropped at the commit."""
    con.execute(sql.SQL("CREATE TEMP TABLE {} ({}) ON COMMIT DROP").format(
        sql.Identifier(name), sql.SQL(", ").join(
            sql.SQL("{} {}").format(sql.Identifier(k), pg_type(t)) for k, t in types.items())))
    with con.cursor() as cur, cur.copy(sql.SQL("COPY pg_temp.{} FROM STDIN").format(
            sql.Identifier(name))) as copy:
        for row in keys.to_pylist():
            copy.write_row(tuple(row[k] for k in types))
