"""The plan of a connection from its configuration alone, reaching no source or destination.

`check --offline` (for CI, where the databases are not reachable) uses it: everything the
workspace file decides is checked here with the same rules as `plan_connection`; what only
discovery knows (a stream's columns, its key, a cursor candidate) is left as None.
"""

from __future__ import annotations

from dataclasses import dataclass

from syncline.config import ConnectionConfig, StreamConfig
from syncline.engine.plan import (
    SourceAbilities,
    configured_table,
    default_table,
    refuse_shared_tables,
    schema_names,
)
from syncline.errors import ConfigurationError
from syncline.stream import KEYED_WRITES, Mode, Write, lookback_seconds


@dataclass(frozen=True)
class OfflinePlan:
    stream: str
    table: str
    #: None: decided at discovery, from the stream's columns and key
    mode: Mode | None
    write: Write | None
    cursor: str | None
    primary_key: tuple[str, ...] | None


def plan_offline(name: str, conn: ConnectionConfig, abilities: SourceAbilities) -> list[OfflinePlan]:
    """The plan of every stream the connection lists; [] when it lists none (every discovered
    stream is taken, which only discovery can name)."""
    if conn.streams is None:
        return []
    wanted = {s: cfg for s, cfg in conn.streams.items() if cfg.selected}
    schemas = schema_names(name, conn)
    tables = {s: ".".join(p for p in configured_table(cfg.table, schemas) if p) if cfg.table
              else default_table(s, conn.table_names) for s, cfg in wanted.items()}
    refuse_shared_tables(name, tables)
    return [_plan(name, s, cfg, abilities, tables[s]) for s, cfg in wanted.items()]


def _plan(connection: str, stream: str, cfg: StreamConfig, abilities: SourceAbilities,
          table: str) -> OfflinePlan:
    def fail(message: str, fix: str) -> ConfigurationError:
        return ConfigurationError(message, connection=connection, stream=stream, fix=fix)

    mode, write = cfg.mode, cfg.write
    pk = tuple(cfg.primary_key) if cfg.primary_key is not None else None
    if mode is not None and mode not in abilities.modes:
        raise fail(f"mode {mode} is not supported by this source",
                   f"use one of: {', '.join(sorted(abilities.modes))}")
    if write in KEYED_WRITES and pk == ():
        raise fail(f"write: {write} needs a primary key and `primary_key:` is empty",
                   "list the key columns in `primary_key:`, or use write: append")
    if write == "replace" and mode is not None and mode != "full_refresh":
        raise fail(f"write: replace only goes with mode: full_refresh (mode is {mode})",
                   "use write: merge or append, or mode: full_refresh")
    if mode == "cdc" and (write not in (None, *KEYED_WRITES) or pk == ()):
        raise fail("mode: cdc needs write: merge (or history) and a primary key (deletes and "
                   "updates are applied by key)",
                   "set `primary_key:` and `write: merge`, or use another mode")
    lookback = cfg.lookback if cfg.lookback is not None else abilities.lookback
    if cfg.lookback is not None and not abilities.sql_cursor:
        raise fail("`lookback:` is read by PostgreSQL, MySQL and SQLite sources only",
                   "remove `lookback:` from this stream")
    if mode == "incremental" and write == "append" and lookback_seconds(lookback) > 0:
        raise fail(f"the stream re-reads a lookback window ({lookback}) on every incremental read, "
                   "and write: append would add those rows again",
                   "use write: merge (with a primary key), or set `lookback: 0s` on the stream (or "
                   "remove it from the source)")
    if mode == "incremental" and pk == () and abilities.incremental_needs_key:
        raise fail("incremental mode needs a primary key or a unique column, and `primary_key:` "
                   "is empty: rows sharing the last cursor value would be lost after an "
                   "interruption", "set `primary_key: [col, ...]`, or use mode: full_refresh")
    return OfflinePlan(stream=stream, table=table, mode=mode, write=write,
                       cursor=cfg.cursor if mode != "full_refresh" else None, primary_key=pk)
