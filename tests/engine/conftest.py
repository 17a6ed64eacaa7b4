"""Engine fixtures: `db`, each SQL source in turn (see tests/sqlsources.py)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlsources import KINDS, Db, sql_source


@pytest.fixture(params=KINDS)
def db(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Db]:
    """A scratch place on SQLite, PostgreSQL and MariaDB in turn."""
    with sql_source(request.param, tmp_path) as made:
        yield made
