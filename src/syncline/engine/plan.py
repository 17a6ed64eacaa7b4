"""Which streams a run reads, and how: mode, write disposition, cursor, key and table."""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any, NamedTuple

from syncline.config import ConnectionConfig, StreamConfig, TableNames
from syncline.destinations.base import SYSTEM_COLUMNS
from syncline.errors import ConfigurationError
from syncline.schema import INT64, Column, DataType, StreamSchema
from syncline.sources.late_commits import TEMPORAL
from syncline.sources.privileges import denied
from syncline.stream import KEYED_WRITES, Mode, Write, lookback_seconds

if TYPE_CHECKING:
    from syncline.destinations.base import Destination
    from syncline.sources.base import Source

#: The system cursor a cdc source adds to every row: the change's commit LSN as an integer.
CDC_CURSOR = "_syncline_lsn"


@dataclass(frozen=True)
class StreamPlan:
    stream: StreamSchema
    mode: Mode
    write: Write
    cursor: str | None
    primary_key: tuple[str, ...]
    table: str
    #: incremental: seconds re-read below the last date or time cursor value on every run
    lookback_s: int = 0
    #: the schema of `table` when a dotted `table:` names another than the connection's
    #: (its state, loads and quarantine stay in the connection's schema)
    table_schema: str | None = None
    #: `deletes: reconcile`: every how many runs the keys gone from the source are marked
    reconcile_every: int | None = None

    @property
    def qualified_table(self) -> str:
        """The table as the user names it: ``schema.table`` when it is in another schema."""
        return f"{self.table_schema}.{self.table}" if self.table_schema else self.table


def destination_schema(name: str, conn: ConnectionConfig, destination: Destination | None = None) -> str:
    """The schema connection ``name`` writes: its `destination_schema:` (default: its name),
    normalized as stream names are (``Sales-EU`` → ``sales_eu``); a schema ``destination``
    already holds under the written name (loaded before names were normalized) keeps it."""
    written = conn.destination_schema or name
    plain = normalize_table_name(written)
    if plain != written and destination is not None and destination.all_states(written):
        return written
    return plain


def schema_names(name: str, conn: ConnectionConfig) -> tuple[str, ...]:
    """The connection's own schema as a `table:` may name it: normalized, and as written."""
    return tuple(dict.fromkeys((destination_schema(name, conn), conn.destination_schema or name)))


def configured_table(written: str, schemas: tuple[str, ...],
                     loaded_as: str | None = None) -> tuple[str | None, str]:
    """(schema, table) a stream's `table:` names, each normalized as stream names are; the
    schema is None for the connection's own (one of ``schemas``, as written or normalized):
    ``analytics.order_lines`` is table order_lines in schema analytics. A table already loaded
    under its written name keeps it."""
    if loaded_as == written:
        return None, written
    schema, dot, table = written.rpartition(".")
    if not dot:
        return None, normalize_table_name(written)
    if not schema or not table:
        raise ConfigurationError(f"`table: {written}` is not a table name",
                                 fix="write `table: NAME` or `table: SCHEMA.NAME`")
    if schema in schemas or normalize_table_name(schema) in schemas:
        return None, normalize_table_name(table)
    return normalize_table_name(schema), normalize_table_name(table)


@dataclass(frozen=True)
class SourceAbilities:
    modes: frozenset[str]
    incremental_needs_cursor: bool = True
    #: True when an incremental read without a unique key would compare on the cursor alone
    #: (rows sharing the last cursor value would be lost after a crash).
    incremental_needs_key: bool = False
    #: The window the source re-reads below the last cursor on every incremental read, if any.
    lookback: str | None = None
    #: Database sources reading a cursor column in SQL (see `Source.sql_cursor`).
    sql_cursor: bool = False
    #: Streams an incremental read without a cursor still reads only what changed of
    #: (`Source.incremental_without_cursor`); None when not known (planning offline).
    cursorless: frozenset[str] | None = None
    #: Why an incremental read by a date or time cursor cannot be held back from late commits
    #: here (a missing privilege), and the fix; None when it can (see `sources.late_commits`).
    late_commits_refusal: tuple[str, str] | None = None
    #: Streams the source found but may not read, with the GRANTs to run (`Source.unreadable`).
    unreadable: Mapping[str, str] = field(default_factory=dict, compare=False)
    #: Whether the source can compare a column's values, as a cursor needs (`Source.orderable`).
    orderable: Callable[[Column], bool] = field(default=lambda column: True, compare=False)

    @classmethod
    def of(cls, source: Source) -> SourceAbilities:
        """What a configured source can do, from its class attributes and configuration."""
        return cls(modes=source.modes, incremental_needs_cursor=source.incremental_needs_cursor,
                   incremental_needs_key=source.incremental_needs_key, lookback=source.lookback(),
                   sql_cursor=source.sql_cursor, orderable=source.orderable)


_PLAIN = re.compile(r"^[a-z_][a-z0-9_]*$")


def normalize_table_name(name: str) -> str:
    """A plain snake_case identifier for a stream name, so no destination needs quoting.

    A name that already is one (lower case letters, digits, underscores, not starting
    with a digit) is kept; otherwise a lower-case letter or digit followed by a capital
    gets an underscore between them, every run of other characters (``-``, spaces,
    dots) becomes one underscore, the result is lower-cased and trimmed of underscores,
    and a leading digit gets an underscore before it: ``app-orders`` → ``app_orders``,
    ``Order Items`` → ``order_items``, ``OrderItems`` → ``order_items``.
    """
    if _PLAIN.match(name):
        return name
    text = re.sub(r"([a-z0-9])([A-Z])", r"\1_\2", name)
    text = re.sub(r"[^A-Za-z0-9]+", "_", text).strip("_").lower() or "stream"
    return f"_{text}" if text[0].isdigit() else text


def default_table(stream: str, style: TableNames, loaded_as: str | None = None) -> str:
    """The destination table of a stream that sets no `table:`.

    `last_part` takes the stream's last dotted part, `schema_table` the whole name
    (``archive.products`` → ``archive_products``), normalized. A stream already loaded
    under its raw last part (before names were normalized) keeps that table.
    """
    last = stream.split(".")[-1]
    if style == "last_part":
        return last if loaded_as == last else normalize_table_name(last)
    return normalize_table_name(stream.replace(".", "_"))


class Orphan(NamedTuple):
    """A loaded table whose stream is gone from the source or the connection, and why."""

    table: str
    error: ConfigurationError


@dataclass(frozen=True)
class Planned:
    """A connection's plan: the streams that can run, and each one refused with its reason
    (it fails alone; the others run)."""

    plans: list[StreamPlan]
    refused: dict[str, ConfigurationError] = field(default_factory=dict)
    #: streams with a committed state (a loaded table) that neither the source nor the
    #: connection's `streams:` has any more, with why: their tables are no longer updated
    orphaned: dict[str, Orphan] = field(default_factory=dict)
    #: the committed state of each loaded stream, as planning read it from the destination
    states: dict[str, dict[str, Any]] = field(default_factory=dict)

    def checked(self) -> list[StreamPlan]:
        """The plans, or the first refusal raised (for callers that need every stream)."""
        for exc in self.refused.values():
            raise exc
        return self.plans


def plan_streams(name: str, conn: ConnectionConfig, source: Source, destination: Destination,
                 only: list[str] | None = None) -> Planned:
    """Discover the source and plan the connection, keeping the tables its committed states name."""
    schema = destination_schema(name, conn, destination)
    states = destination.all_states(schema)
    loaded = {s: st["table"] for s, st in states.items() if isinstance(st.get("table"), str)}
    discovered = [_as_loaded(s, conn, destination, schema, loaded)
                  if s.placeholder else s
                  for s in source.discover()]
    abilities = replace(SourceAbilities.of(source), late_commits_refusal=source.late_commits_refusal(),
                        unreadable=source.unreadable(),
                        cursorless=frozenset(s.name for s in discovered
                                             if source.incremental_without_cursor(s)))
    planned = plan_each(name, conn, discovered, abilities, only, loaded)
    planned.orphaned.update(_orphaned(name, schema, conn, states, discovered))
    planned.states.update(states)
    unknown = {s.name: s for s in discovered if s.placeholder}
    wanted = {p.stream.name for p in planned.plans} | set(planned.refused)
    planned.plans[:] = [p for p in planned.plans if p.stream.name not in unknown]
    for stream in unknown.values():  # what the planner said of its stand-in columns is beside the point
        if stream.name in wanted:
            planned.refused[stream.name] = ConfigurationError(
                f"{'; '.join(stream.notes)}, and the stream was never loaded, so its columns are unknown",
                connection=name, stream=stream.name,
                fix=f"put at least one file there before its first sync, or correct `path:` of source "
                    f"'{conn.source}'")
    return planned


def _orphaned(name: str, schema: str, conn: ConnectionConfig,
              states: Mapping[str, Mapping[str, object]], discovered: list[StreamSchema]
              ) -> dict[str, Orphan]:
    """Streams loaded before that the source (under default streams) or the connection's
    `streams:` no longer has: a renamed or dropped table leaves its old table behind, stale."""
    known = set(conn.streams) if conn.streams is not None else {s.name for s in discovered}
    out = {}
    for stream, state in sorted(states.items()):
        if stream in known:
            continue
        table = state.get("table")
        table = table if isinstance(table, str) else default_table(stream, conn.table_names)
        where = "the connection's `streams:`" if conn.streams is not None else f"source '{conn.source}'"
        held = state.get("table_schema")
        out[stream] = Orphan(table, ConfigurationError(
            f"table {held if isinstance(held, str) else schema}.{table} of stream '{stream}' is no longer updated: {where} has no such "
            "stream any more (renamed or dropped?)", connection=name, stream=stream,
            fix=f"drop the table if it is no longer wanted, then `syncline state {name} --reset "
                f"{stream}` to forget the stream"))
    return out


def _as_loaded(stream: StreamSchema, conn: ConnectionConfig, destination: Destination, schema: str,
               loaded: Mapping[str, str]) -> StreamSchema:
    """A stream the source cannot describe now (`StreamSchema.placeholder`) with the columns
    of its loaded table, which a read of nothing keeps as they are."""
    cfg = (conn.streams or {}).get(stream.name)
    try:
        table_schema, table = (configured_table(cfg.table, (schema,), loaded.get(stream.name))
                               if cfg is not None and cfg.table else
                               (None, default_table(stream.name, conn.table_names, loaded.get(stream.name))))
    except ConfigurationError:
        return stream  # the plan refuses the name itself
    held = destination.table_columns(table_schema or schema, table)
    if not held:
        return stream
    own = {c.name for c in stream.columns}
    columns = stream.columns + tuple(Column(n, t) for n, t in held.items()
                                     if n not in own and n not in SYSTEM_COLUMNS)
    return replace(stream, columns=columns, placeholder=False)


def plan_connection(
    name: str,
    conn: ConnectionConfig,
    discovered: list[StreamSchema],
    abilities: SourceAbilities,
    only: list[str] | None = None,
    loaded: Mapping[str, str] | None = None,
) -> list[StreamPlan]:
    """`plan_each`, raising the first refusal."""
    return plan_each(name, conn, discovered, abilities, only, loaded).checked()


def plan_each(
    name: str,
    conn: ConnectionConfig,
    discovered: list[StreamSchema],
    abilities: SourceAbilities,
    only: list[str] | None = None,
    loaded: Mapping[str, str] | None = None,
) -> Planned:
    """The plan of every selected stream (or `only` these); `loaded` maps streams to the
    tables their committed state records, so a loaded table keeps its name. A stream the
    source lacks or that breaks a rule is refused alone; an unknown `--stream` or two streams
    writing one table refuse the connection."""
    by_name = {s.name: s for s in discovered}
    wanted: dict[str, StreamConfig]
    if conn.streams is None:
        wanted = {s.name: StreamConfig() for s in discovered}
    else:
        wanted = {k: v for k, v in conn.streams.items() if v.selected}
    if only:
        unknown = [s for s in only if s not in wanted]
        if unknown:
            raise ConfigurationError(
                f"--stream {', '.join(unknown)} is not a stream of this connection",
                connection=name,
                fix=f"choose from: {', '.join(sorted(wanted))}",
            )
    schemas = schema_names(name, conn)
    tables: dict[str, tuple[str | None, str]] = {}
    misnamed: dict[str, ConfigurationError] = {}
    for s, cfg in wanted.items():
        try:
            tables[s] = (configured_table(cfg.table, schemas, (loaded or {}).get(s)) if cfg.table
                         else (None, default_table(s, conn.table_names, (loaded or {}).get(s))))
        except ConfigurationError as exc:
            misnamed[s] = exc
    refuse_shared_tables(name, {s: f"{schema}.{t}" if schema else t for s, (schema, t) in tables.items()})  # also when only some streams run: any of them may run later
    planned = Planned([])
    for s, cfg in wanted.items():
        if only and s not in only:
            continue
        try:
            if s in misnamed:
                raise misnamed[s]
            if s not in by_name:
                raise _absent(conn, s, sorted(by_name), abilities)
            schema, table = tables[s]
            planned.plans.append(replace(_plan_stream(name, by_name[s], cfg, abilities, table),
                                         table_schema=schema))
        except ConfigurationError as exc:
            planned.refused[s] = exc
            exc.at(connection=name, stream=s)
    return planned


def _absent(conn: ConnectionConfig, stream: str, found: list[str],
            abilities: SourceAbilities) -> ConfigurationError:
    """Why a stream named in `streams:` is not among the source's: a privilege, or gone."""
    if stream in abilities.unreadable:
        return denied(conn.source, [stream], abilities.unreadable)
    return ConfigurationError(
        f"source '{conn.source}' has no such stream (renamed or dropped?)",
        fix=f"use discovered streams: {', '.join(found) or '(none)'}; "
        f"see `syncline discover {conn.source}`")


def refuse_shared_tables(connection: str, tables: dict[str, str]) -> None:
    """Two streams never write one table: the second would merge into the first's rows."""
    seen: dict[str, str] = {}
    for stream, table in tables.items():
        first = seen.setdefault(table.lower(), stream)
        if first != stream:
            raise ConfigurationError(
                f"streams '{first}' and '{stream}' would both write table '{table}'",
                connection=connection,
                fix=f"give one of them its own table (`streams: {{{stream}: {{table: ...}}}}`), "
                "or set `table_names: schema_table` on the connection to name each table "
                "<schema>_<table>",
            )


def _plan_stream(
    connection: str, stream: StreamSchema, cfg: StreamConfig, abilities: SourceAbilities, table: str
) -> StreamPlan:
    def fail(message: str, fix: str) -> ConfigurationError:
        return ConfigurationError(message, connection=connection, stream=stream.name, fix=fix)

    stream = _declared(stream, cfg, abilities, fail)
    pk = tuple(cfg.primary_key) if cfg.primary_key is not None else stream.primary_key
    for col in pk:
        if stream.column(col) is None:
            raise fail(f"primary_key column '{col}' does not exist",
                       f"use columns of the stream: {', '.join(stream.column_names)}")
    cursor = cfg.cursor
    named = stream.column(cursor) if cursor is not None else None
    if cursor is not None and named is None:
        raise fail(f"cursor column '{cursor}' does not exist",
                   f"use one of: {', '.join(stream.cursor_candidates or stream.column_names)}")
    if named is not None and not abilities.orderable(named):
        usable = [*stream.cursor_candidates, *(c.name for c in stream.columns if abilities.orderable(c)
                                               and c.name not in stream.cursor_candidates)]
        raise fail(f"cursor column '{cursor}' ({named.native_type or named.type}) has no order the "
                   "source can compare, so it cannot mark how far a read got",
                   "set `cursor:` to a column that grows on every change: "
                   f"{', '.join(usable) or '(the stream has none; use mode: full_refresh)'}")
    # a column that is never NULL first: a row with no cursor value is found only by re-reading
    auto_cursors = sorted((c for c in stream.cursor_candidates if _safe_default_cursor(stream, c)),
                          key=lambda c: _nullable(stream, c))
    # without a cursor, incremental only where the source reads just what changed by itself
    cursorless = not abilities.incremental_needs_cursor and (
        abilities.cursorless is None or stream.name in abilities.cursorless)
    mode: Mode
    if cfg.mode is not None:
        mode = cfg.mode
    elif cursor or cursorless or (auto_cursors and pk):
        mode = "incremental"
    else:
        mode = "full_refresh"
    if mode == "incremental" and cursor is None and not abilities.incremental_needs_cursor \
            and not cursorless:
        raise fail("incremental mode without a cursor would read the whole stream again on every "
                   "run (the source has no replication key for it), while rows deleted at the "
                   "source stayed live", "name a `cursor:` for this stream, or use mode: "
                   "full_refresh (under merge it marks rows missing at the source as deleted)")
    if mode not in abilities.modes:
        raise fail(f"mode {mode} is not supported by this source",
                   f"use one of: {', '.join(sorted(abilities.modes))}")
    if mode == "incremental" and abilities.incremental_needs_cursor and cursor is None:
        if not auto_cursors:  # only when asked for: else the mode would be full_refresh
            raise fail("incremental mode needs a cursor column and this stream has no candidate",
                       "set `cursor:` to a column that grows on every change, or use mode: full_refresh")
        cursor = auto_cursors[0]
    write: Write
    if cfg.write is not None:
        write = cfg.write
    elif pk:
        write = "merge"
    else:
        write = "replace" if mode == "full_refresh" else "append"
    if write in KEYED_WRITES and not pk:
        raise fail(f"write: {write} needs a primary key and the stream has none",
                   "set `primary_key: [col, ...]`, or use write: append")
    if write == "replace" and mode != "full_refresh":
        raise fail(f"write: replace only goes with mode: full_refresh (mode is {mode})",
                   "use write: merge or append, or mode: full_refresh")
    lookback = cfg.lookback if cfg.lookback is not None else abilities.lookback
    if cfg.lookback is not None and not abilities.sql_cursor:
        raise fail("`lookback:` is read by PostgreSQL, MySQL and SQLite sources only",
                   "remove `lookback:` from this stream")
    if mode == "incremental":
        _check_incremental(fail, abilities, pk, write, lookback)
        cursor_col = stream.column(cursor) if cursor else None
        if abilities.sql_cursor and write == "append" and cursor_col and cursor_col.nullable:
            raise fail(f"the cursor column '{cursor}' may be NULL, and under write: append a row "
                       "whose cursor is NULL is read only by the first run (one inserted or "
                       "updated later would never arrive)",
                       f"make '{cursor}' NOT NULL at the source, choose a cursor column that is, or "
                       "use write: merge (it reads the rows whose cursor is NULL on every run)")
        if abilities.late_commits_refusal and cursor_col and cursor_col.type.kind in TEMPORAL:
            raise fail(*abilities.late_commits_refusal)
    if cfg.deletes == "reconcile":
        _check_reconcile(fail, abilities, mode, write)
    if mode == "cdc":
        if write not in KEYED_WRITES or not pk:
            raise fail("mode: cdc needs write: merge (or history) and a primary key (deletes and "
                       "updates are applied by key)",
                       "set `primary_key:` and `write: merge`, or use another mode")
        # latest change wins: the destination compares the system LSN column
        stream = replace(stream, columns=(*stream.columns, Column(CDC_CURSOR, INT64)))
        return StreamPlan(stream=stream, mode=mode, write=write, cursor=CDC_CURSOR,
                          primary_key=pk, table=table)
    return StreamPlan(stream=stream, mode=mode, write=write,
                      cursor=cursor if mode == "incremental" else None, primary_key=pk, table=table,
                      lookback_s=lookback_seconds(lookback) if mode == "incremental" else 0,
                      reconcile_every=cfg.reconcile_every if cfg.deletes == "reconcile" else None)


def _check_reconcile(fail: Callable[[str, str], ConfigurationError], abilities: SourceAbilities,
                     mode: Mode, write: Write) -> None:
    """`deletes: reconcile` compares the keys of an incremental stream read by a cursor column."""
    if not abilities.sql_cursor:
        raise fail("deletes: reconcile reads every key of the source: PostgreSQL, MySQL and SQLite "
                   "sources", "remove `deletes: reconcile`; a full refresh under merge marks "
                   "deletes for other sources")
    if mode != "incremental":
        raise fail(f"deletes: reconcile is for incremental streams (this one is {mode}, which "
                   + ("sees deletes in the log)" if mode == "cdc" else "sees deletes by reading "
                      "everything)"), "remove `deletes: reconcile` from this stream")
    if write not in KEYED_WRITES:
        raise fail(f"deletes: reconcile marks rows deleted by key, and write: {write} keeps no "
                   "single row per key", "use write: merge (or history) with a primary key")


def _check_incremental(fail: Callable[[str, str], ConfigurationError], abilities: SourceAbilities,
                       pk: tuple[str, ...], write: Write, lookback: str | None) -> None:
    """An incremental read resumes after (cursor, key): without a key, rows sharing the last
    cursor value are lost after a crash; a re-read window appended is a duplicate."""
    if abilities.incremental_needs_key and not pk:
        raise fail("incremental mode needs a primary key or a unique column, and the stream has "
                   "none: rows sharing the last cursor value would be lost after an interruption",
                   "set `primary_key: [col, ...]` to columns unique per row, or use mode: full_refresh")
    if lookback_seconds(lookback) > 0 and write == "append":
        raise fail(f"the stream re-reads a lookback window ({lookback}) on every incremental read, "
                   "and write: append would add those rows again",
                   "use write: merge (with a primary key), or set `lookback: 0s` on the stream (or "
                   "remove it from the source)")


def _declared(stream: StreamSchema, cfg: StreamConfig, abilities: SourceAbilities,
              fail: Callable[[str, str], ConfigurationError]) -> StreamSchema:
    """The stream with the column types its `fields:` declare."""
    if not cfg.fields:
        return stream
    if not abilities.sql_cursor:
        raise fail("`fields:` of a connection's stream is read by PostgreSQL, MySQL and SQLite "
                   "sources only", "declare the types in the source's own stream definition (REST "
                   "`fields:`), or remove `fields:`")
    unknown = [f for f in cfg.fields if stream.column(f) is None]
    if unknown:
        raise fail(f"`fields:` names column(s) {', '.join(unknown)} the stream does not have",
                   f"use columns of the stream: {', '.join(stream.column_names)}")
    return replace(stream, columns=tuple(
        replace(c, type=DataType.parse(cfg.fields[c.name])) if c.name in cfg.fields else c
        for c in stream.columns))


def _nullable(stream: StreamSchema, name: str) -> bool:
    col = stream.column(name)
    return col is None or col.nullable


_CHANGE_WORDS = ("updated", "modified", "changed", "version")


def _safe_default_cursor(stream: StreamSchema, name: str) -> bool:
    """Only a column that moves on every change may be picked without being named.

    An increasing id is a cursor candidate for append-only tables, but picked silently
    it would never see an update, so it must be chosen explicitly with `cursor:`.
    """
    col = stream.column(name)
    if col is None:
        return False
    return col.type.kind in ("timestamp", "timestamptz", "date") or any(
        w in name.lower() for w in _CHANGE_WORDS
    )
