"""`write: history`: the SQL that keeps every version of a row, shared by the SQL destinations.

A history table holds the stream's columns, `_syncline_synced_at`, `_syncline_deleted`, and
per version `_syncline_valid_from`, `_syncline_valid_to` (NULL while current),
`_syncline_is_current` and `_syncline_row_hash` (of the stream's own columns). Each key has at
most one current version; consecutive versions of a key meet exactly (the older one's
`valid_to` is the newer one's `valid_from`); a key deleted at the source has none current,
its last version closed at the delete with `_syncline_deleted = true`.

Two ways in, each run inside the caller's transaction:

- ``changes``: staged rows in read order (incremental and cdc commits). A staged row that
  equals the version before it (by hash), a delete of a key that is not live, and a row older
  than the current version (by cursor) add nothing; the others become versions, the first one
  closing the current version.
- ``snapshot``: a table holding every live row the source has (a full refresh built beside).
  A changed or new row becomes the current version; a current version whose key the snapshot
  lacks is closed as deleted.

A version's time is the source's: a cdc change's commit time, or a date-time cursor's value
(at most the time it was read), else the time it was read; never before the version it
replaces.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from syncline.destinations.base import (
    DELETED,
    IS_CURRENT,
    ROW_HASH,
    SYNCED_AT,
    VALID_FROM,
    VALID_TO,
)
from syncline.schema import BOOLEAN, STRING, TIMESTAMPTZ, Column, DataType

EVENTS = "_syncline_history_events"
EFFECTIVE = "_syncline_history_effective"
CHANGED = "_syncline_history_changed"
#: the cursor kinds whose value says when a version began
DATED = ("timestamp", "timestamptz")


def history_columns() -> list[Column]:
    return [Column(VALID_FROM, TIMESTAMPTZ), Column(VALID_TO, TIMESTAMPTZ),
            Column(IS_CURRENT, BOOLEAN), Column(ROW_HASH, STRING)]


@dataclass(frozen=True)
class Steps:
    """Statements run in order: ``prepare``; ``counted`` (the changes that count); ``close``
    (versions closed, each returning its count); ``insert`` (versions added); ``cleanup``."""

    prepare: list[str]
    counted: str
    close: list[str]
    insert: str
    cleanup: list[str]


@dataclass(frozen=True)
class HistorySQL:
    """The statements for one history table, in one destination's dialect."""

    #: the history table, qualified and quoted
    table: str
    #: the stream's own columns (system columns excluded) with their types in the table
    columns: Sequence[tuple[str, DataType]]
    keys: Sequence[str]
    #: the column ordering versions of a key (incremental cursor, cdc LSN), if any
    cursor: str | None
    #: the staged rows' versions win even over a current version with a newer cursor
    source_wins: bool
    quote: Callable[[str], str]
    #: the destination's type for a column type
    type_of: Callable[[DataType], str]
    #: the destination's text type
    text: str
    #: the staged order column
    seq: str
    #: the staged column of a cdc source's commit times (NULL when it has none)
    changed_at: str
    #: when staged rows were read, where the stage has no `_syncline_synced_at` (``now()``)
    read_at: str | None = None

    def _cast(self, alias: str, name: str, t: DataType) -> str:
        return f"CAST({alias}.{self.quote(name)} AS {self.type_of(t)})"

    def _hash(self, alias: str) -> str:
        """md5 over the non-NULL columns, by name: a column added later and NULL changes nothing."""
        parts = [
            f"CASE WHEN {alias}.{self.quote(n)} IS NULL THEN NULL ELSE "
            f"'{n.replace(chr(39), chr(39) * 2)}' || chr(30) || "
            f"CAST({self._cast(alias, n, t)} AS {self.text}) END"
            for n, t in sorted(self.hashed())
        ]
        return "md5(concat_ws(chr(31), " + (", ".join(parts) or "''") + "))"

    def hashed(self) -> list[tuple[str, DataType]]:
        return [(n, t) for n, t in self.columns if not n.startswith("_syncline_")]

    def _synced(self, alias: str, staged: bool) -> str:
        return self.read_at if staged and self.read_at else f"{alias}.{SYNCED_AT}"

    def _time(self, alias: str, staged: bool) -> str:
        """When the version began, as the source says (never after it was read): the commit
        time a cdc source staged, or a date-time cursor's value."""
        synced = self._synced(alias, staged)
        dated = dict(self.columns).get(self.cursor or "")
        times = [f"{alias}.{self.quote(self.changed_at)}"] if staged else []
        if self.cursor is not None and dated is not None and dated.kind in DATED:
            times.append(f"CAST({alias}.{self.quote(self.cursor)} AS {self.type_of(TIMESTAMPTZ)})")
        if not times:
            return synced
        return f"least(coalesce({', '.join(times)}, {synced}), {synced})"

    def _current(self) -> str:
        keys = ", ".join(self.quote(k) for k in self.keys)
        cursor = f", {self.quote(self.cursor)} AS __cc" if self.cursor else ""
        return (f"(SELECT {keys}, {ROW_HASH} AS __ch, {VALID_FROM} AS __cvf{cursor}, true AS __has "
                f"FROM {self.table} WHERE {IS_CURRENT})")

    def _on(self, a: str, b: str) -> str:
        return " AND ".join(f"{a}.{self.quote(k)} = {b}.{self.quote(k)}" for k in self.keys)

    def _keys(self, alias: str) -> str:
        return ", ".join(f"{alias}.{self.quote(k)}" for k in self.keys)

    def _data(self, alias: str) -> str:
        return ", ".join(f"{alias}.{self.quote(n)}" for n, _ in self.columns)

    def _insert_columns(self) -> str:
        names = [self.quote(n) for n, _ in self.columns]
        return ", ".join([*names, SYNCED_AT, DELETED, VALID_FROM, VALID_TO, IS_CURRENT, ROW_HASH])

    # -- changes: staged rows in read order ------------------------------------------

    def changes(self, source: str) -> Steps:
        """Statements turning the staged rows in ``source`` into versions."""
        casts = ", ".join(f"{self._cast('s', n, t)} AS {self.quote(n)}" for n, t in self.columns)
        older = ""
        if self.cursor and not self.source_wins:
            c = self.quote(self.cursor)
            older = f" WHERE NOT coalesce(c.__cc > s.{c}, false)"
        t, synced = self._time("s", staged=True), self._synced("s", staged=True)
        events = (
            f"CREATE TEMP TABLE {EVENTS} AS SELECT {casts}, {synced} AS {SYNCED_AT}, "
            f"coalesce(s.{DELETED}, false) AS {DELETED}, s.{self.seq} AS __seq, "
            f"CASE WHEN s.{DELETED} THEN NULL ELSE {self._hash('s')} END AS __h, "
            f"CASE WHEN c.__cvf IS NULL OR {t} > c.__cvf THEN {t} ELSE {synced} END AS __t, "
            f"c.__ch, c.__cvf, coalesce(c.__has, false) AS __has "
            f"FROM {source} s LEFT JOIN {self._current()} c ON {self._on('s', 'c')}{older}"
        )
        part = f"PARTITION BY {self._keys('e')} ORDER BY e.__seq"
        effective = (
            f"CREATE TEMP TABLE {EFFECTIVE} AS SELECT * FROM (SELECT e.*, "
            f"greatest(coalesce(e.__cvf, e.__t), max(e.__t) OVER ({part} ROWS BETWEEN UNBOUNDED "
            f"PRECEDING AND CURRENT ROW)) AS __at, "
            f"CASE WHEN row_number() OVER w = 1 THEN "
            f"CASE WHEN e.{DELETED} THEN e.__has ELSE NOT e.__has OR e.__ch IS DISTINCT FROM e.__h END "
            f"WHEN e.{DELETED} THEN NOT lag(e.{DELETED}) OVER w "
            f"ELSE lag(e.{DELETED}) OVER w OR lag(e.__h) OVER w IS DISTINCT FROM e.__h END AS __counts "
            f"FROM {EVENTS} e WINDOW w AS ({part})) x WHERE __counts"
        )
        first = (f"(SELECT * FROM (SELECT e.*, row_number() OVER (PARTITION BY {self._keys('e')} "
                 f"ORDER BY e.__seq) AS __n FROM {EFFECTIVE} e) y WHERE __n = 1 AND __has)")
        close = (f"UPDATE {self.table} AS t SET {VALID_TO} = f.__at, {IS_CURRENT} = false, "
                 f"{DELETED} = f.{DELETED} FROM {first} f WHERE t.{IS_CURRENT} AND {self._on('t', 'f')}")
        wz = f"PARTITION BY {self._keys('e')} ORDER BY e.__seq"
        insert = (
            f"INSERT INTO {self.table} ({self._insert_columns()}) SELECT {self._data('z')}, "
            f"z.{SYNCED_AT}, coalesce(z.__next_del, false), z.__at, z.__next_at, z.__next_at IS NULL, "
            f"z.__h FROM (SELECT e.*, lead(e.__at) OVER ({wz}) AS __next_at, "
            f"lead(e.{DELETED}) OVER ({wz}) AS __next_del FROM {EFFECTIVE} e) z WHERE NOT z.{DELETED}"
        )
        return Steps(
            prepare=[f"DROP TABLE IF EXISTS {EVENTS}", f"DROP TABLE IF EXISTS {EFFECTIVE}", events,
                     effective],
            counted=f"SELECT count(*) FROM {EFFECTIVE}", close=[close], insert=insert,
            cleanup=[f"DROP TABLE {EVENTS}", f"DROP TABLE {EFFECTIVE}"])

    # -- snapshot: every live row the source has -------------------------------------

    def snapshot(self, build: str, placeholder: str) -> Steps:
        """Statements applying a full snapshot in ``build``; the last of ``close`` closes the
        keys the snapshot lacks (``placeholder``: the time of the delete)."""
        casts = ", ".join(f"{self._cast('b', n, t)} AS {self.quote(n)}" for n, t in self.columns)
        t = self._time("b", staged=False)
        changed = (
            f"CREATE TEMP TABLE {CHANGED} AS SELECT {casts}, b.{SYNCED_AT}, {self._hash('b')} AS __h, "
            f"CASE WHEN c.__cvf IS NULL OR {t} > c.__cvf THEN {t} "
            f"ELSE greatest(b.{SYNCED_AT}, c.__cvf) END AS __at, "
            f"coalesce(c.__has, false) AS __has FROM {build} b LEFT JOIN {self._current()} c "
            f"ON {self._on('b', 'c')} WHERE b.{DELETED} IS NOT TRUE "
            f"AND (c.__has IS NULL OR c.__ch IS DISTINCT FROM {self._hash('b')})"
        )
        close = (f"UPDATE {self.table} AS t SET {VALID_TO} = ch.__at, {IS_CURRENT} = false "
                 f"FROM {CHANGED} ch WHERE ch.__has AND t.{IS_CURRENT} AND {self._on('t', 'ch')}")
        gone = (f"UPDATE {self.table} AS t SET {VALID_TO} = {placeholder}, {IS_CURRENT} = false, "
                f"{DELETED} = true WHERE t.{IS_CURRENT} AND NOT EXISTS (SELECT 1 FROM {build} b "
                f"WHERE {self._on('b', 't')} AND b.{DELETED} IS NOT TRUE)")
        insert = (f"INSERT INTO {self.table} ({self._insert_columns()}) SELECT {self._data('ch')}, "
                  f"ch.{SYNCED_AT}, false, ch.__at, NULL, true, ch.__h FROM {CHANGED} ch")
        return Steps(prepare=[f"DROP TABLE IF EXISTS {CHANGED}", changed],
                     counted=f"SELECT count(*) FROM {CHANGED}", close=[close, gone], insert=insert,
                     cleanup=[f"DROP TABLE {CHANGED}"])
