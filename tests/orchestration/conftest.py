"""`running`: the `syncline up` processes a test started, killed if still alive at its end."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from upkit import Up


@pytest.fixture
def running() -> Iterator[list[Up]]:
    started: list[Up] = []
    yield started
    for up in started:
        if up.proc.poll() is None:
            up.proc.kill()
            up.proc.wait(10)


