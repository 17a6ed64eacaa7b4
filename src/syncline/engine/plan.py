"""Which streams a run reads, and how: mode, write disposition, cursor, key and table."""

from __future__ import annotations

from dataclasses import dataclass, replace

from syncline.config import ConnectionConfig, StreamConfig
from syncline.errors import ConfigurationError
from syncline.schema import INT64, Column, StreamSchema
from syncline.stream import Mode, Write

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


@dataclass(frozen=True)
class SourceAbilities:
    modes: frozenset[str]
    incremental_needs_cursor: bool = True


def plan_connection(
    name: str,
    conn: ConnectionConfig,
    discovered: list[StreamSchema],
    abilities: SourceAbilities,
    only: list[str] | None = None,
) -> list[StreamPlan]:
    by_name = {s.name: s for s in discovered}
    wanted: dict[str, StreamConfig]
    if conn.streams is None:
        wanted = {s.name: StreamConfig() for s in discovered}
    else:
        wanted = {k: v for k, v in conn.streams.items() if v.selected}
    missing = [s for s in wanted if s not in by_name]
    if missing:
        raise ConfigurationError(
            f"stream(s) {', '.join(missing)} not found in source '{conn.source}'",
            connection=name,
            fix=f"use discovered streams: {', '.join(sorted(by_name)) or '(none)'}; "
            f"see `syncline discover {conn.source}`",
        )
    if only:
        unknown = [s for s in only if s not in wanted]
        if unknown:
            raise ConfigurationError(
                f"--stream {', '.join(unknown)} is not a stream of this connection",
                connection=name,
                fix=f"choose from: {', '.join(sorted(wanted))}",
            )
        wanted = {k: v for k, v in wanted.items() if k in only}
    return [_plan_stream(name, by_name[s], cfg, abilities) for s, cfg in wanted.items()]


def _plan_stream(
    connection: str, stream: StreamSchema, cfg: StreamConfig, abilities: SourceAbilities
) -> StreamPlan:
    def fail(message: str, fix: str) -> ConfigurationError:
        return ConfigurationError(message, connection=connection, stream=stream.name, fix=fix)

    pk = tuple(cfg.primary_key) if cfg.primary_key is not None else stream.primary_key
    for col in pk:
        if stream.column(col) is None:
            raise fail(f"primary_key column '{col}' does not exist",
                       f"use columns of the stream: {', '.join(stream.column_names)}")
    cursor = cfg.cursor
    if cursor is not None and stream.column(cursor) is None:
        raise fail(f"cursor column '{cursor}' does not exist",
                   f"use one of: {', '.join(stream.cursor_candidates or stream.column_names)}")
    auto_cursors = [c for c in stream.cursor_candidates if _safe_default_cursor(stream, c)]
    mode: Mode
    if cfg.mode is not None:
        mode = cfg.mode
    elif cursor or not abilities.incremental_needs_cursor or (auto_cursors and pk):
        mode = "incremental"
    else:
        mode = "full_refresh"
    if mode not in abilities.modes:
        raise fail(f"mode {mode} is not supported by this source",
                   f"use one of: {', '.join(sorted(abilities.modes))}")
    if mode == "incremental" and abilities.incremental_needs_cursor and cursor is None:
        if cfg.mode is not None and not auto_cursors:
            raise fail("incremental mode needs a cursor column and this stream has no candidate",
                       "set `cursor:` to a column that grows on every change, or use mode: full_refresh")
        cursor = auto_cursors[0] if auto_cursors else None
        if cursor is None:
            raise fail("incremental mode needs a cursor column", "set `cursor:` for this stream")
    write: Write
    if cfg.write is not None:
        write = cfg.write
    elif pk:
        write = "merge"
    else:
        write = "replace" if mode == "full_refresh" else "append"
    if write == "merge" and not pk:
        raise fail("write: merge needs a primary key and the stream has none",
                   "set `primary_key: [col, ...]`, or use write: append")
    if write == "replace" and mode != "full_refresh":
        raise fail(f"write: replace only goes with mode: full_refresh (mode is {mode})",
                   "use write: merge or append, or mode: full_refresh")
    table = cfg.table or stream.name.split(".")[-1]
    if mode == "cdc":
        if write != "merge" or not pk:
            raise fail("mode: cdc needs write: merge and a primary key (deletes and updates are "
                       "applied by key)", "set `primary_key:` and `write: merge`, or use another mode")
        # latest change wins: the destination compares the system LSN column
        stream = replace(stream, columns=(*stream.columns, Column(CDC_CURSOR, INT64)))
        return StreamPlan(stream=stream, mode=mode, write=write, cursor=CDC_CURSOR,
                          primary_key=pk, table=table)
    return StreamPlan(stream=stream, mode=mode, write=write,
                      cursor=cursor if mode == "incremental" else None, primary_key=pk, table=table)


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
