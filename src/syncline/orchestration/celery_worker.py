"""The Syncline worker inside one Celery worker process: the embedded worker's run, fed by wakes.

It reads the metadata store from SYNCLINE_METADATA_URL and relative paths from
SYNCLINE_WORKSPACE, registers in the worker registry (queue `celery`), beats every few
seconds, and runs each claimed entry as `worker.Worker.run` does: config from the newest
revision, cancel and max_run_duration watched, a retryable failure queued again.
"""

from __future__ import annotations

import os
import socket
import threading
from pathlib import Path
from typing import Any

from sqlalchemy.exc import SQLAlchemyError

from syncline.errors import ConfigurationError
from syncline.orchestration.queue import Slot
from syncline.orchestration.worker import HEARTBEAT_S, Worker
from syncline.sources.rest.budget import share_budgets
from syncline.store.store import MetadataStore

QUEUE_NAME = "celery"


class CeleryWorker(Worker):
    def __init__(self, store: MetadataStore, root: Path, name: str, app: Any,
                 regions: tuple[str, ...]) -> None:
        super().__init__(store, root, name, threading.Event(), regions=regions)
        self.app = app
        self.workers.register(self.name, region=",".join(regions), queue=QUEUE_NAME)
        threading.Thread(target=self._beat, name="heartbeat", daemon=True).start()

    @classmethod
    def from_environment(cls, app: Any, regions: tuple[str, ...]) -> CeleryWorker:
        url = os.environ.get("SYNCLINE_METADATA_URL")
        if not url:
            raise ConfigurationError("SYNCLINE_METADATA_URL is not set for the Celery worker",
                                     fix="set it to the store's URL (postgresql+psycopg://...)")
        root = Path(os.environ.get("SYNCLINE_WORKSPACE", "."))
        store = MetadataStore(url, spool=root / ".syncline")
        share_budgets(store.bucket)  # a REST source's rate_limit holds across all workers
        return cls(store, root, f"{socket.gethostname()}-{os.getpid()}", app, regions)

    def limits(self) -> dict[str, tuple[Slot, ...]]:
        return self._resources()

    def end(self) -> None:
        self.stop.set()
        try:
            self.workers.ended(self.name, "stopped", "the Celery worker process ended")
        except SQLAlchemyError:
            pass  # the registry marks it lost when its beats stop


__all__ = ["HEARTBEAT_S", "CeleryWorker"]
