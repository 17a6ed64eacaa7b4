"""`syncline up`: one process tree running a workspace unattended.

The main process applies the workspace file as a config revision (and again whenever the
file changes; an invalid file is reported and the last good revision keeps running), runs
the scheduler and the HTTP server in threads, and supervises N worker processes. The first
SIGTERM or Ctrl-C stops taking runs: the scheduler steps down, each worker stops its run
cleanly (rolled back to the last commit, lease released, queued again), and `up` exits 0
within 30 s (workers still running then are killed). A second signal exits at once.
"""

from __future__ import annotations

import datetime as dt
import errno
import ipaddress
import os
import signal
import socket
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING

import uvicorn
from sqlalchemy.exc import SQLAlchemyError

from syncline import clock
from syncline.alerting.loop import AlertingLoop
from syncline.api.app import ServiceState, create_app
from syncline.config import Workspace, load_workspace, read_document, workspace_from_document
from syncline.engine.watch import set_from_signal
from syncline.errors import ConfigurationError, SynclineError
from syncline.event_kinds import Event
from syncline.monitoring.freshness_watch import EVERY_S as FRESHNESS_EVERY_S
from syncline.monitoring.freshness_watch import FreshnessWatch
from syncline.orchestration.scheduler import Scheduler, Tick
from syncline.orchestration.supervisor import Supervisor, lost_lines, worker_lost
from syncline.regions import DEFAULT as DEFAULT_REGION
from syncline.schedule import parse_duration
from syncline.store.db import mask_url
from syncline.store.leases import pid_alive
from syncline.store.retention import DEFAULT as RETENTION
from syncline.store.revisions import digest
from syncline.store.store import MetadataStore

if TYPE_CHECKING:  # Celery is imported only in distributed mode
    from syncline.orchestration.celery_queue import Waker

SHUTDOWN_S = 30.0
WORKER_GRACE_S = 25.0  # what is left of SHUTDOWN_S goes to the HTTP server and the store
WATCH_S = 1.0
VACUUM_EVERY_S = 3600.0
WORKER_SILENT = dt.timedelta(seconds=30)


@dataclass(frozen=True)
class UpOptions:
    workers: int = 2
    host: str = "127.0.0.1"
    port: int = 8765
    max_memory: int | None = None  # bytes
    #: Celery's broker: runs go to Celery workers (no local workers are started)
    broker: str | None = None
    #: serve /healthz, /readyz and /api/v1/status (`syncline scheduler` serves none)
    http: bool = True
    #: the region of the local workers' runs
    region: str = DEFAULT_REGION


def loopback_only(host: str) -> None:
    """Until authentication exists the service listens on loopback only."""
    try:
        loopback = ipaddress.ip_address(host).is_loopback
    except ValueError:
        loopback = host == "localhost"
    if not loopback:
        raise ConfigurationError(
            f"--host {host} is not a loopback address: the service has no authentication yet, "
            "so it listens on this machine only",
            fix="use --host 127.0.0.1 (the default) or ::1, and put an authenticating reverse "
            "proxy in front of it to reach it from elsewhere")


def bind(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        if exc.errno == errno.EADDRINUSE:
            raise ConfigurationError(f"port {port} on {host} is in use by another process",
                                     fix="choose another with --port, or stop that process "
                                     f"(`lsof -i :{port}` names it)") from None
        raise ConfigurationError(f"cannot listen on {host}:{port}: {exc.strerror}",
                                 fix="choose another --host or --port") from None
    sock.listen(128)
    sock.set_inheritable(False)
    return sock


def say(message: str) -> None:
    stamp = dt.datetime.now(dt.UTC).strftime("%H:%M:%S")
    print(f"{stamp} {message}", file=sys.stderr, flush=True)


class Service:
    def __init__(self, ws: Workspace, options: UpOptions, log: Callable[[str], None] = say) -> None:
        self.ws, self.options, self.say = ws, options, log
        self.stop = threading.Event()
        self.store = MetadataStore(ws.metadata_url(), spool=ws.state_dir)
        self.state = ServiceState(self.store, ws.file, broker=options.broker is not None)
        self._applied: str | None = None
        self._signals = 0
        self._supervisor: Supervisor | None = None
        self._leading = False  # this process's scheduler leads: it alone wakes Celery workers
        self._reached = False  # the broker answered once
        self._vacuumed: float | None = None  # when the retention was last applied (monotonic)
        self._watched: float | None = None  # when freshness SLAs were last checked (monotonic)
        self._freshness = FreshnessWatch(self.store)

    def run(self) -> int:
        loopback_only(self.options.host)
        sock = bind(self.options.host, self.options.port) if self.options.http else None
        waker = None
        if self.options.broker is not None:
            from syncline.orchestration.celery_queue import Waker, make_app

            waker = Waker(make_app(self.options.broker))
        self.apply()
        self.reap_workers()  # those of an `up` that was killed
        env = {**os.environ, "SYNCLINE_METADATA_URL": self.ws.metadata_url()}
        supervisor = self._supervisor = Supervisor(self.store, self.ws.root, self.options.workers,
                                                   env, self.say, self.options.max_memory,
                                                   self.options.region)
        server = uvicorn.Server(uvicorn.Config(create_app(self.state), log_level="warning",
                                               lifespan="off", access_log=False))
        scheduler = Scheduler(self.store, self.store.queue())
        alerting = AlertingLoop(self.store, self.ws.root, self.ws.file, self.say)
        threads = [threading.Thread(target=scheduler.run, args=(self.stop, 1.0, self._ticked),
                                    name="scheduler", daemon=True),
                   threading.Thread(target=alerting.run, args=(self.stop,), name="alerting",
                                    daemon=True)]
        if sock is not None:
            threads.append(threading.Thread(target=server.run, kwargs={"sockets": [sock]}, name="http",
                                            daemon=True))
        previous = {sig: signal.signal(sig, self._on_signal) for sig in (signal.SIGTERM, signal.SIGINT)}
        try:
            supervisor.start()
            for t in threads:
                t.start()
            host = f"[{self.options.host}]" if ":" in self.options.host else self.options.host
            runs = (f"runs on Celery ({mask_url(self.options.broker)})" if self.options.broker
                    else f"{self.options.workers} worker(s)")
            http = (f", http://{host}:{self.options.port} (healthz, readyz, /api/v1/status)"
                    if sock is not None else "")
            self.say(f"syncline {'up' if sock is not None else 'scheduler'}: {runs}, scheduler{http}; "
                     "Ctrl-C stops")
            while not self.stop.wait(WATCH_S):
                supervisor.poll()
                self.apply_if_changed()
                self.reap_workers()
                if waker is not None and self._leading:
                    self._wake(waker)
                if self._leading:
                    self.vacuum_if_due()
                    self.watch_freshness_if_due()
            self.say("stopping: no new runs; running syncs stop at their next batch")
            began = time.monotonic()
            killed = supervisor.stop(WORKER_GRACE_S)
            if killed:
                self.say(f"killed after {WORKER_GRACE_S:.0f}s: {', '.join(killed)}")
            server.should_exit = True
            for t in threads:
                t.join(max(1.0, SHUTDOWN_S - (time.monotonic() - began)))
            self.say("stopped")
            return 0
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)
            if sock is not None:
                sock.close()
            self.store.close()

    def _on_signal(self, signum: int, _frame: FrameType | None) -> None:
        self._signals += 1
        if self._signals == 1:
            set_from_signal(self.stop)
            return
        os.write(2, b"second signal: killing the workers and exiting now\n")  # no locks here
        if self._supervisor is not None:
            self._supervisor.kill()
        os._exit(128 + signum)

    def _wake(self, waker: Waker) -> None:
        """A wake on the broker for each queued run not yet woken for (see `celery_queue`);
        with nothing to wake, the broker is still reached once at start and while it is away,
        so its absence is said at once and its return too."""
        try:
            queued = [(e.id, e.region) for e in self.store.queue().entries(("queued",))]
            if not queued and (not self._reached or "broker" in self.state.notes):
                waker.ping()
            sent = waker(queued, dt.datetime.now(dt.UTC))
            self._reached = True
        except Exception as exc:  # the broker or the store away: the queue keeps the runs
            if "broker" not in self.state.notes:  # said once until it answers again
                self.state.notes["broker"] = type(exc).__name__
                broker = mask_url(self.options.broker or "")
                self.say(f"cannot wake workers through the broker {broker} ({type(exc).__name__}: "
                         f"{str(exc).replace(self.options.broker or '', broker)}); runs stay queued "
                         f"in the store and are woken for once it answers (trying every {WATCH_S:g}s)")
            return
        if self.state.notes.pop("broker", None) is not None:
            self.say(f"the broker answers again: woke {sent} queued run{'s' if sent != 1 else ''}")

    def reap_workers(self) -> None:
        """Mark lost the workers that are gone (on this host: their process is gone; on another:
        silent for WORKER_SILENT), freeing their queue entries; their runs are reaped."""
        workers = self.store.workers()
        host = socket.gethostname()
        gone = [w for w in workers.list() if w.host == host and not pid_alive(w.pid)]
        gone += [w for w in workers.silent(WORKER_SILENT) if w.host != host]
        if gone:
            self.store.reap_stale_runs()  # their runs crashed, then are queued again
        for w in gone:
            note = f"worker {w.name} (pid {w.pid} on {w.host}) stopped sending heartbeats"
            workers.ended(w.name, "lost", note)
            worker_lost(self.store, w.name, w.host, w.pid, w.region, note)
            lost = self.store.queue().abandon(w.name, note)
            self.say(note + "; marked lost")
            for line in lost_lines(lost, note):
                self.say(line)

    def watch_freshness_if_due(self) -> None:
        """Say when a connection's data breaches its freshness SLA, and when it is back within
        it (the leader only, every FRESHNESS_EVERY_S)."""
        now = time.monotonic()
        if self._watched is not None and now - self._watched < FRESHNESS_EVERY_S:
            return
        self._watched = now
        try:
            revision = self.store.revisions().latest()
            if revision is None:
                return
            ws = workspace_from_document(revision.document, root=self.ws.root, file=self.ws.file)
            for event in self._freshness.check(ws, clock.now()):
                self.say(f"{event.connection}: {event.kind} (data {event.body['freshness_s']:.0f}s old, "
                         f"SLA {event.body['sla_s']:.0f}s)")
        except (SQLAlchemyError, SynclineError) as exc:
            self.say(f"freshness: cannot check now ({type(exc).__name__}); trying again")

    def vacuum_if_due(self, now: float | None = None) -> None:
        """Apply the retention of the newest revision, once an hour (the leader only)."""
        now = time.monotonic() if now is None else now
        if self._vacuumed is not None and now - self._vacuumed < VACUUM_EVERY_S:
            return
        self._vacuumed = now
        try:
            revision = self.store.revisions().latest()
            keep = parse_duration(str((revision.document if revision else {}).get("retention")
                                      or RETENTION))
            deleted = self.store.vacuum(keep)
        except (SQLAlchemyError, SynclineError) as exc:
            self.say(f"retention: cannot vacuum the store now ({type(exc).__name__}); trying in an hour")
            return
        if any(deleted.values()):
            self.say("retention: deleted " + ", ".join(f"{n:,} {t}" for t, n in deleted.items() if n))

    def _ticked(self, tick: Tick) -> None:
        if tick.error:
            self.say(f"scheduler: tick failed ({tick.error}); trying again")
            return
        self.state.last_tick = tick.at
        self._leading = bool(tick.leadership and tick.leadership.mine)
        for entry in tick.queued:
            self.say(f"scheduler: queued {entry.connection} (due {entry.not_before:%H:%M:%S} UTC)")

    def apply(self) -> None:
        """Apply the workspace file; on start an invalid file is fatal, later it is reported."""
        document = read_document(self.ws.file)
        revision, created = self.store.revisions().apply(document, origin=f"file:{self.ws.file}")
        self._applied = digest(document)
        self.say(f"config revision {revision.number} {'applied' if created else 'is current'}")

    def apply_if_changed(self) -> None:
        try:
            document = read_document(self.ws.file)
            if digest(document) == self._applied:
                return
            load_workspace(self.ws.file)  # validate fully before it becomes a revision
            self.apply()
        except ConfigurationError as exc:
            key = digest({"error": str(exc)})
            if self.state.notes.get("config") != key:
                self.state.notes["config"] = key
                self.say(f"configuration error, still running the last good revision: {exc}")
                self.store.emitter.emit(Event("config.invalid", {"message": str(exc)}))
        except SynclineError as exc:
            self.say(f"cannot apply the workspace file: {exc}")


_UNITS = {"": 1, "b": 1, "k": 1000, "kb": 1000, "kib": 1024, "m": 1000**2, "mb": 1000**2,
          "mib": 1024**2, "g": 1000**3, "gb": 1000**3, "gib": 1024**3}


def parse_size(text: str) -> int:
    """`512MB`, `2GiB`, `1.5GB` as bytes; ConfigurationError naming --max-memory otherwise."""
    number = text.strip().lower().rstrip("bikmg ")
    unit = text.strip().lower()[len(number):].strip()
    try:
        value = float(number) * _UNITS[unit]
    except (ValueError, KeyError):
        value = 0
    if value < 1 << 20:
        raise ConfigurationError(f"--max-memory {text!r} is not a size of at least 1MiB",
                                 fix="write e.g. 512MB or 2GiB")
    return int(value)


def up(root: Path | None, options: UpOptions) -> int:
    ws = load_workspace(root)
    return Service(ws, options).run()
