"""What travels from a source to a destination: read requests, checkpoints, bad records."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

import pyarrow as pa

from syncline.schema import StreamSchema

Mode = Literal["full_refresh", "incremental", "cdc"]
Write = Literal["append", "merge", "replace"]


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


StreamItem = pa.RecordBatch | Checkpoint | BadRecord | Notice | SchemaChange
