"""The one backoff rule of Syncline: exponential, with full jitter (a random wait between 0 and
the ceiling, which doubles each retry up to a limit), for the engine's attempts and a REST
source's requests alike."""

from __future__ import annotations

import random


def full_jitter(retry: int, base_s: float, limit_s: float) -> float:
    """Seconds to wait before retry number `retry` (1-based)."""
    return random.uniform(0, min(limit_s, base_s * 2 ** (retry - 1)))
