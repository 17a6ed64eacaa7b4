"""The Source interface every connector implements."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from syncline.schema import Column, StreamSchema
from syncline.stream import ReadRequest, StreamItem

#: Column names that mark a row's last change: offered first as cursors.
CURSOR_NAMES = (
    "updated_at", "modified_at", "last_modified", "last_modified_at", "updated", "modified",
    "changed_at", "last_updated", "last_updated_at", "updated_on", "modified_on",
)


class Source(ABC):
    """A configured connector that reads.

    ``read`` yields Arrow record batches in the stream's ``arrow_schema()``,
    interleaved with ``Checkpoint`` marks (everything before a mark is covered
    by it) and ``BadRecord`` items for rows that cannot be represented.
    """

    #: Modes this source can serve.
    modes: frozenset[str] = frozenset({"full_refresh", "incremental"})
    #: False when the source tracks its own position (file offsets, page tokens).
    incremental_needs_cursor: bool = True
    #: True when the checkpoints of a fresh full-refresh read carry `fingerprint`, taken in
    #: the read's own snapshot (no separate pass before it); the newest one stands.
    fingerprint_in_read: bool = False
    #: Modes in which one read is one snapshot of a table: each value of the table's own
    #: primary key comes at most once, so a first load into an empty table needs no merge.
    snapshot_modes: frozenset[str] = frozenset()
    #: True when an incremental read without a key compares on the cursor alone (no rowid to
    #: break ties): such a stream must declare a unique `primary_key:`.
    incremental_needs_key: bool = False
    #: True for database sources that read a cursor column in SQL: they take a `lookback:`
    #: window below a date or time cursor, and rows whose cursor is NULL as
    #: `cursor_position` says (on every read under merge, on the first read only otherwise).
    sql_cursor: bool = False

    def __init__(self, name: str, config: BaseModel, context: SourceContext) -> None:
        self.name = name
        self.config = config
        self.context = context

    @abstractmethod
    def check(self) -> None:
        """Raise a ConfigurationError or SourceError when the source cannot be read."""

    @abstractmethod
    def discover(self) -> list[StreamSchema]:
        """Every stream the source offers, with columns, primary key and cursor candidates."""

    @abstractmethod
    def read(self, request: ReadRequest) -> Iterator[StreamItem]:
        """Rows of one stream after ``request.checkpoint``, in bounded batches."""

    def lookback(self) -> str | None:
        """The window re-read below the last cursor on every incremental read (e.g. 5m), if any."""
        return None

    def reread(self, stream: StreamSchema) -> tuple[str, float] | None:
        """The cursor column and the seconds below its last value that the source itself asks
        for again on every incremental read of ``stream`` (a REST cursor's ``lookback_s``),
        besides the ``lookback:`` window the engine passes in the request; None when it re-reads
        nothing. Re-reading that window is not going back."""
        return None

    def incremental_without_cursor(self, stream: StreamSchema) -> bool:
        """Whether an incremental read of the stream with no cursor still reads only what changed
        (file offsets, page tokens, a change log). A source that would read the whole stream
        again says False, and such a stream is planned as a full refresh unless a `cursor:` is
        named."""
        return not self.incremental_needs_cursor

    def orderable(self, column: Column) -> bool:
        """Whether the source can compare the column's values in its own queries (find their
        largest), as a cursor needs; a source that cannot (PostgreSQL's uuid, jsonb) says False."""
        return True

    def preflight(self, requests: list[ReadRequest]) -> None:
        """Raise a ConfigurationError for what these reads need and the source lacks (a server
        setting, a privilege), before any row is read: `check` and `sync` both ask."""

    def unreadable(self) -> dict[str, str]:
        """Streams the last `discover` found but the source's user may not read, each with the
        statements that grant it (so a stream named in the workspace is refused as a missing
        privilege, not as a missing table)."""
        return {}

    def late_commits_refusal(self) -> tuple[str, str] | None:
        """Why this source cannot hold an incremental read back from rows that transactions
        still open will commit (`late_commits`), and the fix; None when it can or need not."""
        return None

    def count(self, stream: StreamSchema) -> int | None:
        """Rows the stream holds now, when cheap to know (for verification)."""
        return None

    def estimate(self, stream: StreamSchema) -> int | None:
        """Rows the stream holds now, roughly, for progress bars; by default the exact count."""
        return self.count(stream)

    def batch_rows(self, stream: StreamSchema) -> int | None:
        """Rows per batch for about 24 MiB of data, if the source can tell; else None (50,000)."""
        return None

    def fingerprint(self, stream: StreamSchema) -> str | None:
        """A value that changes whenever the stream's rows may have changed, or None if unknown.

        A full refresh killed mid-build resumes after its last key only while this is
        unchanged since the build began; otherwise the build starts over, so no row
        copied before the change (stale, or deleted since) is published. A false
        "changed" costs a re-read; a false "unchanged" would publish stale rows, so
        when in doubt it must change.
        """
        return None

    def full_refresh_resumes(self, stream: StreamSchema) -> bool:
        """Whether a full refresh of the stream, interrupted after a commit, can go on from
        its last committed checkpoint and read only the rows after it.

        True for sources whose full-refresh checkpoints carry a position (a key, a file, a
        page token). A source that would read the stream again from its first row must say
        False: the engine then starts the interrupted build over instead of appending the
        whole stream to the rows already built.
        """
        return True

    def changed_since(self, stream: StreamSchema, fingerprint: str) -> bool:
        """Whether the stream's rows may have changed since ``fingerprint()`` returned this value."""
        return self.fingerprint(stream) != fingerprint

    def abandon(self) -> None:
        """Called from another thread when the engine stops waiting for a read in progress (a
        failed commit, a stop): a read that may block on another process unblocks it (a Singer
        tap is killed). By default nothing: the read ends at its next item."""

    def request_figures(self, stream: str) -> dict[str, Any] | None:
        """What an API source's requests for `stream` did so far (sent, retried, answered by
        status, seconds waited on Retry-After and on the rate limit); None for other sources."""
        return None

    def close(self) -> None:
        """Release connections and files."""

    def __enter__(self) -> Source:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class SourceContext(BaseModel):
    """What a source may know of its surroundings: where relative paths start, and which
    schemas hold the workspace's own destination tables (never offered as streams)."""

    root: str
    own_schemas: tuple[str, ...] = ()
    state_dir: str | None = None  # the workspace's private folder; default: <root>/.syncline

    def private_dir(self) -> Path:
        """The workspace's private state folder (owner only), for files that may hold secrets."""
        return Path(self.state_dir) if self.state_dir else Path(self.root) / ".syncline"


#: Tables Syncline writes itself (state, loads, fence, quarantine): never offered as streams.
OWN_TABLE_PREFIX = "_syncline_"
#: A full refresh builds `<table>__syncline_building` beside the live table.
BUILDING_SUFFIX = "__syncline_building"


def is_own_table(name: str) -> bool:
    """Whether a table is one Syncline writes itself, and so never a stream of a source."""
    return name.startswith(OWN_TABLE_PREFIX) or name.endswith(BUILDING_SUFFIX)
