"""Fixtures of the REST source tests: the loopback API server, started per test."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from api_server import ApiServer


@pytest.fixture
def api() -> Iterator[ApiServer]:
    server = ApiServer().start()
    yield server
    server.stop()


@pytest.fixture
def small_api() -> Iterator[ApiServer]:
    """300 items and 4 orgs: enough pages to exercise the client, cheap to read."""
    server = ApiServer(items=300, orgs=4).start()
    yield server
    server.stop()
