"""The request budget of a REST source: a token bucket shared by all its streams, and by every
process running the source when the one running it says how (`share_budgets`: `up`'s workers
keep the bucket in the metadata store, so N workers together stay within `rate_limit`)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Protocol


class TokenBucket:
    """``requests`` per ``per_seconds``, with bursts up to ``requests``.

    A caller that finds the bucket empty reserves its token (the level goes below
    zero) and sleeps outside the lock, so concurrent callers queue fairly.
    """

    def __init__(self, requests: int, per_seconds: float, *,
                 clock: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        self.capacity = float(requests)
        self.rate = requests / per_seconds
        self._clock = clock
        self._sleep = sleep
        self._level = self.capacity
        self._last = clock()
        self._lock = threading.Lock()

    def take(self) -> float:
        """Wait for one request's token; returns the seconds waited."""
        with self._lock:
            now = self._clock()
            self._level = min(self.capacity, self._level + (now - self._last) * self.rate)
            self._last = now
            self._level -= 1.0
            wait = -self._level / self.rate if self._level < 0 else 0.0
        if wait > 0:
            self._sleep(wait)
        return wait


class Bucket(Protocol):
    def take(self) -> float:
        """Wait for one request's token; returns the seconds waited."""
        ...


#: (the bucket's name, requests, per_seconds) -> a bucket other processes share too
BucketFactory = Callable[[str, int, float], Bucket]

_BUCKETS: dict[tuple[str, str, int, float], Bucket] = {}
_BUCKETS_LOCK = threading.Lock()
_SHARED: list[BucketFactory] = []


def share_budgets(factory: BucketFactory | None) -> None:
    """From now on, buckets come from `factory` (None: this process's own again)."""
    with _BUCKETS_LOCK:
        _SHARED[:] = [factory] if factory is not None else []
        _BUCKETS.clear()


def shared_bucket(source: str, base_url: str, requests: int, per_seconds: float) -> Bucket:
    """One bucket per source (in this process, or wherever `share_budgets` keeps them), so a
    retried attempt gets no fresh burst."""
    key = (source, base_url, requests, per_seconds)
    with _BUCKETS_LOCK:
        if key not in _BUCKETS:
            _BUCKETS[key] = (_SHARED[0](f"rest {source} {base_url}", requests, per_seconds)
                             if _SHARED else TokenBucket(requests, per_seconds))
        return _BUCKETS[key]
