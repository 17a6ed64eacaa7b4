"""Shared fixtures: a workspace folder, the CLI runner, and the services helpers on sys.path."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
os.environ.setdefault("SYNCLINE_RETRY_BASE_S", "0")


@pytest.fixture(autouse=True)
def _isolated_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for var in ("SYNCLINE_WORKSPACE", "SYNCLINE_METADATA_URL", "SYNCLINE_FAILPOINTS"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("SYNCLINE_RETRY_BASE_S", "0")
