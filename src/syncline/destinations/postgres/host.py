"""What a PostgreSQL loader needs of the destination that made it, as a protocol: the loader
names it without importing the destination back."""

from __future__ import annotations

from typing import Any, Protocol

import psycopg

from syncline.errors import SynclineError
from syncline.schema import DataType


class LoaderHost(Protocol):
    """What a loader needs of the PostgreSQL destination that made it (no import back)."""

    @property
    def con(self) -> psycopg.Connection[Any]: ...

    def classify(self, exc: psycopg.Error, doing: str, *, connection: str | None = None,
                 stream: str | None = None, schema: str | None = None) -> SynclineError: ...

    def fence_token(self, schema: str, connection: str, *, lock: bool = False) -> int | None: ...

    def has_primary_key(self, schema: str, table: str) -> bool: ...

    def table_is_empty(self, schema: str, table: str) -> bool: ...

    def key_is_unique(self, schema: str, table: str, key: tuple[str, ...]) -> bool: ...

    def set_system_defaults(self, schema: str, table: str) -> None: ...

    def not_null_columns(self, schema: str, table: str) -> set[str]: ...

    def relax_not_null(self, schema: str, table: str, keep: set[str]) -> None: ...

    def rename_primary_key(self, schema: str, table: str) -> None: ...

    def table_columns(self, schema: str, table: str) -> dict[str, DataType] | None: ...

    def write_state(self, schema: str, stream: str, state: dict[str, Any], run_id: int) -> None: ...
