"""The run queue seam: what the scheduler, `trigger` and the workers need of a queue.

Embedded mode implements it on the metadata store (`store/queue.py`: `StoreQueue`); the
distributed mode puts a broker behind the same methods. Entries are `QueuedRun` records
either way, and every run a worker starts from an entry is named back with `started`.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Collection, Mapping
from typing import Protocol

from syncline.store.queue import QueuedRun, RunRequest, Slot, StoreQueue, Waiting

__all__ = ["QueuedRun", "RunQueue", "RunRequest", "Slot", "StoreQueue", "Waiting"]


class RunQueue(Protocol):
    #: where runs wait, as `syncline workers` shows it: `store` in embedded mode
    name: str

    def put(self, request: RunRequest, now: dt.datetime | None = None) -> QueuedRun:
        """Queue a run, or return the entry that already stands for it (`coalesced`)."""
        ...

    def put_many(self, requests: list[RunRequest], now: dt.datetime | None = None) -> list[QueuedRun]:
        """`put` each, at once (a scheduler tick with many due)."""
        ...

    def claim(self, worker: str, now: dt.datetime | None = None,
              resources: Mapping[str, tuple[Slot, ...]] | None = None,
              regions: Collection[str] = ...) -> QueuedRun | None:
        """The next due run of `regions` (default: `default`) for `worker`, or None; never two
        of one connection at once, nor more runs on a resource than its slots
        (orchestration/limits.py)."""
        ...

    def hold(self, request: RunRequest, holder: str, now: dt.datetime | None = None) -> QueuedRun:
        """An entry claimed at once by a run made outside the queue (`syncline sync`)."""
        ...

    def started(self, entry: int, run_id: int) -> None: ...

    def get(self, entry: int) -> QueuedRun | None: ...

    def request_cancel(self, run_id: int, by: str, now: dt.datetime | None = None) -> QueuedRun | None:
        """Ask whoever runs `run_id` to stop it; None when nobody runs it."""
        ...

    def entries(self, states: tuple[str, ...] = ..., connection: str | None = None,
                limit: int = 1000) -> list[QueuedRun]: ...

    def finish(self, entry: int, state: str = "done", note: str | None = None,
               now: dt.datetime | None = None) -> None: ...

    def cancel(self, entry: int, now: dt.datetime | None = None, note: str = "cancelled") -> QueuedRun: ...

    def abandon(self, worker: str, note: str, now: dt.datetime | None = None) -> list[QueuedRun]:
        """Free what a lost worker held (its runs are reaped by their leases)."""
        ...

    def pending(self, now: dt.datetime | None = None,
                resources: Mapping[str, tuple[Slot, ...]] | None = None,
                live_regions: Collection[str] | None = None) -> list[Waiting]:
        """Queued runs in claim order, each with why it waits (also: no live worker serves
        its region, given the regions live workers serve)."""
        ...
