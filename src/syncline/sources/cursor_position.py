"""Where an incremental read of a database resumes: its checkpoint's `(cursor, key)`, and the rows whose cursor is NULL.

A checkpoint holds the last row read as `cursor` and `key`. Rows whose cursor is NULL
sort first. On a stream's first read they are all read (`cursor` None and `key` the last
NULL row's key while inside them). Under `write: merge` (`ReadRequest.nulls_every_run`)
every read takes them again, since a row inserted or updated later with a NULL cursor
has no value to be found by: while a read is inside them its checkpoints keep the
position the read began at, with `null_key` the key of the last NULL row read, and when
they are done the read marks the position again without `null_key`, so the next read
takes every NULL row once more.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from syncline.stream import Checkpoint, ReadRequest, StreamItem


@dataclass(frozen=True)
class Position:
    """The last non-NULL `(cursor, key)` read (`cursor` None: none yet), and inside the NULL
    rows of a read, the key of the last one (`null_key`)."""

    cursor: Any
    key: list[Any]
    null_key: list[Any] | None

    @classmethod
    def of(cls, checkpoint: dict[str, Any] | None) -> Position | None:
        if not checkpoint:
            return None
        cursor, key = checkpoint.get("cursor"), list(checkpoint.get("key") or [])
        if "null_key" in checkpoint:
            return cls(cursor, key, list(checkpoint["null_key"]))
        if cursor is None and key:  # a first read stopped inside the leading NULL rows
            return cls(None, [], key)
        return cls(cursor, key, None)


def with_null_rows(items: Iterator[StreamItem], req: ReadRequest) -> Iterator[StreamItem]:
    """The items of an incremental read under `nulls_every_run`, its checkpoints as the module
    docstring says: a NULL row's keeps the position the read began at."""
    if not req.nulls_every_run:
        yield from items
        return
    start = Position.of(req.checkpoint) or Position(None, [], None)
    # the checkpoint a read still inside the NULL rows ends with (the one it began at, or
    # its last NULL row's)
    inside: dict[str, Any] | None = dict(req.checkpoint or {}) if start.null_key is not None else None
    for item in items:
        if isinstance(item, Checkpoint) and item.value.get("cursor") is None and "key" in item.value:
            inside = item.value
            item = Checkpoint({**item.value, "cursor": start.cursor, "key": start.key,
                               "null_key": item.value["key"]})
        elif isinstance(item, Checkpoint):
            inside = None
        yield item
    if inside is not None:  # every NULL row read: the next read takes them all again
        done = {k: v for k, v in inside.items() if k != "null_key"}
        yield Checkpoint({**done, "cursor": start.cursor, "key": start.key})
