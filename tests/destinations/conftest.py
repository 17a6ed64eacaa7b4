"""Fixtures of the destination tests."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

import syncline.cli.app as cli

from services import postgres_schema
from warehouse import Warehouse


@pytest.fixture(params=["duckdb", "postgres"])
def wh(request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
       ) -> Iterator[Warehouse]:
    """A workspace loading src.db into DuckDB, or into a schema of its own on PostgreSQL."""
    monkeypatch.setattr(cli.console, "width", 400)
    monkeypatch.setattr(cli.err_console, "width", 400)
    if request.param == "duckdb":
        yield Warehouse(tmp_path, "duckdb", "dst")
        return
    with postgres_schema("syncline_guard") as name:
        yield Warehouse(tmp_path, "postgres", name)
