"""Freshness: how old the newest data a connection has loaded is, and how much of a window it
stayed within its SLA.

Data a successful run loaded is as fresh as the moment its read began (the snapshot it read
from): its freshness at time t is t − that moment. Between two successes the freshness grows
from the first one's; a success replaces it when it ends.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

#: (the moment the run's read began, the moment it committed and ended)
Success = tuple[dt.datetime, dt.datetime]


def within_share(successes: Sequence[Success], sla: dt.timedelta, start: dt.datetime,
                 end: dt.datetime) -> float | None:
    """The share of [start, end] during which the freshness was within `sla`, given every
    success that ended before `end` (oldest first, and the last one before `start` if any);
    None when no success had ended by `end`."""
    done = sorted((s for s in successes if s[1] <= end), key=lambda s: s[1])
    if not done or end <= start:
        return None
    total = (end - start).total_seconds()
    inside = 0.0
    for i, (snapshot, ended) in enumerate(done):
        until = done[i + 1][1] if i + 1 < len(done) else end
        lo, hi = max(ended, start), min(until, end, snapshot + sla)
        if hi > lo:
            inside += (hi - lo).total_seconds()
    return inside / total
