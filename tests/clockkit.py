"""A frozen clock a test moves: the control plane's (SYNCLINE_CLOCK, a file, which runs and
leases are stamped with) and an evaluator's (`clock()`), moved together."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from syncline import clock


class FileClock:
    def __init__(self, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, start: dt.datetime) -> None:
        self.file = tmp_path / "clock"
        monkeypatch.setenv(clock.ENV, f"file:{self.file}")
        self.at = start
        clock.write(self.file, start)

    def __call__(self) -> dt.datetime:
        return self.at

    def move(self, **delta: float) -> None:
        self.at += dt.timedelta(**delta)
        clock.write(self.file, self.at)
