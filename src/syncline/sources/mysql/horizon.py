"""The late-commit horizon of a MariaDB/MySQL incremental read (`late_commits`), and the privilege it needs."""

from __future__ import annotations

import datetime as dt

import pymysql
from pymysql.connections import Connection

from syncline.schema import Column
from syncline.sources.late_commits import Horizon, OpenTransaction, fraction_digits

#: `information_schema.innodb_trx` is a copy refreshed at most every 0.1 s, and its start
#: times are whole seconds: the bound stays a second below the moment of the listing.
MARGIN = dt.timedelta(seconds=1)
PROCESS_DENIED = 1227

# NOW() is the time a statement began, so a transaction that has written nothing and runs
# no statement stamps its rows after this listing; a READ ONLY one (Syncline's own reads)
# writes nothing. Start times are in the server's system time zone.
_OLDEST_OPEN = """
SELECT UTC_TIMESTAMP(6), t.trx_mysql_thread_id, CONVERT_TZ(t.trx_started, 'SYSTEM', '+00:00')
FROM (SELECT 1) AS one LEFT JOIN (
  SELECT trx_mysql_thread_id, trx_started FROM information_schema.innodb_trx
  WHERE trx_mysql_thread_id <> CONNECTION_ID() AND NOT trx_is_read_only
    AND (trx_rows_modified > 0 OR trx_query IS NOT NULL)
  ORDER BY trx_started LIMIT 1) AS t ON 1 = 1
"""
# The writers' sessions start in the global time zone: DATETIME and DATE stamps are local to it.
_WRITERS_OFFSET = ("SELECT TIMESTAMPDIFF(MICROSECOND, UTC_TIMESTAMP(6), "
                   "CONVERT_TZ(UTC_TIMESTAMP(6), '+00:00', @@global.time_zone))")


def refusal(source: str, user: str) -> tuple[str, str]:
    """Why an incremental read cannot be made safe without PROCESS, and the GRANT to run."""
    return (f"source '{source}': the user {user} cannot see other sessions' transactions "
            "(information_schema.innodb_trx needs PROCESS), so an incremental read cannot hold "
            "back from rows a transaction still open will commit with an earlier time (they "
            "would be skipped)",
            f"run `GRANT PROCESS ON *.* TO '{user}'@'%';` (with the user's own host) as an "
            "administrator, or read the stream with mode: full_refresh or cdc")


def _time(value: object) -> dt.datetime:
    text = value.decode() if isinstance(value, bytes) else str(value)
    return dt.datetime.fromisoformat(text).replace(tzinfo=dt.UTC)


def horizon(con: Connection) -> tuple[Horizon, dt.timedelta]:
    """The bound below the oldest writing transaction open now, and the writers' UTC offset.
    Raises the driver's error 1227 when the user lacks PROCESS."""
    with con.cursor() as cur:
        cur.execute(_OLDEST_OPEN, [])
        row = cur.fetchone()
        assert row is not None
        cur.execute(_WRITERS_OFFSET, [])
        offset_row = cur.fetchone()
    listed_at, thread, started = row
    oldest = None if thread is None or started is None else OpenTransaction(
        f"MariaDB connection {int(thread)}", _time(started))
    micros = offset_row[0] if offset_row and offset_row[0] is not None else 0
    return Horizon.of(_time(listed_at), oldest, MARGIN), dt.timedelta(microseconds=int(micros))


def limit(col: Column, h: Horizon, writers_offset: dt.timedelta) -> str:
    """The horizon as a value of the cursor's type, for `cursor < limit`."""
    at = h.at if col.type.kind == "date" else h.floored(fraction_digits(col.native_type, 0))
    return as_cursor(col, at, writers_offset)


def as_cursor(col: Column, at: dt.datetime, writers_offset: dt.timedelta) -> str:
    """A UTC moment as a value of the cursor's type: TIMESTAMP compares in the session's UTC,
    DATETIME and DATE hold the writers' local time."""
    if col.type.kind != "timestamptz":
        at += writers_offset
    if col.type.kind == "date":
        return at.date().isoformat()
    return at.replace(tzinfo=None).isoformat(sep=" ")


def is_denied(exc: pymysql.MySQLError) -> bool:
    return bool(exc.args) and exc.args[0] == PROCESS_DENIED
