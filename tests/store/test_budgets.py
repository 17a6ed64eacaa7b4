"""A request budget kept in the store holds across processes: two workers drawing on one REST
source's rate_limit together send no more than it allows."""

from __future__ import annotations

import multiprocessing
import time
from typing import Any

from syncline.sources.rest.budget import TokenBucket, share_budgets, shared_bucket
from syncline.store.store import MetadataStore

REQUESTS, PER_S, TAKES = 5, 0.5, 10  # 10 requests a second, bursts of 5; 10 takes each


def _draw(url: str, start: Any, out: Any) -> None:
    with MetadataStore(url) as store:
        share_budgets(store.bucket)  # what a worker does at its start
        bucket = shared_bucket("api", "https://api.example", REQUESTS, PER_S)
        store.revisions().latest()  # connected before the start
        start.wait()
        for _ in range(TAKES):
            bucket.take()
        out.put(time.time())


def test_two_processes_share_one_budget(store_url: str) -> None:
    MetadataStore(store_url).close()
    ctx = multiprocessing.get_context("fork")
    start, out = ctx.Event(), ctx.Queue()
    procs = [ctx.Process(target=_draw, args=(store_url, start, out)) for _ in range(2)]
    for p in procs:
        p.start()
    began = time.time()
    start.set()
    slowest = max(out.get(timeout=60) for _ in procs) - began
    for p in procs:
        p.join(30)
        assert p.exitcode == 0
    # 20 requests, 5 of them in the first burst: 15 more at 10 a second take 1.5 s at least;
    # each process on its own budget would need 0.5 s
    assert slowest >= 1.3


def test_without_a_shared_budget_a_process_keeps_its_own() -> None:
    share_budgets(None)
    assert isinstance(shared_bucket("api", "https://x", 5, 1.0), TokenBucket)
