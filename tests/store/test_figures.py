"""Run totals are kept as runs end: an overruled run moves from its first status to its last,
a run going now counts as running, and retention leaves the totals."""

from __future__ import annotations

import datetime as dt

from syncline.store.leases import now_utc
from syncline.store.store import MetadataStore


def test_totals_follow_every_end_and_every_overrule(store_url: str) -> None:
    with MetadataStore(store_url) as store:
        a = store.start_run("c", region="eu")
        store.end_run(a, "succeeded", rows_read=5, rows_committed=5, rows_quarantined=0, attempts=2)
        b = store.start_run("c", region="eu")
        store.end_run(b, "interrupted", rows_read=1, rows_committed=1, rows_quarantined=0, attempts=1)
        store.overrule(b, "cancelled", None, "cancelled by ann")
        going = store.start_run("c", region="eu")
        f = store.figures()
        assert f.runs == {("c", "eu", "succeeded"): (1, 5, 5, 0), ("c", "eu", "cancelled"): (1, 1, 1, 0),
                          ("c", "eu", "running"): (1, 0, 0, 0)}
        assert f.last_status == {"c": "running"} and f.failed_attempts == {"c": 2}
        under, n, _ = f.durations[("c", "eu")]
        assert n == 2 and under[0] == 2  # both took under a second
        store.end_run(going, "failed", rows_read=0, rows_committed=0, rows_quarantined=0, attempts=1)
        store.vacuum(dt.timedelta(days=1), now=now_utc() + dt.timedelta(days=30))
        kept = store.figures()
        assert kept.runs[("c", "eu", "failed")] == (1, 0, 0, 0)
        assert kept.runs[("c", "eu", "succeeded")] == (1, 5, 5, 0)  # counters only grow
        assert kept.last_status == {"c": "failed"}
