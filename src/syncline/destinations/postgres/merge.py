"""A merge into a PostgreSQL table: the newest staged version of each key goes in, unless the
table's row is newer by the cursor; every key is counted as written or kept."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import psycopg
from psycopg import sql

from syncline.destinations.base import SYNCED_AT, LoadTarget, Written
from syncline.errors import IntegrityError
from syncline.schema import DataType


@dataclass(frozen=True)
class Merge:
    """The statements of one table's merges and appends."""

    con: psycopg.Connection[Any]
    table: sql.Identifier
    target: LoadTarget
    #: the columns a row is written with (the stream's, then `_syncline_deleted`)
    names: list[str]
    #: the table's columns, those the stream no longer has included
    columns: dict[str, DataType]
    where: dict[str, Any]

    def _cols(self, alias: str | None = None) -> sql.Composable:
        return sql.SQL(", ").join(
            sql.Identifier(alias, n) if alias else sql.Identifier(n) for n in self.names)

    def insert_from(self, source: sql.Composable) -> sql.Composed:
        return sql.SQL("INSERT INTO {} AS t ({}) SELECT {} FROM {} s").format(
            self.table, self._cols(), self._cols("s"), source)

    def _newer(self, incoming: str) -> sql.Composable:
        """True where the destination's row is newer than the incoming one: it is kept."""
        if not self.target.cursor or self.target.source_wins:
            return sql.SQL("false")
        return sql.SQL("coalesce(t.{0} > {1}.{0}, false)").format(
            sql.Identifier(self.target.cursor), sql.SQL(incoming))

    def append(self, stage: sql.Composable, staged: int) -> Written:
        inserted = self.con.execute(self.insert_from(stage)).rowcount
        if inserted != staged:
            raise IntegrityError(f"staged {staged} rows but inserted {inserted}", **self.where)
        return Written(inserted, 0, inserted)

    def merge(self, stage: str, seq: str, staged: int, upsert: bool) -> Written:
        """The staged rows (`pg_temp.<stage>`, ordered by `seq`) merged by the key; with
        `upsert`, through the unique index on it (ON CONFLICT)."""
        con = self.con
        pk = [sql.Identifier(k) for k in self.target.primary_key]
        on = sql.SQL(" AND ").join(sql.SQL("t.{0} = s.{0}").format(k) for k in pk)
        latest = sql.Identifier("_syncline_latest")
        unique = con.execute(sql.SQL(
            "CREATE TEMP TABLE {} ON COMMIT DROP AS SELECT DISTINCT ON ({}) * FROM pg_temp.{} "
            "ORDER BY {}, {} DESC").format(latest, sql.SQL(", ").join(pk), sql.Identifier(stage),
                                           sql.SQL(", ").join(pk), sql.Identifier(seq))).rowcount
        source = sql.SQL("pg_temp.{}").format(latest)
        if upsert:
            written, added = self._upsert(source, pk)
            kept = 0
            if written != unique:  # the join costs a scan of the table: only when rows were skipped
                row = con.execute(sql.SQL("SELECT count(*) FROM {} s JOIN {} t ON {} WHERE {}").format(
                    source, self.table, on, self._newer("s"))).fetchone()
                kept = int(row[0]) if row else 0
        else:  # no unique index on the key: delete what is replaced, insert what is missing
            deleted = con.execute(sql.SQL("DELETE FROM {} t USING {} s WHERE {} AND NOT {}").format(
                self.table, source, on, self._newer("s"))).rowcount
            row = con.execute(sql.SQL("SELECT count(*) FROM {} s JOIN {} t ON {}").format(
                source, self.table, on)).fetchone()
            kept = int(row[0]) if row else 0
            written = con.execute(sql.SQL("{} WHERE NOT EXISTS (SELECT 1 FROM {} t WHERE {})").format(
                self.insert_from(source), self.table, on)).rowcount
            added = written - deleted
        if written + kept != unique:
            raise IntegrityError(f"merge of {unique} keys wrote {written} and kept {kept} newer rows",
                                 **self.where)
        # skipped: superseded within the batch by a later version of their key, or older than
        # the row the destination already has
        return Written(written, staged - written, added)

    def _upsert(self, source: sql.Composable, pk: list[sql.Identifier]) -> tuple[int, int]:
        """INSERT ... ON CONFLICT: (rows inserted or updated, rows inserted). A column the
        source no longer has is NULL in the updated row, as in a new one (and as DuckDB's
        merge leaves it)."""
        dropped = [n for n in self.columns if n not in (*self.names, SYNCED_AT)]
        sets = sql.SQL(", ").join([
            *(sql.SQL("{0} = excluded.{0}").format(sql.Identifier(n)) for n in [*self.names, SYNCED_AT]),
            *(sql.SQL("{} = NULL").format(sql.Identifier(n)) for n in dropped)])
        row = self.con.execute(sql.SQL(
            "WITH w AS ({} ON CONFLICT ({}) DO UPDATE SET {} WHERE NOT {} RETURNING (xmax = 0) AS fresh) "
            "SELECT count(*), count(*) FILTER (WHERE fresh) FROM w").format(
            self.insert_from(source), sql.SQL(", ").join(pk), sets,
            self._newer("excluded"))).fetchone()
        return (int(row[0]), int(row[1])) if row else (0, 0)
