"""Shared fixtures: the services helpers on sys.path, a clean environment, and metadata stores
on SQLite and on a throwaway PostgreSQL database."""

from __future__ import annotations

import os
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from sqlalchemy.engine import make_url

sys.path.insert(0, str(Path(__file__).parent))

from upkit import Up

from services import require_postgres

os.environ.setdefault("SYNCLINE_RETRY_BASE_S", "0")


@pytest.fixture(autouse=True)
def _isolated_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for var in ("SYNCLINE_WORKSPACE", "SYNCLINE_METADATA_URL", "SYNCLINE_FAILPOINTS"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("SYNCLINE_RETRY_BASE_S", "0")


@pytest.fixture
def require_pg_database() -> Iterator[str]:
    """A throwaway database on the test server, dropped afterwards."""
    url = make_url(require_postgres())
    name = f"syncline_store_test_{uuid.uuid4().hex[:12]}"
    admin = url.set(drivername="postgresql").render_as_string(hide_password=False)
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield url.set(database=name).render_as_string(hide_password=False)
    finally:
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(params=["sqlite", "postgres"])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """The URL of an empty metadata store on each backend."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'metadata.db'}"
        return
    yield request.getfixturevalue("require_pg_database")


@pytest.fixture
def running() -> Iterator[list[Up]]:
    """The `syncline up` processes a test started, killed if still alive at its end."""
    started: list[Up] = []
    yield started
    for up in started:
        if up.proc.poll() is None:
            up.proc.kill()
            up.proc.wait(10)
