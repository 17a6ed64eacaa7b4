"""Learned baselines: what a stream usually reads, and how long a connection usually goes
between successes, learned from its last runs; no threshold to tune by hand.

A value is an anomaly when it lies outside the band `median ± k·scale` of the last runs
(`scale` is 1.4826·MAD, the median absolute deviation as a standard deviation, and never
below 5% of the median or 1), **and**, when at least three earlier runs fell on the same
weekday, outside the band of those too: a stream that reads less every weekend has a
weekly pattern, not an anomaly. Fewer than `MIN_HISTORY` runs teach nothing.
"""

from __future__ import annotations

import datetime as dt
import statistics
from collections.abc import Sequence
from dataclasses import dataclass

MIN_HISTORY = 10
WINDOW = 30
MAD_TO_SD = 1.4826


@dataclass(frozen=True)
class Band:
    low: float
    high: float
    median: float

    def holds(self, value: float) -> bool:
        return self.low <= value <= self.high


@dataclass(frozen=True)
class Anomaly:
    value: float
    band: Band
    history: int  # how many runs it was learned from


def band(values: Sequence[float], k: float) -> Band:
    median = statistics.median(values)
    mad = statistics.median(abs(v - median) for v in values)
    scale = max(MAD_TO_SD * mad, 0.05 * abs(median), 1.0)
    return Band(max(0.0, median - k * scale), median + k * scale, median)


def anomaly(value: float, at: dt.datetime, history: Sequence[tuple[dt.datetime, float]],
            k: float = 3.0) -> Anomaly | None:
    """Whether `value`, seen at `at`, is outside what the last runs (`history`: when, value;
    the newest `WINDOW` count) taught."""
    recent = list(history)[-WINDOW:]
    if len(recent) < MIN_HISTORY:
        return None
    overall = band([v for _, v in recent], k)
    if overall.holds(value):
        return None
    same_day = [v for t, v in recent if t.weekday() == at.weekday()]
    if len(same_day) >= 3:
        weekly = band(same_day, k)
        if weekly.holds(value):
            return None
        return Anomaly(value, weekly, len(recent))
    return Anomaly(value, overall, len(recent))
