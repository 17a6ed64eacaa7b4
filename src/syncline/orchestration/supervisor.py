"""Supervising `up`'s worker processes: start N, restart a crashed one with backoff (the crash
recorded in the worker registry, its queue entry freed, its run reaped), stop them all."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from syncline.children import die_with_parent
from syncline.event_kinds import Event
from syncline.orchestration.queue import QueuedRun
from syncline.orchestration.worker import KILLED, RECYCLE
from syncline.regions import DEFAULT as DEFAULT_REGION
from syncline.store.store import MetadataStore

BACKOFF_MAX_S = 60.0
STABLE_S = 60.0  # a worker that lived this long starts its slot's backoff over


@dataclass
class Slot:
    number: int
    process: subprocess.Popen[bytes] | None = None
    name: str = ""
    started: float = 0.0
    crashes: int = 0  # in a row
    restart_at: float | None = None
    generation: int = 0


@dataclass
class Supervisor:
    store: MetadataStore
    root: Path
    count: int
    env: dict[str, str]
    say: Callable[[str], None] = print
    max_memory: int | None = None  # bytes: a worker over it after a run is replaced
    region: str = DEFAULT_REGION  # the workers take runs of this region only
    slots: list[Slot] = field(default_factory=list)

    def start(self) -> None:
        self.slots = [Slot(n) for n in range(1, self.count + 1)]
        for slot in self.slots:
            self._spawn(slot)

    def _spawn(self, slot: Slot) -> None:
        slot.generation += 1
        slot.name = f"{socket.gethostname()}-{os.getpid()}-w{slot.number}"
        if slot.generation > 1:
            slot.name += f".{slot.generation}"
        memory = ["--max-memory", str(self.max_memory)] if self.max_memory else []
        slot.process = subprocess.Popen(
            [sys.executable, "-m", "syncline.orchestration.worker", "--workspace", str(self.root),
             "--name", slot.name, "--region", self.region, *memory], env=self.env,
            # `up` killed: the kernel sends its workers SIGHUP (sometimes more than once), which
            # a worker takes as a request to stop cleanly, never as a second signal
            preexec_fn=die_with_parent(signal.SIGHUP))
        slot.started, slot.restart_at = time.monotonic(), None

    def poll(self) -> None:
        """Notice dead workers; restart those whose backoff is over."""
        now = time.monotonic()
        for slot in self.slots:
            if slot.process is not None and slot.process.poll() is not None:
                code, pid = slot.process.returncode, slot.process.pid
                slot.process = None
                if code in (RECYCLE, KILLED):  # it ended itself, and said why in the registry
                    why = "over --max-memory" if code == RECYCLE else "a run did not stop in time"
                    self.say(f"worker {slot.name} ended ({why}); starting another")
                    slot.crashes, slot.restart_at = 0, now
                    self.store.reap_stale_runs()
                    self._spawn(slot)
                    continue
                slot.crashes = 1 if now - slot.started >= STABLE_S else slot.crashes + 1
                delay = min(BACKOFF_MAX_S, 2.0 ** (slot.crashes - 1))
                slot.restart_at = now + delay
                how = f"killed by signal {-code}" if code < 0 else f"exit code {code}"
                note = f"worker process {slot.name} died ({how}); restarting in {delay:.0f}s"
                self.store.workers().ended(slot.name, "crashed", note)
                worker_lost(self.store, slot.name, socket.gethostname(), pid, self.region, note)
                self.store.reap_stale_runs()  # its run crashed, then is queued again
                lost = self.store.queue().abandon(slot.name, note)
                self.say(note)
                for line in lost_lines(lost, note):
                    self.say(line)
            if slot.process is None and slot.restart_at is not None and now >= slot.restart_at:
                self._spawn(slot)
                self.say(f"worker {slot.name} started")

    def stop(self, grace_s: float) -> list[str]:
        """SIGTERM every worker (each stops its run cleanly), wait up to `grace_s`, then SIGKILL
        what is left; the names of those killed."""
        live = [s for s in self.slots if s.process is not None and s.process.poll() is None]
        for slot in live:
            assert slot.process is not None
            slot.process.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + grace_s
        killed = []
        for slot in live:
            assert slot.process is not None
            try:
                slot.process.wait(max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                slot.process.kill()
                slot.process.wait()
                killed.append(slot.name)
                self.store.workers().ended(slot.name, "crashed", "killed: did not stop in time")
                self.store.queue().abandon(slot.name, "worker killed at shutdown")
        self.store.reap_stale_runs()
        return killed

    def kill(self) -> None:
        """The second signal: no waiting."""
        for slot in self.slots:
            if slot.process is not None and slot.process.poll() is None:
                slot.process.kill()


def worker_lost(store: MetadataStore, name: str, host: str, pid: int, region: str, note: str) -> None:
    store.emitter.emit(Event("worker.lost", {"worker": name, "host": host, "pid": pid, "note": note},
                             region=region.split(",")[0]))


def lost_lines(lost: list[QueuedRun], note: str) -> list[str]:
    """What became of each run a lost worker held, in a line each."""
    return [f"{e.connection}: {f'run {e.run_id}' if e.run_id else f'entry {e.id}'} lost"
            f"{(e.note or '').removeprefix(note)}" for e in lost]
