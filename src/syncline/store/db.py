"""Opening the metadata database: engine set-up, SQLite pragmas and migrations on open."""

from __future__ import annotations

import re
import sqlite3
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection, Engine, create_engine, event, inspect, text
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError

from syncline.errors import ConfigurationError

if TYPE_CHECKING:
    from alembic.config import Config

MIGRATIONS = Path(__file__).parent / "migrations"
FIX = "check `metadata:` in syncline.yaml or the SYNCLINE_METADATA_URL environment variable"
_PG_LOCK_KEY = 0x53594E43  # "SYNC": serialises concurrent first opens on PostgreSQL


def mask_url(url: str) -> str:
    """The URL with any password replaced by ``***``."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except (ArgumentError, ValueError):
        return re.sub(r"(://[^:/@]*:)[^@]*@", r"\1***@", url)


#: the newest migration in migrations/versions (a test holds it to alembic's own head). A store
#: already at it opens without importing alembic, which costs every command 0.2 s and 10 MB.
HEAD = "0018"
VERSION_TABLE = "alembic_version"


def alembic_config() -> Config:
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    return cfg


def head_revision() -> str:
    return HEAD


def current_revision(conn: Connection) -> str | None:
    """The schema revision a store's database is at (None: not a store yet)."""
    if not inspect(conn).has_table(VERSION_TABLE):
        return None
    rows = conn.execute(text(f"SELECT version_num FROM {VERSION_TABLE}")).all()
    return str(rows[0][0]) if rows else None


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    dbapi_connection.isolation_level = None  # SQLAlchemy emits BEGIN itself, see _sqlite_begin
    cursor = dbapi_connection.cursor()
    try:
        cursor.execute("PRAGMA busy_timeout = 10000")
        _wal(cursor)
        cursor.execute("PRAGMA foreign_keys = ON")
    finally:
        cursor.close()


def _wal(cursor: Any) -> None:
    """Switch to WAL, which the file keeps, unless it is on already.

    Two processes opening a new store at the same moment (two syncs started together)
    can see the switch refused at once: busy_timeout does not cover it. Wait and retry.
    """
    deadline = time.monotonic() + 10
    while True:
        try:
            if str(cursor.execute("PRAGMA journal_mode").fetchone()[0]).lower() != "wal":
                cursor.execute("PRAGMA journal_mode = WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() > deadline:
                raise
            time.sleep(0.02)


def _sqlite_begin(conn: Any) -> None:
    # IMMEDIATE takes the write lock up front, so busy_timeout covers read-then-write
    # transactions instead of failing with SQLITE_BUSY when another process writes.
    conn.exec_driver_sql("BEGIN IMMEDIATE")


def _make_engine(url: URL) -> Engine:
    kwargs: dict[str, Any] = {}
    if url.get_backend_name() == "sqlite":
        db = url.database
        if db and db != ":memory:" and not db.startswith("file:"):
            Path(db).expanduser().parent.mkdir(parents=True, exist_ok=True)
    else:
        kwargs["pool_pre_ping"] = True
        if url.get_backend_name() == "postgresql" and "connect_timeout" not in url.query:
            kwargs["connect_args"] = {"connect_timeout": 10}
    engine = create_engine(url, **kwargs)
    if engine.dialect.name == "sqlite":
        event.listen(engine, "connect", _sqlite_pragmas)
        event.listen(engine, "begin", _sqlite_begin)
    return engine


_MIGRATE_LOCK = threading.Lock()


def _migrate(engine: Engine) -> None:
    # Threads of one process migrate one at a time (alembic's lazy imports and script
    # loading are not thread-safe); other processes are kept out by the database lock.
    with _MIGRATE_LOCK:
        _migrate_locked(engine)


def _migrate_locked(engine: Engine) -> None:
    with engine.begin() as conn:
        if conn.dialect.name == "postgresql":
            conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _PG_LOCK_KEY})
        if current_revision(conn) == HEAD:
            return
        from alembic import command

        cfg = alembic_config()
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "head")


def open_engine(url: str) -> Engine:
    """An engine on ``url`` whose schema is at the latest revision, or ConfigurationError."""
    shown = mask_url(url)
    try:
        parsed = make_url(url)
    except (ArgumentError, ValueError) as exc:
        raise ConfigurationError(
            f"metadata store URL {shown} is not a valid SQLAlchemy URL ({exc})", fix=FIX
        ) from exc
    engine: Engine | None = None
    try:
        engine = _make_engine(parsed)
        _migrate(engine)
    except Exception as exc:
        if engine is not None:
            engine.dispose()
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        reason = reason.replace(url, shown)
        if parsed.password:
            reason = reason.replace(str(parsed.password), "***")
        raise ConfigurationError(
            f"cannot open the metadata store at {shown}: {reason}",
            fix=f"{FIX}; the database must be reachable and writable",
        ) from exc
    return engine


def upgrade(url: str) -> tuple[str | None, str | None]:
    """Migrate the store at `url` to this Syncline's schema: (revision before, revision now).
    Migrations only add; they run under the database's lock, so workers may keep running."""
    before: str | None = None
    try:
        probe = _make_engine(make_url(url))
        try:
            with probe.connect() as conn:
                before = current_revision(conn)
        finally:
            probe.dispose()
    except Exception:
        pass
    open_engine(url).dispose()
    return before, head_revision()
