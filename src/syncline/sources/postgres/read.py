"""The SELECT a PostgreSQL read streams through COPY: binary or text columns, resume position, upper bound, order."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import psycopg
from psycopg import sql

from syncline.errors import ConfigurationError, RepeatedKeys
from syncline.schema import Column, StreamSchema
from syncline.sources.cursor_position import Position
from syncline.sources.postgres.types import (
    EXACT_OIDS,
    FIRST_USER_OID,
    NATIVE_OIDS,
    SUSPECT_SQL,
    TEXT_CAST_DIFFERS,
)
from syncline.stream import ReadRequest

_TEMPORAL = ("timestamp", "timestamptz", "date")
_NOTHING = sql.SQL("false")
_ALIAS = "_syncline_t"
#: The position of a read in physical order: the row version's (block, offset).
CTID = "ctid"


def _ref(*column: str) -> sql.Identifier:
    # qualified: in ORDER BY a bare name would also match the position columns' output names
    return sql.Identifier(_ALIAS, *column)


@dataclass(frozen=True)
class Columns:
    """How each stream column is selected: binary values the driver reads into Arrow, or text."""

    select: list[sql.Composable]
    native: list[bool]
    #: a JSON array of every column's text, for the rows holding a value with no canonical form
    row_text: sql.Composable | None
    #: columns read in binary whose values are their own exact text (integers, text)
    exact: frozenset[str]
    #: that JSON array for any row, to fetch a bad row's text by its ctid
    row_json: sql.Composable | None = None

    def positions_at(self, stream: StreamSchema, positions: list[str]) -> list[int]:
        """Where each position column's value is in a result row: the column itself when
        exact, else the column appended for it (in order, after the stream's columns)."""
        at, appended = [], len(stream.columns)
        for p in positions:
            if p in self.exact:
                at.append(stream.column_names.index(p))
            else:
                at.append(appended)
                appended += 1
        return at

    def row_text_at(self, stream: StreamSchema, positions: list[str]) -> int | None:
        if self.row_text is None or positions == [CTID]:
            return None  # a read in ctid order fetches a bad row's text by its ctid
        return len(stream.columns) + sum(p not in self.exact for p in positions)


def result_types(conn: psycopg.Connection[Any], stream: StreamSchema, relation: sql.Identifier) -> list[int]:
    """The type OID the server reports for each stream column (a domain's is its base type's)."""
    cols = sql.SQL(", ").join(_ref(c.name) for c in stream.columns)
    cur = conn.execute(sql.SQL("SELECT {} FROM {} AS {} LIMIT 0").format(cols, relation, _ref()))
    return [int(d.type_code) for d in cur.description or []]


def plan_columns(stream: StreamSchema, oids: list[int]) -> Columns:
    """Binary where the driver's Arrow type is the canonical one; PostgreSQL's text elsewhere.

    Text is the type's output function, as COPY's text formats write it, so numeric, interval,
    uuid, enums and unknown types convert exactly as before.
    """
    select: list[sql.Composable] = []
    native: list[bool] = []
    texts: list[sql.Composable] = []
    suspects: list[sql.Composable] = []
    exact: set[str] = set()
    for col, oid in zip(stream.columns, oids, strict=True):
        text = _text(col, oid)
        binary = oid in NATIVE_OIDS.get(col.type.kind, ())
        select.append(_ref(col.name) if binary else text)
        native.append(binary)
        if binary and oid in EXACT_OIDS:
            exact.add(col.name)
        texts.append(text)
        suspect = SUSPECT_SQL.get((oid, col.type.kind))
        if suspect is not None:
            suspects.append(sql.SQL("(" + suspect.replace("{c}", "{}") + ")").format(_ref(col.name)))
    row_json = sql.SQL("to_json(ARRAY[{}]::text[])::text").format(sql.SQL(", ").join(texts))
    row_text = None
    if suspects:
        row_text = sql.SQL("CASE WHEN {} THEN {} END").format(sql.SQL(" OR ").join(suspects), row_json)
    return Columns(select, native, row_text, frozenset(exact), row_json)


def _text(col: Column, oid: int) -> sql.Composable:
    if col.type.kind in ("json", "list"):
        # arrays become JSON arrays (numbers exact, timestamps ISO 8601 in UTC); json and jsonb
        # pass through to_json unchanged
        return sql.SQL("to_json({})::text").format(_ref(col.name))
    if oid in TEXT_CAST_DIFFERS or oid >= FIRST_USER_OID:
        # format() writes the output function's text; NULL must stay NULL, not ''
        return sql.SQL("CASE WHEN {0} IS NOT NULL THEN format('%s', {0}) END").format(_ref(col.name))
    return sql.SQL("{}::text").format(_ref(col.name))


def build_query(
    conn: psycopg.Connection[Any], req: ReadRequest, relation: sql.Identifier, columns: Columns,
    by_ctid: bool = False, limit: sql.Composable | None = None, beyond: sql.Composable | None = None,
) -> tuple[sql.Composed, list[str], sql.Composable | None]:
    """The SELECT, the position columns it appends, and its WHERE condition (the read's window).

    The SELECT lists the stream's columns, then each position column as text (the
    cursor and key values of the last row of a batch make its checkpoint, kept in
    PostgreSQL's own text form and cast back to the column type, so no digit or
    microsecond is lost between runs) unless its binary value is exact already
    (integers, text), then the suspect rows' text if any column can hold a value with
    no canonical form.

    With ``by_ctid`` a full refresh reads the table in physical order, a sequential scan
    with no sort, and its position is the ctid, appended in binary; a suspect row's text
    is then fetched by its ctid instead of being computed for every row.

    COPY takes no bind parameters, so values are embedded as ``sql.Literal`` (psycopg's
    own quoting), never formatted into the text.

    An incremental read stops below ``limit``, the late-commit horizon, when given: its
    upper bound is the newest cursor value below it. With ``beyond`` it takes only the rows
    whose cursor is past it instead.
    """
    select = list(columns.select)
    if beyond is not None:  # rows dated past the source's clock and the allowed skew
        assert req.cursor is not None
        positions = [req.cursor, *req.primary_key]
        where: sql.Composable | None = sql.SQL("{} > {}").format(_ref(req.cursor), beyond)
        order: sql.Composable | None = sql.SQL(", ").join(_ref(p) for p in positions)
    elif req.mode == "incremental":
        where, order, positions = _incremental(conn, req, relation, limit)
    elif by_ctid:
        where, order, positions = _physical(req)
    else:
        where, order, positions = _full_refresh(req)
    select += [_ref(p) if p == CTID else sql.SQL("{}::text").format(_ref(p))
               for p in positions if p not in columns.exact]
    if columns.row_text is not None and positions != [CTID]:
        select.append(columns.row_text)
    query = sql.SQL("SELECT {} FROM {} AS {}").format(sql.SQL(", ").join(select), relation, _ref())
    if where is not None:
        query += sql.SQL(" WHERE ") + where
    if order:
        query += sql.SQL(" ORDER BY ") + order
    return query, positions, where


def _column(stream: StreamSchema, name: str, role: str) -> Column:
    col = stream.column(name)
    if col is None or not col.native_type:
        raise ConfigurationError(
            f"{role} column '{name}' is not a column of {stream.name}",
            stream=stream.name, fix="run `syncline discover` and update the workspace",
        )
    return col


def _value(col: Column, value: Any) -> sql.Composable:
    # native_type is format_type() of the column, a type name quoted by the server itself
    assert col.native_type is not None
    return sql.SQL("CAST({} AS {})").format(sql.Literal(value), sql.SQL(col.native_type))


def _check_positions(req: ReadRequest, positions: list[str]) -> dict[str, Any] | None:
    cp = req.checkpoint
    if cp and cp.get("columns") is not None and list(cp["columns"]) != positions:
        raise ConfigurationError(
            f"the checkpoint was taken on columns {cp['columns']}, the stream now reads by {positions}",
            stream=req.stream.name,
            fix="restore the primary key or cursor, or reset this stream's state "
            "(`syncline state <connection> --reset <stream>`) to read it again from the start",
        )
    return cp


def _row(exprs: list[sql.Composable]) -> sql.Composed:
    return sql.SQL("({})").format(sql.SQL(", ").join(exprs))


def _full_refresh(req: ReadRequest) -> tuple[sql.Composable | None, sql.Composable | None, list[str]]:
    keys = list(req.primary_key)
    cp = _check_positions(req, keys)
    if cp and cp.get("complete"):
        return _NOTHING, None, keys  # a keyless table read whole; only the swap was left to do
    if not keys:
        return None, None, keys
    idents: list[sql.Composable] = [_ref(k) for k in keys]
    order = sql.SQL(", ").join(idents)
    after = (cp or {}).get("after")
    if after is None:
        return None, order, keys
    cols = [_column(req.stream, k, "primary key") for k in keys]
    where = sql.SQL("{} > {}").format(_row(idents), _row([_value(c, v) for c, v in zip(cols, after)]))
    return where, order, keys


def _physical(req: ReadRequest) -> tuple[sql.Composable | None, None, list[str]]:
    """A full refresh in ctid order: from the start, or after the checkpoint's ctid."""
    cp = _check_positions(req, [CTID])
    after = (cp or {}).get("after")
    if after is None:
        return None, None, [CTID]
    return sql.SQL("{} > CAST({} AS tid)").format(_ref(CTID), sql.Literal(after[0])), None, [CTID]


def _incremental(
    conn: psycopg.Connection[Any], req: ReadRequest, relation: sql.Identifier,
    limit: sql.Composable | None = None,
) -> tuple[sql.Composable | None, sql.Composable | None, list[str]]:
    if not req.cursor:
        raise ConfigurationError("incremental mode needs a cursor", stream=req.stream.name,
                                 fix="set `cursor:` for this stream")
    ccol = _column(req.stream, req.cursor, "cursor")
    keys = list(req.primary_key)
    kcols = [_column(req.stream, k, "primary key") for k in keys]
    positions = [req.cursor, *keys]
    cp = _check_positions(req, positions)
    c = _ref(req.cursor)
    kid: list[sql.Composable] = [_ref(k) for k in keys]
    newest = sql.SQL("SELECT max({})::text FROM {} AS {}").format(c, relation, _ref())
    if limit is not None:
        newest += sql.SQL(" WHERE {} < {}").format(c, limit)
    row = conn.execute(newest).fetchone()
    upper = row[0] if row else None
    below = sql.SQL("{} <= {}").format(c, _value(ccol, upper))  # false for every row when NULL
    nulls_first = sql.SQL(", ").join([c + sql.SQL(" NULLS FIRST"), *kid])
    pos = Position.of(cp)
    if pos is None:
        # The first read also takes the rows whose cursor is NULL, first, keyed by the
        # primary key; later ones only under merge (`nulls_every_run`).
        return sql.SQL("({} IS NULL OR {})").format(c, below), nulls_first, positions
    if pos.cursor is None:
        after: sql.Composable = below
    elif req.lookback_s > 0 and ccol.type.kind in _TEMPORAL:
        # re-read the window below the last position: rows stamped by the writers' own clocks
        after = sql.SQL("{} >= {} - make_interval(secs => {}) AND {}").format(
            c, _value(ccol, pos.cursor), sql.Literal(req.lookback_s), below)
    elif req.inclusive and not (cp or {}).get("closed"):
        # a row may still take the checkpoint's cursor value (a coarse cursor, a counter):
        # read that value again, and let the merge make the repeats harmless
        after = sql.SQL("{} >= {} AND {}").format(c, _value(ccol, pos.cursor), below)
    elif keys:
        after = sql.SQL("{} > {} AND {}").format(
            _row([c, *kid]),
            _row([_value(ccol, pos.cursor), *(_value(k, v) for k, v in zip(kcols, pos.key))]), below)
    else:
        after = sql.SQL("{} > {} AND {}").format(c, _value(ccol, pos.cursor), below)
    if not (req.nulls_every_run or pos.null_key is not None):
        return (_NOTHING if upper is None else after), sql.SQL(", ").join([c, *kid]), positions
    nulls: sql.Composable = sql.SQL("{} IS NULL").format(c)
    if pos.null_key is not None and keys:  # inside the NULL rows: after the last one read
        nulls = sql.SQL("({} IS NULL AND {} > {})").format(
            c, _row(kid), _row([_value(k, v) for k, v in zip(kcols, pos.null_key)]))
    if upper is None:
        after = _NOTHING
    return sql.SQL("({} OR ({}))").format(nulls, after), nulls_first, positions


def repeated_keys(conn: psycopg.Connection[Any], req: ReadRequest, relation: sql.Identifier,
                  where: sql.Composable | None) -> RepeatedKeys | None:
    """The error for key values that repeat among the rows `where` selects, in `conn`'s snapshot
    (a grouped count on the server), with a few of them as samples; None when each is once."""
    keys: list[sql.Composable] = [_ref(k) for k in req.primary_key]
    grouped = sql.SQL("SELECT {}, count(*) AS n FROM {} AS {}").format(
        sql.SQL(", ").join(sql.SQL("{}::text").format(k) for k in keys), relation, _ref())
    if where is not None:
        grouped += sql.SQL(" WHERE ") + where
    grouped += sql.SQL(" GROUP BY {} HAVING count(*) > 1").format(sql.SQL(", ").join(keys))
    row = conn.execute(sql.SQL("SELECT count(*), coalesce(sum(n), 0) FROM ({}) AS g").format(
        grouped)).fetchone()
    if not row or not row[0]:
        return None
    samples = conn.execute(grouped + sql.SQL(" ORDER BY n DESC LIMIT 5")).fetchall()
    return RepeatedKeys(tuple(req.primary_key), int(row[0]), int(row[1]),
                        [tuple(r[:-1]) for r in samples], stream=req.stream.name)


def texts_by_ctid(conn: psycopg.Connection[Any], relation: sql.Identifier, row_json: sql.Composable | None
                  ) -> Callable[[list[str]], dict[str, str]]:
    """Bad rows' text, fetched by ctid in the read's snapshot (rare: only rows with a value
    that has no canonical form)."""
    def texts(tids: list[str]) -> dict[str, str]:
        if row_json is None or not tids:
            return {}
        # the texts use format('%s', ...): the ctids go in as a literal, not a parameter
        query = sql.SQL("SELECT {}::text, {} FROM {} AS {} WHERE {} = ANY(CAST({} AS tid[]))").format(
            _ref(CTID), row_json, relation, _ref(), _ref(CTID), sql.Literal(tids))
        return {str(t): str(j) for t, j in conn.execute(query).fetchall()}
    return texts
