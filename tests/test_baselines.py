"""Learned baselines, table-driven: a steady stream, a weekly pattern that must not fire, a drop
to 5% that must, a stream with too little history, and noisy streams."""

from __future__ import annotations

import datetime as dt

import pytest

from syncline.baselines import anomaly

MONDAY = dt.datetime(2026, 11, 2, 6, 0, tzinfo=dt.UTC)


def daily(values: list[float]) -> list[tuple[dt.datetime, float]]:
    return [(MONDAY + dt.timedelta(days=i), v) for i, v in enumerate(values)]


WEEKLY = [1000.0 if (i % 7) < 5 else 100.0 for i in range(28)]  # weekdays 1,000, weekends 100
STEADY = [1000.0 + (i % 5) * 10 for i in range(30)]
NOISY = [500.0, 900.0, 700.0, 1200.0, 650.0, 1000.0, 820.0, 760.0, 1100.0, 590.0, 940.0, 880.0]


@pytest.mark.parametrize(("name", "history", "value", "day", "fires"), [
    ("steady, as usual", STEADY, 1020.0, 30, False),
    ("steady, 10% more", STEADY, 1120.0, 30, False),
    ("steady, a drop to 5%", STEADY, 51.0, 30, True),
    ("steady, ten times more", STEADY, 10_000.0, 30, True),
    ("weekly, a Saturday as usual", WEEKLY, 100.0, 33, False),  # day 33: a Saturday
    ("weekly, a Monday as usual", WEEKLY, 1000.0, 35, False),
    ("weekly, a Monday drops to 5%", WEEKLY, 50.0, 35, True),
    ("weekly, a Saturday as busy as a weekday", WEEKLY, 1000.0, 33, False),
    ("too little history", STEADY[:9], 1.0, 9, False),
    ("just enough history", STEADY[:10], 1.0, 10, True),
    ("noisy, within its spread", NOISY, 1150.0, 12, False),
    ("noisy, far beyond", NOISY, 5000.0, 12, True),
    ("empty reads are the norm", [0.0] * 12, 0.0, 12, False),
])
def test_an_anomaly_is_a_value_outside_what_the_last_runs_taught(
        name: str, history: list[float], value: float, day: int, fires: bool) -> None:
    at = MONDAY + dt.timedelta(days=day)
    found = anomaly(value, at, daily(history))
    assert (found is not None) == fires, (name, found)
    if found is not None:
        assert not found.band.low <= value <= found.band.high and found.history == min(len(history), 30)
