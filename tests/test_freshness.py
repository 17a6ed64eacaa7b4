"""The share of a window a connection's data stayed within its SLA."""

from __future__ import annotations

import datetime as dt

import pytest

from syncline.freshness import within_share

T0 = dt.datetime(2026, 11, 1, tzinfo=dt.UTC)
H = dt.timedelta(hours=1)


def hourly(n: int, read_s: float = 60) -> list[tuple[dt.datetime, dt.datetime]]:
    """A success every hour: its read begins on the hour and ends `read_s` later."""
    return [(T0 + i * H, T0 + i * H + dt.timedelta(seconds=read_s)) for i in range(n)]


@pytest.mark.parametrize(("name", "successes", "sla", "start", "end", "share"), [
    ("hourly within a 2h SLA", hourly(25), 2 * H, T0 + H, T0 + 24 * H, 1.0),
    ("hourly under a 30 min SLA", hourly(25, 0), H / 2, T0, T0 + 24 * H, 0.5),
    ("a 6 hour outage in a day, 2h SLA", [s for i, s in enumerate(hourly(25, 0)) if not 10 < i < 17],
     2 * H, T0, T0 + 24 * H, 19 / 24),  # within until 12:00, late until the 17:00 success
    ("nothing yet", [], 2 * H, T0, T0 + H, None),
    ("the last success before the window counts", [(T0 - H, T0 - H / 2)], 2 * H, T0, T0 + 2 * H, 0.5),
])
def test_share_within_sla(name: str, successes: list[tuple[dt.datetime, dt.datetime]],
                          sla: dt.timedelta, start: dt.datetime, end: dt.datetime,
                          share: float | None) -> None:
    found = within_share(successes, sla, start, end)
    assert (found is None and share is None) or found == pytest.approx(share, abs=1e-6), (name, found)
