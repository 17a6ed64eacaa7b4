"""The late-commit horizon of a PostgreSQL incremental read (`late_commits`), and the privilege it needs."""

from __future__ import annotations

import datetime as dt
from typing import Any

import psycopg
from psycopg import sql

from syncline.schema import Column
from syncline.sources.late_commits import Horizon, OpenTransaction, fraction_digits

#: Syncline tags its sessions with this `application_name`; their transactions write no stream.
APPLICATION_NAME = "syncline"
#: The predefined role whose members see every session's `xact_start` in pg_stat_activity.
STATS_ROLE = "pg_read_all_stats"

# Listed outside the read's transaction (pg_stat_activity is cached for a whole transaction)
# and before its snapshot. Other databases' sessions cannot write these tables. The listing
# time is the statement's start (statement_timestamp), taken before the activity is read: a
# transaction begun after it stamps its rows later. The writers' time zone comes along.
_OLDEST_OPEN = """
SELECT statement_timestamp(), o.pid, o.xact_start,
       (SELECT reset_val FROM pg_settings WHERE name = 'TimeZone')
FROM (SELECT 1) AS one LEFT JOIN LATERAL (
  SELECT a.pid, a.xact_start FROM pg_stat_activity a
  WHERE a.datname = current_database() AND a.backend_type = 'client backend'
    AND a.pid <> pg_backend_pid() AND a.xact_start IS NOT NULL
    AND a.application_name IS DISTINCT FROM %s
  ORDER BY a.xact_start LIMIT 1) AS o ON true
"""


def sees_other_sessions(conn: psycopg.Connection[Any]) -> bool:
    """Whether the role sees other roles' transactions (a superuser or a member of pg_read_all_stats)."""
    row = conn.execute("SELECT pg_has_role(current_user, %s, 'USAGE')", [STATS_ROLE]).fetchone()
    return bool(row and row[0])


def refusal(source: str, user: str) -> tuple[str, str]:
    """Why an incremental read cannot be made safe without the privilege, and the GRANT to run."""
    return (f"source '{source}': the role {user} cannot see other sessions' transactions, so an "
            "incremental read cannot hold back from rows a transaction still open will commit "
            "with an earlier time (they would be skipped)",
            f"run `GRANT {STATS_ROLE} TO {user};` as a superuser, or read the stream with "
            "mode: full_refresh or cdc")


def horizon(conn: psycopg.Connection[Any]) -> tuple[Horizon, str]:
    """The bound below the start of the oldest transaction open now (`conn` in autocommit), and
    the TimeZone the database's sessions start in (ours is set to UTC): a `timestamp` or `date`
    written by `now()` holds the writers' local time."""
    row = conn.execute(_OLDEST_OPEN, [APPLICATION_NAME]).fetchone()
    assert row is not None
    listed_at, pid, started, zone = row
    oldest = None if pid is None else OpenTransaction(f"PostgreSQL session pid {pid}", started)
    return Horizon.of(listed_at, oldest), str(zone or "UTC")


def limit(col: Column, h: Horizon, writers_zone: str) -> sql.Composable:
    """The horizon in the cursor column's own type, for `cursor < limit`."""
    return as_cursor(col, h.floored(fraction_digits(col.native_type, 6)) if col.type.kind != "date"
                     else h.at, writers_zone)


def as_cursor(col: Column, at: dt.datetime, writers_zone: str) -> sql.Composable:
    """A moment in the cursor column's own type: a `timestamp` or `date` written by `now()`
    holds the writers' local time (the database's default TimeZone)."""
    when = sql.SQL("CAST({} AS timestamptz)").format(sql.Literal(at.isoformat()))
    if col.type.kind == "timestamp":
        return sql.SQL("({} AT TIME ZONE {})").format(when, sql.Literal(writers_zone))
    if col.type.kind == "date":
        return sql.SQL("CAST({} AT TIME ZONE {} AS date)").format(when, sql.Literal(writers_zone))
    return when
