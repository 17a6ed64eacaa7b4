"""A worker process: takes runs from the run queue one at a time and runs them.

`syncline up` starts N of them (`python -m syncline.orchestration.worker`). A worker reads
each run's configuration from the newest config revision in the store, never from the
workspace file, and resolves its `${env:...}` references itself. It registers in the worker
registry, beats every few seconds (saying what it runs) and, on SIGTERM or Ctrl-C, stops
taking runs and stops the one it runs cleanly (the open batch rolled back, the lease
released); the run is queued again so the next start runs it. A second signal kills it.
SIGHUP, which the kernel sends when `up` dies, stops it cleanly the same way.
"""

from __future__ import annotations

import argparse
import os
import signal
import socket
import sys
import threading
from pathlib import Path

from sqlalchemy.exc import SQLAlchemyError

from syncline.config import workspace_file, workspace_from_document
from syncline.engine.observer import Announcing, RunObserver
from syncline.engine.run import Runner
from syncline.engine.watch import StopRequest
from syncline.errors import ConfigurationError, SynclineError
from syncline.orchestration.limits import resources
from syncline.orchestration.queue import QueuedRun, RunRequest, Slot
from syncline.sources.rest.budget import share_budgets
from syncline.store.store import MetadataStore

HEARTBEAT_S = 2.0
POLL_S = 0.5
CANCEL_POLL_S = 0.5


class Worker:
    def __init__(self, store: MetadataStore, root: Path, name: str, stop: threading.Event) -> None:
        self.store, self.root, self.name, self.stop = store, root, name, stop
        self.queue = store.queue()
        self.workers = store.workers()
        self._limits: tuple[int, dict[str, tuple[Slot, ...]]] | None = None

    def serve(self) -> None:
        self.workers.register(self.name, queue=self.queue.name)
        beating = threading.Thread(target=self._beat, name="heartbeat", daemon=True)
        beating.start()
        try:
            while not self.stop.is_set():
                entry = self.queue.claim(self.name, resources=self._resources())
                if entry is None:
                    self.stop.wait(POLL_S)
                    continue
                self.run(entry)
        finally:
            self.workers.ended(self.name, "stopped", "stopped by a signal")

    def run(self, entry: QueuedRun) -> None:
        note, again = "failed before it started", False
        stop, done = threading.Event(), threading.Event()
        cancel: list[str] = []  # who asked, once someone has
        watching = threading.Thread(target=self._watch, args=(entry, stop, done, cancel),
                                    name="cancel-watch", daemon=True)
        watching.start()
        try:
            revision = self.store.revisions().latest()
            if revision is None:
                raise ConfigurationError("no config revision in the store",
                                         fix="run `syncline apply` (or restart `syncline up`)")
            file = workspace_file(self.root)
            ws = workspace_from_document(revision.document, root=file.parent, file=file)
            reporting = Announcing(RunObserver(), lambda connection, run_id: self._started(
                entry, connection, run_id))
            result = Runner(ws, self.store, reporting, revision=revision.number,
                            stop=stop).sync(entry.connection, streams=list(entry.streams) or None,
                                            full_refresh=entry.full_refresh, trigger=entry.trigger)
            if cancel and result.status == "interrupted":
                self.store.cancelled(result.run_id, cancel[0])
                note = f"run {result.run_id} cancelled by {cancel[0]}"
            else:
                note = f"run {result.run_id} {result.status}"
                again = result.status == "interrupted" and self.stop.is_set()  # a shutdown
        except SynclineError as exc:
            note = f"{exc.failure_class}: {exc.message}"
        finally:
            done.set()
            self.queue.finish(entry.id, note=note)
            self.workers.beat(self.name, running=False)
        if again:  # stopped by a shutdown, not by its own doing: the next start runs it
            self.queue.put(RunRequest(entry.connection, entry.trigger, entry.full_refresh,
                                      entry.streams))

    def _resources(self) -> dict[str, tuple[Slot, ...]]:
        """What each connection's runs hold, from the newest revision (parsed once per revision)."""
        revision = self.store.revisions().latest()
        if revision is None:
            return {}
        if self._limits is None or self._limits[0] != revision.number:
            file = workspace_file(self.root)
            try:
                ws = workspace_from_document(revision.document, root=file.parent, file=file)
                self._limits = (revision.number, resources(ws))
            except SynclineError:
                self._limits = (revision.number, {})  # the run itself reports the error
        return self._limits[1]

    def _started(self, entry: QueuedRun, connection: str, run_id: int) -> None:
        self.queue.started(entry.id, run_id)
        self.workers.beat(self.name, connection=connection, run_id=run_id, running=True)

    def _watch(self, entry: QueuedRun, stop: threading.Event, done: threading.Event,
               cancel: list[str]) -> None:
        """Stop the run when the worker stops or someone cancels it (`syncline cancel`)."""
        while not done.wait(CANCEL_POLL_S):
            if self.stop.is_set():
                stop.set()
                return
            try:
                current = self.queue.get(entry.id)
            except SQLAlchemyError:
                continue
            if current is not None and current.cancel_requested_by:
                cancel.append(current.cancel_requested_by)
                stop.set()
                return

    def _beat(self) -> None:
        while not self.stop.wait(HEARTBEAT_S):
            try:
                self.workers.beat(self.name)
            except SQLAlchemyError:
                pass  # a missed beat; the next one says the same


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m syncline.orchestration.worker")
    parser.add_argument("--workspace", required=True, type=Path)
    parser.add_argument("--name", default=f"{socket.gethostname()}-{os.getpid()}")
    args = parser.parse_args(argv)
    url = os.environ.get("SYNCLINE_METADATA_URL")
    if not url:
        print("worker: SYNCLINE_METADATA_URL is not set", file=sys.stderr)
        return 2
    with StopRequest() as stop, MetadataStore(url) as store:
        signal.signal(signal.SIGHUP, lambda *_: stop.event.set())  # `up` died: stop cleanly
        share_budgets(store.bucket)  # a REST source's rate_limit holds across all workers
        Worker(store, args.workspace, args.name, stop.event).serve()
    return 0


if __name__ == "__main__":
    sys.exit(main())
