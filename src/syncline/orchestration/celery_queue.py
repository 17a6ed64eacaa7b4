"""Runs on Celery: the store's run queue stays the ledger, Celery carries the wake-ups.

Every queued entry in the store gets a **wake** task on the broker (Redis or RabbitMQ). A
Celery worker that receives one claims the next entry the store allows (manual triggers
first, `max_concurrent_runs` held) and runs it exactly as an embedded worker does, reading
the connection's config from the store's newest revision. A wake that finds nothing to claim
(a duplicate, a redelivery, a run another worker took) does nothing, so a wake is never
lost work and never double work: the store's atomic claim decides. The scheduler sends a
wake for each entry it has not woken for yet, and again for one still queued after
`REWAKE_S` (a wake lost with a broker restart); a worker that ends a run wakes another
when entries still wait.

Celery's defaults suit short tasks, not hour-long runs: tasks are acknowledged late,
rejected when their worker process dies, and prefetched one at a time.
"""

from __future__ import annotations

import datetime as dt
import os
import socket
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from celery import Celery, signals

from syncline import regions
from syncline.config import BROKER_SCHEMES
from syncline.errors import ConfigurationError

#: The task payload's version: a worker refuses a payload newer than it knows.
PAYLOAD_VERSION = 1
WAKE_TASK = "syncline.wake"
#: The queue of the default region (each region's runs are woken for on its own queue).
DEFAULT_QUEUE = regions.queue_of(regions.DEFAULT)
#: A queued entry still not claimed this long after its wake is woken for again.
REWAKE_S = 30.0
#: Redis redelivers a task not acknowledged this long after delivery (Redis's own default)
VISIBILITY_TIMEOUT_S = 3600.0


def make_app(broker: str) -> Celery:
    """The Celery app of a Syncline deployment on ``broker`` (redis:// or amqp://)."""
    if not broker.startswith(BROKER_SCHEMES):
        raise ConfigurationError(f"broker {broker!r} is not a Redis or RabbitMQ URL",
                                 fix="use redis://HOST:6379/0 or amqp://USER:PASSWORD@HOST:5672//")
    app = Celery("syncline", broker=broker, set_as_current=False)
    if broker.startswith(("redis://", "rediss://")):
        # Redis hands an unacknowledged task to another worker after this long; a run longer
        # than it gets a second wake, which finds its entry claimed and ends at once (sweeps
        # for such tasks every 10 s, or twice per timeout if shorter)
        timeout = visibility_timeout_s()
        app.conf.broker_transport_options = {
            "visibility_timeout": timeout, "unacked_restore_throttle": 1,
            "unacked_restore_interval": max(1, min(10, int(timeout / 2)))}
    app.conf.update(
        task_acks_late=True,  # a run's task is acknowledged when the run has ended
        task_reject_on_worker_lost=True,  # a killed worker's task goes back to the broker
        worker_prefetch_multiplier=1,  # no process holds wakes another could serve
        task_default_queue=DEFAULT_QUEUE,
        task_serializer="json", accept_content=["json"], result_backend=None, task_ignore_result=True,
        broker_connection_retry_on_startup=True, worker_hijack_root_logger=False,
        worker_send_task_events=False, enable_utc=True,
    )
    app.task(name=WAKE_TASK, bind=False, acks_late=True)(wake)
    return app


def visibility_timeout_s() -> float:
    raw = os.environ.get("SYNCLINE_BROKER_VISIBILITY_TIMEOUT", str(VISIBILITY_TIMEOUT_S))
    try:
        seconds = float(raw)
    except ValueError:
        seconds = 0.0
    if seconds <= 0:
        raise ConfigurationError(f"SYNCLINE_BROKER_VISIBILITY_TIMEOUT is {raw!r}",
                                 fix="give it in seconds, e.g. 3600")
    return seconds


def wake(payload: dict[str, Any]) -> str:
    """Claim the next run the store allows and run it; the task's result is what happened."""
    version = payload.get("v") if isinstance(payload, dict) else None
    if not isinstance(version, int) or version > PAYLOAD_VERSION:
        raise ConfigurationError(
            f"a wake task of payload version {version!r}; this worker knows {PAYLOAD_VERSION}",
            fix="upgrade this worker to the Syncline version of the scheduler")
    worker = _process_worker()
    entry = worker.queue.claim(worker.name, resources=worker.limits(), regions=worker.regions)
    if entry is None:
        return "nothing to claim"
    worker.run(entry)
    waiting = {w.entry.region for w in worker.queue.pending()}
    for region in waiting & set(worker.regions):  # a run ended: another may now start
        send_wake(worker.app, region)
    return f"ran entry {entry.id} ({entry.connection})"


def send_wake(app: Celery, region: str = regions.DEFAULT) -> None:
    app.send_task(WAKE_TASK, args=[{"v": PAYLOAD_VERSION}], queue=regions.queue_of(region))


@dataclass
class Waker:
    """The scheduler's side: a wake for every queued entry, and again for one left waiting."""

    app: Celery
    woken: dict[int, dt.datetime] = field(default_factory=dict)

    def __call__(self, queued: list[tuple[int, str]], now: dt.datetime) -> int:
        """Send the wakes ``queued`` (entry id, region) needs now, each on its region's
        queue; how many were sent."""
        sent = 0
        for entry, region in queued:
            last = self.woken.get(entry)
            if last is not None and (now - last).total_seconds() < REWAKE_S:
                continue
            send_wake(self.app, region)
            self.woken[entry] = now
            sent += 1
        waiting = {e for e, _ in queued}
        for gone in [e for e in self.woken if e not in waiting]:
            del self.woken[gone]
        return sent

    def ping(self) -> None:
        """Connect to the broker, or raise why not."""
        with self.app.connection_for_write() as conn:
            conn.connect()


# -- the worker process side ------------------------------------------------------------

_WORKER: Any = None
_LOCK = threading.Lock()


def _process_worker() -> Any:
    """This worker process's Syncline worker: built on its first task, registered in the
    store's worker registry, beating until the process ends."""
    global _WORKER
    with _LOCK:
        if _WORKER is None:
            from syncline.orchestration.celery_worker import CeleryWorker

            _WORKER = CeleryWorker.from_environment(_app_of_process(), _REGIONS)
        return _WORKER


_APP: Celery | None = None
_REGIONS: tuple[str, ...] = (regions.DEFAULT,)  # those of this worker's processes


def _app_of_process() -> Celery:
    assert _APP is not None, "the Celery app is set when the worker starts"
    return _APP


def serve(broker: str, root: Path, processes: int, name: str | None = None,
          loglevel: str = "WARNING", serves: tuple[str, ...] = (regions.DEFAULT,)) -> int:
    """Run a Celery worker of ``processes`` processes on ``broker``, taking the runs of the
    regions it `serves`, until SIGTERM (a warm shutdown: running runs finish) or a second
    signal."""
    global _APP, _REGIONS
    app = _APP = make_app(broker)
    _REGIONS = serves
    os.environ["SYNCLINE_WORKSPACE"] = str(root)
    hostname = name or f"syncline@{socket.gethostname()}-{os.getpid()}"
    signals.worker_process_init.connect(_began, weak=False)  # listed in `syncline workers` at once
    signals.worker_process_shutdown.connect(_ended, weak=False)
    worker = app.Worker(hostname=hostname, concurrency=processes, pool="prefork",
                        queues=[regions.queue_of(r) for r in serves], loglevel=loglevel, without_heartbeat=True,
                        without_mingle=True, without_gossip=True, optimization="fair", quiet=True)
    worker.start()
    return int(worker.exitcode or 0)


def _began(**_: Any) -> None:
    _process_worker()


def _ended(**_: Any) -> None:
    if _WORKER is not None:
        _WORKER.end()
