"""Two scheduler processes on one store, their clock driven through SYNCLINE_CLOCK=file:…:
every due run is queued exactly once, and when the leader is killed the other takes over."""

from __future__ import annotations

import datetime as dt
import os
import signal
import subprocess
import sys
import textwrap
import time
from collections import Counter
from pathlib import Path

from syncline import clock
from syncline.store.store import MetadataStore

#: The fake clock's start: noon tomorrow, always after the real time, so a run the test queues
#: with the real clock is due for processes on the fake one (a fixed date would pass one day)
T0 = (dt.datetime.now(dt.UTC) + dt.timedelta(days=1)).replace(hour=12, minute=0, second=0, microsecond=0)
CONNECTIONS = ["a", "b", "c"]

SCHEDULER = textwrap.dedent("""
    import datetime as dt, signal, sys, threading
    from syncline.orchestration.scheduler import Scheduler
    from syncline.store.store import MetadataStore
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    with MetadataStore(sys.argv[1]) as store:
        Scheduler(store, store.queue(), name=sys.argv[2],
                  lease_ttl=dt.timedelta(seconds=30)).run(stop, every_s=0.05)
""")


def wait_for(predicate: object, what: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():  # type: ignore[operator]
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def test_two_schedulers_queue_each_run_once_and_survive_the_leader_being_killed(
        store_url: str, tmp_path: Path) -> None:
    clock_file = tmp_path / "clock"
    clock.write(clock_file, T0)
    env = {**os.environ, "SYNCLINE_CLOCK": f"file:{clock_file}"}
    store = MetadataStore(store_url)
    store.revisions().apply({"version": 1, "connections": {
        n: {"source": "s", "destination": "d", "schedule": "every 1m"} for n in CONNECTIONS}},
        "file:test")
    procs = {name: subprocess.Popen([sys.executable, "-c", SCHEDULER, store_url, name], env=env)
             for name in ("one", "two")}
    queue = store.queue()
    ran: list[tuple[str, dt.datetime]] = []

    def run_due(now: dt.datetime) -> None:
        while (entry := queue.claim("w", now=now)) is not None:
            queue.finish(entry.id, now=now)
            ran.append((entry.connection, entry.not_before))

    try:
        for minute in range(4):
            now = T0 + dt.timedelta(minutes=minute, seconds=1)
            clock.write(clock_file, now)
            wait_for(lambda: len(queue.entries(("queued",))) == len(CONNECTIONS),
                     f"minute {minute}'s runs")
            time.sleep(0.3)  # both schedulers tick several times more: nothing else appears
            run_due(now)
        leader = store.leader("scheduler", "test", dt.timedelta(seconds=1)).hold().holder
        procs[leader].send_signal(signal.SIGKILL)
        procs[leader].wait(10)
        for minute in (4, 5):  # the survivor takes over once the dead leader's lease expires
            now = T0 + dt.timedelta(minutes=minute, seconds=1)
            clock.write(clock_file, now)
            wait_for(lambda: len(queue.entries(("queued",))) == len(CONNECTIONS),
                     f"minute {minute}'s runs after the leader was killed")
            time.sleep(0.3)
            run_due(now)
        survivor = next(p for name, p in procs.items() if name != leader)
        survivor.send_signal(signal.SIGTERM)
        assert survivor.wait(10) == 0
    finally:
        for p in procs.values():
            if p.poll() is None:
                p.kill()
        store.close()
    counts = Counter(ran)
    assert sorted(counts.values()) == [1] * len(CONNECTIONS) * 6  # each run once
    # first seen (never run) at 12:00:01: due then, and every minute after on that phase
    assert sorted({due for _, due in ran}) == [T0 + dt.timedelta(minutes=m, seconds=1)
                                               for m in range(6)]
