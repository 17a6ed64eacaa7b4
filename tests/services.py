"""Skip-or-fail helpers for tests that need a service on 127.0.0.1 (SYNCLINE_REQUIRE_SERVICES=1 fails)."""

from __future__ import annotations

import contextlib
import os
import secrets
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from typing import NoReturn

import psycopg
import pytest

HOST = "127.0.0.1"
POSTGRES_URL = f"postgresql+psycopg://postgres@{HOST}:5432/test"
MARIADB_URL = f"mysql://root@{HOST}:3306/test"
REDIS_URL = f"redis://{HOST}:6379/0"
RABBITMQ_URL = f"amqp://guest:guest@{HOST}:5672/"


def require_service(name: str, port: int, url: str, host: str = HOST) -> str:
    """Return ``url`` if ``host:port`` accepts TCP connections, else skip (or fail if required)."""
    try:
        with socket.create_connection((host, port), timeout=3):
            return url
    except OSError as exc:
        skip_or_fail(f"{name} is not reachable at {host}:{port} ({exc})")


def skip_or_fail(reason: str) -> NoReturn:
    """Skip a test whose real part is missing here, or fail it under SYNCLINE_REQUIRE_SERVICES=1
    (CI), so that a required part never disappears from the suite in silence."""
    if os.environ.get("SYNCLINE_REQUIRE_SERVICES") == "1":
        pytest.fail(f"{reason}; SYNCLINE_REQUIRE_SERVICES=1 requires it", pytrace=False)
    pytest.skip(f"{reason}; set SYNCLINE_REQUIRE_SERVICES=1 to make this a failure")


def require_postgres() -> str:
    """SQLAlchemy URL of the test PostgreSQL server (user postgres, trust auth, database test)."""
    return require_service("PostgreSQL", 5432, POSTGRES_URL)


def require_mariadb() -> str:
    """URL of the test MariaDB server (user root, database test); add a driver to the scheme."""
    return require_service("MariaDB", 3306, MARIADB_URL)


def require_redis() -> str:
    """URL of the test Redis server."""
    return require_service("Redis", 6379, REDIS_URL)


def require_rabbitmq() -> str:
    """AMQP URL of the test RabbitMQ server (default guest account)."""
    return require_service("RabbitMQ", 5672, RABBITMQ_URL)


@contextmanager
def postgres_schema(prefix: str) -> Iterator[str]:
    """A uniquely named schema on the test PostgreSQL server, dropped with all in it afterwards
    (a Syncline read still reading there, say one hung by a faulty network, is stopped first)."""
    require_postgres()
    name = f"{prefix}_{secrets.token_hex(4)}"
    conninfo = f"host={HOST} port=5432 user=postgres dbname=test"
    with psycopg.connect(conninfo, autocommit=True) as con:
        con.execute(f'CREATE SCHEMA "{name}"')
    try:
        yield name
    finally:
        with psycopg.connect(conninfo, autocommit=True) as con:
            con.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                        "WHERE application_name = 'syncline' AND strpos(query, %s) > 0", [name])
            con.execute(f'DROP SCHEMA "{name}" CASCADE')


#: The read-only role docs/configuration.md documents for PostgreSQL sources (trust auth here).
POSTGRES_READER = "syncline_reader"


def postgres_reader(schema: str, *, stats: bool = True, role: str = POSTGRES_READER) -> str:
    """The documented read-only role, granted what docs/configuration.md says, on `schema`
    (tables created there later by `postgres` included); without `stats`, the role lacks
    pg_read_all_stats. Returns the role's name."""
    require_postgres()
    conninfo = f"host={HOST} port=5432 user=postgres dbname=test"
    with psycopg.connect(conninfo, autocommit=True) as con:
        if not con.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", [role]).fetchone():
            with contextlib.suppress(psycopg.errors.DuplicateObject):  # another test process
                con.execute(f'CREATE ROLE "{role}" LOGIN')
        for grant in (f'GRANT CONNECT ON DATABASE test TO "{role}"',
                      f'GRANT USAGE ON SCHEMA "{schema}" TO "{role}"',
                      f'GRANT SELECT ON ALL TABLES IN SCHEMA "{schema}" TO "{role}"',
                      f'ALTER DEFAULT PRIVILEGES IN SCHEMA "{schema}" GRANT SELECT ON TABLES TO "{role}"'):
            con.execute(grant)
        con.execute(f'{"GRANT" if stats else "REVOKE"} pg_read_all_stats {"TO" if stats else "FROM"} "{role}"')
    return role


#: The read-only user docs/configuration.md documents for MariaDB sources (no password here).
MARIADB_READER = "syncline_reader"


def mariadb_reader(database: str, *, process: bool = True, user: str = MARIADB_READER) -> str:
    """The documented read-only user, granted what docs/configuration.md says on `database`;
    without `process`, the user lacks PROCESS. Returns the user's name."""
    import pymysql

    require_mariadb()
    con = pymysql.connect(host=HOST, port=3306, user="root", autocommit=True)
    try:
        with con.cursor() as cur:
            cur.execute(f"CREATE USER IF NOT EXISTS '{user}'@'%'")
            cur.execute(f"GRANT SELECT, SHOW VIEW ON `{database}`.* TO '{user}'@'%'")
            if process:
                cur.execute(f"GRANT PROCESS ON *.* TO '{user}'@'%'")
            else:
                cur.execute(f"REVOKE PROCESS ON *.* FROM '{user}'@'%'")  # a no-op if not held
    finally:
        con.close()
    return user
