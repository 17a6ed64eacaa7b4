"""Reading one MySQL/MariaDB table in a snapshot: by key (full refresh) or by compound cursor (incremental)."""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import pymysql
import pymysql.converters
import pymysql.cursors
from pymysql.connections import Connection

from syncline.errors import (
    ConfigurationError,
    RepeatedKeys,
    TransientError,
)
from syncline.failpoints import failpoint
from syncline.schema import StreamSchema
from syncline.sources.cursor_position import Position
from syncline.sources.late_commits import TEMPORAL, future_notice
from syncline.sources.mysql.types import (
    decode_position,
    encode_position,
    position_expr,
    q,
    row_checksum,
    select_expr,
    text_to_batch,
)
from syncline.stream import Checkpoint, ReadRequest, StreamItem


def close_quietly(con: Connection) -> None:
    """Close without draining an unfinished streaming result (as cursor.close() would),
    and without hiding the error that brought us here."""
    try:
        con.close()
    except pymysql.MySQLError:
        pass
    # An error raised mid-stream keeps the cursor alive in its traceback; when it is freed,
    # pymysql would drain the abandoned result over the closed socket (an AttributeError
    # printed as "Exception ignored"): mark that result finished instead.
    result = getattr(con, "_result", None)
    if result is not None and getattr(result, "unbuffered_active", False):
        result.unbuffered_active = False


@dataclass
class Prefix:
    """The rows of a full refresh read so far: how many, and the sum of their checksums."""

    rows: int = 0
    total: int = 0

    @staticmethod
    def of(checkpoint: dict[str, Any] | None) -> Prefix | None:
        """From the start, or from a checkpoint that carries the prefix (None: one that does not)."""
        if not checkpoint:
            return Prefix()
        if "prefix_rows" not in checkpoint:
            return None
        return Prefix(int(checkpoint["prefix_rows"]), int(checkpoint["prefix_sum"]))

    def add(self, rows: int, total: int) -> None:
        self.rows += rows
        self.total += total

    def fingerprint(self, keys: list[str], after: list[Any]) -> str:
        return f"prefix:{self.rows}:{self.total}:{json.dumps([keys, after])}"


def prefix_changed(con: Connection, table: str, stream: StreamSchema, fingerprint: str) -> bool:
    """Whether the rows up to a `Prefix` fingerprint's position differ now (in count or
    checksum) from those the read had read there."""
    _, _, rest = fingerprint.partition(":")
    rows, total, position = rest.split(":", 2)
    keys, values = json.loads(position)
    cols = [stream.column(k) for k in keys]
    bound = [decode_position(v, c.native_type if c else None) for v, c in zip(values, cols)]
    key_cols = ", ".join(q(k) for k in keys)
    marks = ", ".join(["%s"] * len(keys))
    with con.cursor() as cur:
        cur.execute(f"SELECT COUNT(*), COALESCE(SUM({row_checksum(stream)}), 0) FROM {table} "
                    f"WHERE {q(keys[0])} <= %s AND ({key_cols}) <= ({marks})", [bound[0], *bound])
        row = cur.fetchone()
    return row is None or (int(row[0]), int(row[1])) != (int(rows), int(total))


@dataclass
class TableReader:
    con: Connection
    req: ReadRequest
    table: str
    #: incremental reads take cursor values below this only (the late-commit horizon)
    limit: str | None = None

    def items(self) -> Iterator[StreamItem]:
        req, stream = self.req, self.req.stream
        keys = list(req.primary_key)
        if req.mode == "incremental" and not req.cursor:
            raise ConfigurationError("incremental mode needs a cursor", stream=stream.name)
        positions = [req.cursor or "", *keys] if req.mode == "incremental" else keys
        checkpoint = req.checkpoint or None
        if checkpoint and checkpoint.get("columns", positions) != positions:
            raise ConfigurationError(
                f"the checkpoint is a position in columns {checkpoint.get('columns')}, but the "
                f"stream is now read by {positions}", stream=stream.name,
                fix="reset the stream's state with `syncline state <connection> --reset "
                f"{stream.name}` to read it again from the start")
        if req.mode == "incremental":
            yield from self._incremental(req.cursor or "", keys, checkpoint)
        elif keys:
            yield from self._by_key(keys, checkpoint)
        elif not (checkpoint or {}).get("complete"):
            # no key to resume by: one pass, and one checkpoint when it is whole
            for _first, _last, items in self._batches(self._select([]), []):
                yield from items
            yield Checkpoint({"complete": True, "columns": []})

    def future_rows(self, future: str) -> Iterator[StreamItem]:
        """Rows dated past `future` (the source's clock plus `max_cursor_skew`), in the read's
        snapshot: counted in a notice, and under merge loaded with no checkpoint after them."""
        req = self.req
        assert req.cursor is not None
        c = q(req.cursor)
        with self.con.cursor() as cur:
            cur.execute(f"SELECT COUNT(*) FROM {self.table} WHERE {c} > %s", [future])
            row = cur.fetchone()
        if not row or not int(row[0]):
            return
        yield future_notice(req.stream.name, int(row[0]), req.max_skew_s, req.inclusive)
        if req.inclusive:
            order = ", ".join(q(p) for p in [req.cursor, *req.primary_key])
            sql = f"{self._select([req.cursor, *req.primary_key])} WHERE {c} > %s ORDER BY {order}"
            for _first, _last, items in self._batches(sql, [future]):
                yield from items

    def _native(self, column: str) -> str | None:
        col = self.req.stream.column(column)
        return col.native_type if col else None

    def _select(self, positions: list[str], checksum: bool = False) -> str:
        exprs = [select_expr(c) for c in self.req.stream.columns]
        for name in positions:
            col = self.req.stream.column(name)
            exprs.append(position_expr(col) if col else q(name))
        if checksum:
            exprs.append(row_checksum(self.req.stream))
        return f"SELECT {', '.join(exprs)} FROM {self.table}"

    def _bind(self, column: str, value: Any) -> Any:
        return decode_position(value, self._native(column))

    def _encode(self, columns: list[str], values: Sequence[Any]) -> list[Any]:
        return [encode_position(v, self._native(c)) for c, v in zip(columns, values)]

    def _by_key(self, keys: list[str], checkpoint: dict[str, Any] | None) -> Iterator[StreamItem]:
        key_cols = ", ".join(q(k) for k in keys)
        where, params = "", []
        after = (checkpoint or {}).get("after")
        if after is not None:
            params = [self._bind(k, v) for k, v in zip(keys, after)]
            # the leading `k >= ` lets MariaDB range-scan: it does not for row constructors
            where = f"WHERE {q(keys[0])} >= %s AND ({key_cols}) > ({', '.join(['%s'] * len(keys))})"
            params = [params[0], *params]
        # the rows read so far, counted and checksummed in the read's snapshot: a resumed
        # build goes on only while the rows up to its position are still these (`Prefix`)
        prefix = Prefix.of(checkpoint)
        if prefix is not None and after is not None and prefix_changed(
                self.con, self.table, self.req.stream, prefix.fingerprint(keys, after)):
            # the engine checked before this read; a write may have landed since: in this
            # read's own snapshot, the rows before its position must still be those read
            raise TransientError(
                f"{self.req.stream.name} changed just before this resumed read began",
                stream=self.req.stream.name, fix="nothing to do: the next attempt sees the "
                "change and starts the build over")
        sql = f"{self._select(keys, checksum=prefix is not None)} {where} ORDER BY {key_cols}"
        self._check_key(where, params)
        for _first, last, items in self._batches(sql, params, prefix):
            yield from items
            after = self._encode(keys, last)
            value: dict[str, Any] = {"after": after, "columns": keys}
            if prefix is not None:
                value |= {"prefix_rows": prefix.rows, "prefix_sum": prefix.total,
                          "fingerprint": prefix.fingerprint(keys, after)}
            yield Checkpoint(value)

    def _incremental(self, cursor: str, keys: list[str], checkpoint: dict[str, Any] | None
                     ) -> Iterator[StreamItem]:
        c = q(cursor)
        with self.con.cursor() as cur:
            if self.limit is None:
                cur.execute(f"SELECT MAX({c}) FROM {self.table}", [])
            else:
                cur.execute(f"SELECT MAX({c}) FROM {self.table} WHERE {c} < %s", [self.limit])
            row = cur.fetchone()
        upper = row[0] if row else None
        found = self._where(cursor, keys, Position.of(checkpoint), upper)
        if found is None:
            return
        where, params = found
        self._check_key(where, params)
        order = ", ".join([c, *(q(k) for k in keys)])
        sql = f"{self._select([cursor, *keys])} {where} ORDER BY {order}"
        positions = [cursor, *keys]

        def mark(last: Sequence[Any]) -> Checkpoint:
            cursor_value, *key_values = self._encode(positions, last)
            value = {"cursor": cursor_value, "key": key_values, "columns": positions}
            if self.limit is not None:  # below the late-commit horizon: no row can take it any more
                value["closed"] = True
            return Checkpoint(value)

        if keys:
            for _first, last, items in self._batches(sql, params):
                yield from items
                yield mark(last)
            return
        # Without a key, a position is only safe once every row at its cursor value is
        # read: mark a batch boundary only where the cursor value changes.
        pending: Sequence[Any] | None = None
        for first, last, items in self._batches(sql, params):
            if pending is not None and first[0] != pending[0]:
                yield mark(pending)
            yield from items
            pending = last
        if pending is not None:
            yield mark(pending)

    def _where(self, cursor: str, keys: list[str], pos: Position | None, upper: Any
               ) -> tuple[str, list[Any]] | None:
        """The WHERE clause and parameters of an incremental read from `pos` up to `upper` (the
        newest cursor value below the late-commit horizon), or None when nothing is to read."""
        c, key_cols = q(cursor), [q(k) for k in keys]
        bound: list[Any] = [] if upper is None else [
            self._bind(cursor, encode_position(upper, self._native(cursor)))]
        if pos is None:  # the first read takes the rows whose cursor is NULL too
            if upper is None:
                return ("" if self.limit is None else f"WHERE {c} IS NULL"), []
            return f"WHERE ({c} IS NULL OR {c} <= %s)", bound
        after, params = self._after(c, cursor, key_cols, keys, pos)
        if not (self.req.nulls_every_run or pos.null_key is not None):
            return None if upper is None else (f"WHERE {after} AND {c} <= %s", [*params, *bound])
        nulls, null_params = f"{c} IS NULL", []
        if pos.null_key is not None and keys:  # inside the NULL rows: after the last one read
            nulls = f"({c} IS NULL AND ({', '.join(key_cols)}) > ({', '.join(['%s'] * len(keys))}))"
            null_params = [self._bind(k, v) for k, v in zip(keys, pos.null_key)]
        if upper is None:
            return f"WHERE {nulls}", null_params
        return f"WHERE ({nulls} OR ({after} AND {c} <= %s))", [*null_params, *params, *bound]

    def _after(self, c: str, cursor: str, key_cols: list[str], keys: list[str], pos: Position
               ) -> tuple[str, list[Any]]:
        """Rows after the position's `(cursor, key)`; with `lookback` or (`inclusive`, not
        `closed`) from below or at its cursor value again."""
        if pos.cursor is None:
            return f"{c} IS NOT NULL", []
        value = self._bind(cursor, pos.cursor)
        col = self.req.stream.column(cursor)
        if self.req.lookback_s > 0 and col is not None and col.type.kind in TEMPORAL:
            return f"{c} >= %s - INTERVAL %s SECOND", [value, self.req.lookback_s]
        if self.req.inclusive and not (self.req.checkpoint or {}).get("closed"):
            return f"{c} >= %s", [value]
        if not keys:
            return f"{c} > %s", [value]
        # the leading `cursor >= ` lets MariaDB use an index on the cursor column
        marks = ", ".join(["%s"] * len(keys))
        return f"{c} >= %s AND ({c}, {', '.join(key_cols)}) > (%s, {marks})", \
            [value, value, *(self._bind(k, v) for k, v in zip(keys, pos.key))]

    def _check_key(self, where: str, params: list[Any]) -> None:
        """Raise `RepeatedKeys` when a declared key value repeats among the rows `where`
        selects (a grouped count on the server, in the read's snapshot), before any row."""
        if not self.req.check_key or not self.req.primary_key:
            return
        keys = ", ".join(q(k) for k in self.req.primary_key)
        grouped = f"SELECT {keys}, COUNT(*) AS n FROM {self.table} {where} GROUP BY {keys} HAVING n > 1"
        with self.con.cursor() as cur:
            cur.execute(f"SELECT COUNT(*), COALESCE(SUM(n), 0) FROM ({grouped}) AS g", params)
            row = cur.fetchone()
            if not row or not int(row[0]):
                return
            cur.execute(f"{grouped} ORDER BY n DESC LIMIT 5", params)
            samples = [tuple(r[:-1]) for r in cur.fetchall()]
        raise RepeatedKeys(tuple(self.req.primary_key), int(row[0]), int(row[1]), samples,
                           stream=self.req.stream.name)

    def _batches(self, sql: str, params: list[Any], prefix: Prefix | None = None
                 ) -> Iterator[tuple[Sequence[Any], Sequence[Any], list[StreamItem]]]:
        """Per fetched batch: position columns of its first and last row, and its items. With
        `prefix`, each row's last column is its checksum, added to the prefix."""
        width = len(self.req.stream.columns)
        end = -1 if prefix is not None else None
        cur = self.con.cursor(pymysql.cursors.SSCursor)
        cur.execute(sql, params)
        while True:
            rows = cur.fetchmany(self.req.batch_size)
            if not rows:
                break
            failpoint("source_read")
            batch, bad = text_to_batch(rows, self.req.stream)
            if prefix is not None:
                prefix.add(len(rows), sum(int(r[-1]) for r in rows))
            yield rows[0][width:end], rows[-1][width:end], [*bad, batch]
