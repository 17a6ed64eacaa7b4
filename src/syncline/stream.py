"""What travels from a source to a destination: read requests, checkpoints, bad records."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Literal

import pyarrow as pa

from syncline.schema import StreamSchema

Mode = Literal["full_refresh", "incremental", "cdc"]
Write = Literal["append", "merge", "replace", "history"]
#: Writes that keep one live row per key, replacing it by a newer version.
KEYED_WRITES = ("merge", "history")

#: A `lookback:` window: a whole number and a unit, `0s` for none.
LOOKBACK = re.compile(r"^\s*(\d+)\s*(s|m|h|d)\s*$")
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def lookback_seconds(text: str | None) -> int:
    """Seconds of a `lookback:` window (`5m` → 300); 0 for None. Raises ValueError when malformed."""
    if text is None:
        return 0
    m = LOOKBACK.match(text)
    if not m:
        raise ValueError("expected a number and a unit s, m, h or d, e.g. 5m")
    return int(m.group(1)) * _UNIT_SECONDS[m.group(2)]


@dataclass(frozen=True)
class Checkpoint:
    """A position in a stream: everything emitted before it is covered by it.

    ``value`` is JSON-serialisable and owned by the source (a compound cursor, a
    key position, a file offset map); the engine stores it untouched.
    """

    value: dict[str, Any]


@dataclass(frozen=True)
class BadRecord:
    """A record that cannot be represented in the stream's schema: quarantined, counted."""

    record: dict[str, Any]
    error: str


@dataclass(frozen=True)
class Notice:
    """Something the user should know that does not stop the stream (the run ends as a warning)."""

    message: str


@dataclass(frozen=True)
class SchemaChange:
    """The stream's shape changed during the read; recorded with the run's schema changes.

    With ``stream``, the items after it carry that schema (the old columns and new ones):
    the destination adds the new columns before loading them, in the same run. A source
    yields it only where nothing is uncommitted (at the start, or after a checkpoint).
    Without ``stream``, the change needs the user's attention (a field that stopped
    arriving) and the run ends as a warning.
    """

    changes: tuple[str, ...]
    stream: StreamSchema | None = None


@dataclass(frozen=True)
class ReadRequest:
    """What the engine asks a source for, one stream at a time."""

    stream: StreamSchema
    mode: Mode
    cursor: str | None = None
    primary_key: tuple[str, ...] = ()
    checkpoint: dict[str, Any] | None = None
    batch_size: int = 50_000
    options: dict[str, Any] = field(default_factory=dict)
    #: incremental: also read again this many seconds below the checkpoint's date or time
    #: cursor (writers that stamp rows with their own clock)
    lookback_s: int = 0
    #: incremental: read again the rows whose cursor equals the checkpoint's (under merge,
    #: where a repeat is harmless), unless the checkpoint says no row can take that value
    #: any more (`closed`: the read stopped below the start of every open transaction)
    inclusive: bool = False
    #: incremental: read the rows whose cursor is NULL on every read, not only the first
    #: (under merge; see `sources.cursor_position`)
    nulls_every_run: bool = False
    #: incremental, date or time cursor: the checkpoint stays at most this many seconds past
    #: the source's clock; rows dated beyond are counted in a notice and, under merge
    #: (`inclusive`), loaded again on every read
    max_skew_s: int = 86400
    #: the primary key is declared, not one the source enforces: the read fails with
    #: `RepeatedKeys` before its first row when a key value repeats within it
    check_key: bool = False


StreamItem = pa.RecordBatch | Checkpoint | BadRecord | Notice | SchemaChange
