"""A run made outside the queue (`syncline sync` in a shell, beside `up`): it registers as a
worker of its own and holds a claimed queue entry while it runs, so the scheduler coalesces
that connection's ticks into it and `queue` and `workers` show it."""

from __future__ import annotations

import os
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from syncline.engine.observer import Announcing, RunObserver
from syncline.orchestration.queue import QueuedRun, RunRequest
from syncline.store.store import MetadataStore


@dataclass
class Inline:
    store: MetadataStore
    name: str
    entry: QueuedRun
    note: str = "ended before it started"

    def observer(self, inner: RunObserver) -> RunObserver:
        return Announcing(inner, self._started)

    def _started(self, connection: str, run_id: int) -> None:
        self.store.queue().started(self.entry.id, run_id)
        self.store.workers().beat(self.name, connection=connection, run_id=run_id, running=True)


@contextmanager
def inline_run(store: MetadataStore, request: RunRequest) -> Iterator[Inline]:
    name = f"sync-{socket.gethostname()}-{os.getpid()}"
    store.workers().register(name, queue="inline")
    held = Inline(store, name, store.queue().hold(request, name))
    try:
        yield held
    finally:
        store.queue().finish(held.entry.id, note=held.note)
        store.workers().ended(name, "stopped", "its sync ended")
