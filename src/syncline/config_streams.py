"""How one stream of a connection is replicated: the `streams:` entries of syncline.yaml."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from syncline.schedule import duration_text
from syncline.schema import declared_types
from syncline.stream import Mode, Write, lookback_seconds


class Model(BaseModel):
    """A part of syncline.yaml: unknown keys refused, frozen once read."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class StreamConfig(Model):
    """How one stream of a connection is replicated."""

    mode: Mode | None = Field(
        None, description="full_refresh, incremental (needs a cursor) or cdc; default: incremental "
        "when the stream has a cursor candidate, else full_refresh."
    )
    write: Write | None = Field(
        None, description="append, merge (upsert on the primary key), replace, or history (every "
        "version of a row kept, with _syncline_valid_from/_valid_to/_is_current; needs a primary "
        "key); default: merge when the stream has a primary key, else append; replace for "
        "full_refresh without a key."
    )
    cursor: str | None = Field(None, description="Column whose growth marks new or changed rows.")
    primary_key: list[str] | None = Field(None, description="Default: the source's primary key.")
    table: str | None = Field(
        None, description="Destination table, normalized to snake_case as stream names are "
        "(`Order Lines` → order_lines); `SCHEMA.TABLE` writes it into schema SCHEMA (its state stays "
        "in the connection's schema); a table already loaded under its written name keeps it. Default: "
        "named by the connection's `table_names:`.")
    selected: bool = Field(True, description="false leaves the stream out of the connection.")
    max_shrink: float | None = Field(
        None, ge=0, le=1, description="Default: the connection's `max_shrink`."
    )
    max_cursor_skew: str | None = Field(
        None, description="Default: the connection's `max_cursor_skew`.")
    fields: dict[str, str] = Field(
        default_factory=dict, description="Canonical types by column, overriding the source's "
        "mapping (e.g. {is_admin: boolean, amount: decimal(12,2)}); a value that does not convert "
        "exactly goes to quarantine. PostgreSQL, MySQL and SQLite sources.")
    freshness_sla: str | None = Field(
        None, description="<N>s|m|h|d: this stream's data may be at most this old (from the moment "
        "the read of its last successful run began); `status` calls the connection late past it. "
        "Default: the connection's `freshness_sla`.")
    lookback: str | None = Field(
        None, description="incremental: re-read this window (e.g. 5m, 2h; 0s for none) below the "
        "last date or time cursor value on every run, for writers that stamp rows with their own "
        "clock; default: the source's `lookback:` (PostgreSQL, MySQL, SQLite). Needs write: merge.")
    deletes: Literal["ignore", "reconcile"] = Field(
        "ignore", description="incremental: `reconcile` finds the keys gone from the source every "
        "`reconcile_every` runs (by comparing key buckets) and marks them _syncline_deleted; a "
        "cursor read never sees a delete. PostgreSQL, MySQL and SQLite sources; write: merge or "
        "history.")
    reconcile_every: int = Field(
        10, ge=1, description="With `deletes: reconcile`: every how many runs of the stream.")

    _types = field_validator("fields")(declared_types)

    @field_validator("lookback", "max_cursor_skew")
    @classmethod
    def _window(cls, value: str | None) -> str | None:
        lookback_seconds(value)
        return value

    _sla = field_validator("freshness_sla")(duration_text)
