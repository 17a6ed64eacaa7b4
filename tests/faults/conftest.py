"""Fault scenarios: a `scenario` per test, and the session's tally printed at the end."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from faults.harness import Scenario, Totals

TOTALS = pytest.StashKey[Totals]()


def _totals(config: pytest.Config) -> Totals:
    return config.stash.setdefault(TOTALS, Totals())


@pytest.fixture
def scenario(request: pytest.FixtureRequest) -> Iterator[Scenario]:
    """The running scenario; its summary line is printed and tallied even when it fails."""
    xfail = request.node.get_closest_marker("xfail")
    known_bug = str(xfail.kwargs.get("reason", "xfail")) if xfail else None
    sc = Scenario(request.node.name.removeprefix("test_"), _totals(request.config), known_bug)
    try:
        yield sc
    finally:
        sc.finish()


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter, exitstatus: int,
                            config: pytest.Config) -> None:
    totals = config.stash.get(TOTALS, None)
    if totals is None or not totals.lines:
        return
    terminalreporter.section("fault injection")
    for line in totals.lines:
        terminalreporter.write_line(line)
    terminalreporter.write_line(totals.line())
