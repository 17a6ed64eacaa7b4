"""The `type: postgres` source configuration, and the database address it names."""

from __future__ import annotations

from typing import Any, Literal

import psycopg
from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator

from syncline.stream import lookback_seconds


class PostgresConfig(BaseModel):
    """A PostgreSQL database: `dsn:`, or `host:`/`port:`/`user:`/`password:`/`database:`."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    type: Literal["postgres"]
    dsn: SecretStr | None = Field(
        None, description="libpq connection string or postgresql:// URL; instead of host/user/database."
    )
    host: str | None = Field(None, description="Server host name or address.")
    port: int = Field(5432, ge=1, le=65535, description="Server port.")
    user: str | None = Field(None, description="Role to connect as; it needs SELECT on the tables.")
    password: SecretStr | None = Field(
        None, description="Password, usually `${env:NAME}`; never printed (also allowed with `dsn:`)."
    )
    database: str | None = Field(None, description="Database name.")
    schemas: list[str] | None = Field(None, description="Only these schemas (default: all non-system).")
    include_views: bool = Field(False, description="Also offer views and materialized views as streams.")
    tables: list[str] | None = Field(None, description="Only these tables, as `schema.table`.")
    lookback: str | None = Field(
        None, description="Re-read this window (e.g. 5m, 2h) below the last cursor of date/timestamp "
        "cursors on every incremental read, for writers that stamp rows with their own clock; the "
        "default of the source's streams (a stream's `lookback:` overrides it); needs write: merge."
    )
    connect_timeout: int = Field(10, ge=1, description="Seconds to wait for a connection.")
    publication: str | None = Field(
        None, description="mode: cdc: the publication to decode (default `syncline_<source name>`).")
    slot: str | None = Field(
        None, description="mode: cdc: prefix of the logical replication slots, one per stream, named "
        "`<slot>_<table>` (default `syncline_<source name>`).")
    create_publication: bool = Field(
        True, description="mode: cdc: create the publication, or add a stream's table to it, when "
        "missing; false requires it to exist.")
    cdc_max_changes: int = Field(
        1_000_000, ge=1, description="mode: cdc: at most this many changes are decoded per read; the "
        "rest follow in the next run.")

    @field_validator("password", mode="before")
    @classmethod
    def _password_text(cls, value: Any) -> Any:
        # an unquoted numeric password in YAML arrives as a number; an error would print it
        return str(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else value

    @field_validator("tables")
    @classmethod
    def _qualified(cls, value: list[str] | None) -> list[str] | None:
        for t in value or []:
            if "." not in t:
                raise ValueError(f"'{t}' must be written schema.table, e.g. public.{t}")
        return value

    @field_validator("lookback")
    @classmethod
    def _window(cls, value: str | None) -> str | None:
        lookback_seconds(value)
        return value


def database_address(config: BaseModel) -> tuple[str, int, str]:
    """(host, port, database) of a PostgreSQL source or destination configuration, from its
    `dsn:` or its separate keys: two configurations with one address are one database."""
    keys = {"host": getattr(config, "host", None), "port": getattr(config, "port", None),
            "dbname": getattr(config, "database", None)}
    dsn = getattr(config, "dsn", None)
    if dsn is not None:
        try:
            keys.update(psycopg.conninfo.conninfo_to_dict(dsn.get_secret_value()))
        except psycopg.Error:
            pass
    return (str(keys.get("host") or "localhost"), int(str(keys.get("port") or 5432)),
            str(keys.get("dbname") or ""))
