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
import time
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy.exc import SQLAlchemyError

from syncline.config import workspace_file, workspace_from_document
from syncline.engine.observer import Announcing, RunObserver
from syncline.engine.run import Runner
from syncline.engine.watch import StopRequest, set_from_signal
from syncline.errors import ConfigurationError, SynclineError
from syncline.orchestration.limits import resources
from syncline.orchestration.queue import QueuedRun, RunRequest, Slot
from syncline.regions import DEFAULT as DEFAULT_REGION
from syncline.schedule import parse_duration
from syncline.sources.rest.budget import share_budgets
from syncline.store.leases import now_utc
from syncline.store.store import MetadataStore

HEARTBEAT_S = 2.0
RECYCLE = 75  # exit code: over --max-memory, start a fresh worker at once (not a crash)
KILLED = 76  # exit code: a run did not stop in time after its cancel or deadline
POLL_S = 0.5
CANCEL_POLL_S = 0.5


@dataclass
class Watch:
    """What the watcher of one run knows: when it started, what stopped it, and why."""

    entry: QueuedRun
    limit: str | None  # max_run_duration as written
    stop: threading.Event = field(default_factory=threading.Event)
    done: threading.Event = field(default_factory=threading.Event)
    run_id: int | None = None
    cancelled_by: str | None = None
    timed_out: bool = False

    @property
    def deadline_s(self) -> float | None:
        return parse_duration(self.limit).total_seconds() if self.limit else None


class Worker:
    def __init__(self, store: MetadataStore, root: Path, name: str, stop: threading.Event,
                 max_memory: int | None = None, regions: tuple[str, ...] = (DEFAULT_REGION,)) -> None:
        self.store, self.root, self.name, self.stop = store, root, name, stop
        self.max_memory = max_memory
        self.regions = regions  # it takes runs of these regions only
        self.queue = store.queue()
        self.workers = store.workers()
        self._limits: tuple[int, dict[str, tuple[Slot, ...]]] | None = None

    def serve(self) -> int:
        """Take runs until stopped (0), or until over `max_memory` after a run (RECYCLE)."""
        self.workers.register(self.name, region=",".join(self.regions), queue=self.queue.name)
        beating = threading.Thread(target=self._beat, name="heartbeat", daemon=True)
        beating.start()
        note = "stopped by a signal"
        try:
            while not self.stop.is_set():
                entry = self.queue.claim(self.name, resources=self._resources(), regions=self.regions)
                if entry is None:
                    self.stop.wait(POLL_S)
                    continue
                self.run(entry)
                rss = resident_bytes()
                if self.max_memory is not None and rss > self.max_memory:
                    note = (f"recycled: {rss >> 20} MiB resident after a run, over --max-memory "
                            f"{self.max_memory >> 20} MiB")
                    return RECYCLE
            return 0
        finally:
            self.workers.ended(self.name, "stopped", note)

    def run(self, entry: QueuedRun) -> None:
        note, again = "failed before it started", None
        watch = Watch(entry, None)
        try:
            revision = self.store.revisions().latest()
            if revision is None:
                raise ConfigurationError("no config revision in the store",
                                         fix="run `syncline apply` (or restart `syncline up`)")
            file = workspace_file(self.root)
            ws = workspace_from_document(revision.document, root=file.parent, file=file)
            conn = ws.connection(entry.connection)
            watch.limit = conn.max_run_duration
            threading.Thread(target=self._watch, args=(watch,), name="run-watch", daemon=True).start()
            reporting = Announcing(RunObserver(), lambda connection, run_id: self._started(
                watch, connection, run_id))
            result = Runner(ws, self.store, reporting, revision=revision.number,
                            stop=watch.stop).sync(entry.connection, streams=list(entry.streams) or None,
                                                  full_refresh=entry.full_refresh, trigger=entry.trigger)
            note = f"run {result.run_id} {result.status}"
            if result.status == "interrupted" and (watch.cancelled_by or watch.timed_out):
                note = self._overrule(watch)
            elif result.status == "interrupted" and self.stop.is_set():  # a shutdown: run it again
                again = RunRequest(entry.connection, entry.trigger, entry.full_refresh, entry.streams,
                                   retry=entry.retry, region=entry.region)
            elif (result.status in ("failed", "partial") and result.error is not None
                  and result.error.retryable
                  and entry.retry + 1 < conn.run_retry.max_runs):
                wait = parse_duration(conn.run_retry.backoff) * 2 ** entry.retry
                again = RunRequest(entry.connection, "retry", entry.full_refresh, entry.streams,
                                   not_before=now_utc() + wait, retry=entry.retry + 1,
                                   region=entry.region)
                note += f"; runs again in {wait} (run_retry {entry.retry + 2} of {conn.run_retry.max_runs})"
        except SynclineError as exc:
            note = f"{exc.failure_class}: {exc.message}"
        finally:
            watch.done.set()
            self.queue.finish(entry.id, note=note)
            self.workers.beat(self.name, running=False)
        if again is not None:
            self.queue.put(again)

    def _overrule(self, watch: Watch, killed: str = "") -> str:
        """Record why the service stopped a run; the note for its queue entry."""
        assert watch.run_id is not None
        how = killed or "uncommitted rows were rolled back"
        if watch.cancelled_by:
            self.store.overrule(watch.run_id, "cancelled", None,
                                f"cancelled by {watch.cancelled_by}; {how}")
            return f"run {watch.run_id} cancelled by {watch.cancelled_by}"
        self.store.overrule(watch.run_id, "failed", "interrupted", f"stopped: it ran longer than "
                            f"max_run_duration {watch.limit}; {how}\n"
                            "  fix: raise max_run_duration, or find why the run is slow")
        return f"run {watch.run_id} stopped at max_run_duration {watch.limit}"

    def _resources(self) -> dict[str, tuple[Slot, ...]]:
        """What each connection's runs hold, from the newest revision (parsed once per revision)."""
        number = self.store.revisions().latest_number()  # every poll: the document only on change
        if number is None:
            return {}
        if self._limits is None or self._limits[0] != number:
            revision = self.store.revisions().get(number)
            assert revision is not None
            file = workspace_file(self.root)
            try:
                ws = workspace_from_document(revision.document, root=file.parent, file=file)
                self._limits = (revision.number, resources(ws))
            except SynclineError:
                self._limits = (revision.number, {})  # the run itself reports the error
        return self._limits[1]

    def _started(self, watch: Watch, connection: str, run_id: int) -> None:
        watch.run_id = run_id
        self.queue.started(watch.entry.id, run_id)
        self.workers.beat(self.name, connection=connection, run_id=run_id, running=True)

    def _watch(self, watch: Watch) -> None:
        """Stop the run when the worker stops, someone cancels it (`syncline cancel`) or it
        passes max_run_duration; if it has not ended `grace` seconds later (a source stuck in a
        call), record why and end this process: `up` starts another worker."""
        began = time.monotonic()
        while not watch.done.wait(CANCEL_POLL_S):
            if self.stop.is_set():
                watch.stop.set()
                return
            if watch.deadline_s is not None and time.monotonic() - began > watch.deadline_s:
                watch.timed_out = True
                break
            try:
                current = self.queue.get(watch.entry.id)
            except SQLAlchemyError:
                continue
            if current is not None and current.cancel_requested_by:
                watch.cancelled_by = current.cancel_requested_by
                break
        else:
            return
        watch.stop.set()
        if watch.done.wait(grace_s()):
            return
        why = "its cancel" if watch.cancelled_by else "max_run_duration"
        note = f"killed: run {watch.run_id} did not stop within {grace_s():g}s of {why}"
        if watch.run_id is not None:
            self._overrule(watch, killed=f"killed after {grace_s():g}s (it did not stop at a "
                           "batch): uncommitted rows were rolled back by the destination")
        self.queue.finish(watch.entry.id, note=note)
        self.workers.ended(self.name, "stopped", note)
        os._exit(KILLED)

    def _beat(self) -> None:
        while not self.stop.wait(HEARTBEAT_S):
            try:
                self.workers.beat(self.name)
            except SQLAlchemyError:
                pass  # a missed beat; the next one says the same


def grace_s() -> float:
    return float(os.environ.get("SYNCLINE_CANCEL_GRACE_S", "30"))


def resident_bytes() -> int:
    """This process's resident memory now (Linux /proc; elsewhere its peak)."""
    try:
        pages = int(Path("/proc/self/statm").read_text().split()[1])
        return pages * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        import resource

        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m syncline.orchestration.worker")
    parser.add_argument("--workspace", required=True, type=Path)
    parser.add_argument("--name", default=f"{socket.gethostname()}-{os.getpid()}")
    parser.add_argument("--max-memory", type=int, default=None, help="bytes")
    parser.add_argument("--region", default=DEFAULT_REGION)
    args = parser.parse_args(argv)
    url = os.environ.get("SYNCLINE_METADATA_URL")
    if not url:
        print("worker: SYNCLINE_METADATA_URL is not set", file=sys.stderr)
        return 2
    with StopRequest() as stop, MetadataStore(url, spool=args.workspace / ".syncline") as store:
        # `up` died: stop cleanly; the kernel may say so more than once, each time the same
        signal.signal(signal.SIGHUP, lambda *_: set_from_signal(stop.event))
        share_budgets(store.bucket)  # a REST source's rate_limit holds across all workers
        return Worker(store, args.workspace, args.name, stop.event, args.max_memory,
                      (args.region,)).serve()


if __name__ == "__main__":
    sys.exit(main())
