"""The request budget of a REST source: a token bucket shared by all its streams."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable


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


_BUCKETS: dict[tuple[str, str, int, float], TokenBucket] = {}
_BUCKETS_LOCK = threading.Lock()


def shared_bucket(source: str, base_url: str, requests: int, per_seconds: float) -> TokenBucket:
    """One bucket per source in this process, so a retried attempt gets no fresh burst."""
    key = (source, base_url, requests, per_seconds)
    with _BUCKETS_LOCK:
        if key not in _BUCKETS:
            _BUCKETS[key] = TokenBucket(requests, per_seconds)
        return _BUCKETS[key]
