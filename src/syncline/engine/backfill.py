"""Re-reading one incremental stream from a cursor value (`sync --since`) and moving a
checkpoint by hand (`state --set`).

Both put the checkpoint at ``(VALUE, no key)``. A read under `write: merge` or `history`
takes the rows at the checkpoint's cursor value again, so the read starts at ``cursor >=
VALUE``; the merge makes the rows already loaded harmless. A backfill only ever reads more:
a value past the checkpoint is refused (that would skip rows), while `state --set` may move
a checkpoint either way, as its user says.
"""

from __future__ import annotations

import datetime as dt
import decimal
from typing import Any

from syncline.errors import ConfigurationError
from syncline.schema import DataType
from syncline.stream import KEYED_WRITES

#: checkpoint fields that belong to a position inside a read, not to its cursor value
_INSIDE = ("null_key", "closed", "key")


def at_value(checkpoint: dict[str, Any] | None, value: str) -> dict[str, Any]:
    """A source checkpoint that resumes at cursor ``value`` (rows at it included under merge)."""
    kept = {k: v for k, v in (checkpoint or {}).items() if k not in _INSIDE}
    return {**kept, "cursor": value, "key": []}


def comparable(value: Any, t: DataType) -> Any:
    """A cursor value (the user's text, or a checkpoint's) as a Python value ordered like the
    column; raises ValueError when it is not one."""
    if t.kind in ("int32", "int64"):
        return int(value)
    if t.kind in ("decimal", "float64"):
        return decimal.Decimal(str(value))
    if t.kind == "date":
        return dt.date.fromisoformat(str(value)[:10])
    if t.kind in ("timestamp", "timestamptz"):
        at = dt.datetime.fromisoformat(str(value))
        return at.replace(tzinfo=dt.UTC) if at.tzinfo is None else at.astimezone(dt.UTC)
    return str(value)


def since_checkpoint(*, connection: str, stream: str, mode: str, write: str, cursor: str | None,
                     cursor_type: DataType | None, sql_cursor: bool,
                     checkpoint: dict[str, Any] | None, value: str) -> dict[str, Any] | None:
    """The checkpoint a `sync --since VALUE` of an incremental stream reads from (None: the
    stream was never read, so it reads everything anyway). Refuses what would skip rows or
    load rows twice, naming the fix."""
    def fail(message: str, fix: str) -> ConfigurationError:
        return ConfigurationError(message, connection=connection, stream=stream, fix=fix)

    if mode != "incremental" or cursor is None or cursor_type is None:
        raise fail(f"--since re-reads an incremental stream from a cursor value; this one is {mode}",
                   "use `--full-refresh` to read it again")
    if write not in KEYED_WRITES:
        raise fail(f"--since re-reads rows already loaded, and write: {write} would add them again",
                   "use write: merge (or history), or `state --set` to move the checkpoint")
    if not sql_cursor:
        raise fail("--since needs a source that reads by a cursor column: PostgreSQL, MySQL or "
                   "SQLite", "reset the stream's checkpoint (`syncline state --reset`) to read it "
                   "again from the start")
    try:
        wanted = comparable(value, cursor_type)
    except (ValueError, decimal.InvalidOperation):
        raise fail(f"--since {value!r} is not a value of the cursor column '{cursor}' "
                   f"({cursor_type})", f"write a {cursor_type} value, e.g. "
                   f"{_example(cursor_type)}") from None
    if checkpoint is None:
        return None
    last = checkpoint.get("cursor")
    if last is not None:
        try:
            beyond = wanted > comparable(last, cursor_type)
        except (ValueError, decimal.InvalidOperation, TypeError):
            beyond = False  # the checkpoint's form is the source's own: the source compares
        if beyond:
            raise fail(f"--since {value} is past the stream's checkpoint ({last}): a backfill "
                       "reads again, it never skips rows",
                       f"give a value at or below {last}, or move the checkpoint on purpose "
                       f"with `syncline state {connection} --set {stream}={value}`")
    return at_value(checkpoint, value)


def _example(t: DataType) -> str:
    return {"int32": "1000", "int64": "1000", "date": "2026-03-01",
            "timestamp": "'2026-03-01 00:00:00'", "timestamptz": "'2026-03-01T00:00:00Z'"}.get(
        t.kind, "the value as the source writes it")


def moved_state(state: dict[str, Any] | None, *, connection: str, stream: str, value: str,
                known: list[str]) -> dict[str, Any]:
    """The state row `state --set STREAM=VALUE` commits: the checkpoint at ``value``, with a
    note of where it was (the next run says so)."""
    def fail(message: str, fix: str) -> ConfigurationError:
        return ConfigurationError(message, connection=connection, stream=stream, fix=fix)

    if state is None:
        raise fail(f"no checkpoint for stream '{stream}' of {connection}",
                   f"set one of: {', '.join(known) or '(none yet)'}")
    source = state.get("source")
    if "corrupt" in state or state.get("mode") != "incremental" or state.get("phase") != "complete" \
            or not isinstance(source, dict) or "cursor" not in source:
        raise fail(f"the checkpoint of '{stream}' is not a cursor position of a completed "
                   f"incremental read (mode {state.get('mode')}, phase {state.get('phase')})",
                   f"`syncline state {connection} --reset {stream}` reads it from the start")
    moved = {"from": source.get("cursor"), "to": value,
             "at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds")}
    return {**state, "source": at_value(source, value), "moved": moved}
