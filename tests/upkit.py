"""Running `syncline up` in tests: a subprocess on a free loopback port, its clock in a file
the test moves, a workspace whose source takes its time (tests/orchestration/slow_source.py)."""

from __future__ import annotations

import datetime as dt
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import yaml

from syncline import clock
from syncline.store.store import MetadataStore

HERE = Path(__file__).resolve().parent / "orchestration"
#: The fake clock's start: noon tomorrow, always after the real time, so a run the test queues
#: with the real clock is due for processes on the fake one (a fixed date would pass one day)
T0 = (dt.datetime.now(dt.UTC) + dt.timedelta(days=1)).replace(hour=12, minute=0, second=0, microsecond=0)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_for(predicate: Callable[[], Any], what: str | Callable[[], str],
             timeout: float = 30) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            found = predicate()
        except (httpx.HTTPError, OSError):
            found = None
        if found:
            return found
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what if isinstance(what, str) else what()}")


class Up:
    """A `syncline up` process on a workspace, with its clock file and port."""

    def __init__(self, root: Path, *args: str, clocked: bool = True,
                 env: dict[str, str] | None = None) -> None:
        self.root, self.port = root, free_port()
        self.clock = root / "clock"
        if not self.clock.exists():
            clock.write(self.clock, T0)
        self.log = root / f"up-{self.port}.log"
        env = {**os.environ, **(env or {}),
               **({"SYNCLINE_CLOCK": f"file:{self.clock}"} if clocked else {})}
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "syncline", "up", "-w", str(root), "--port", str(self.port),
             "--workers", "1", *args], env=env, stdout=self.log.open("wb"), stderr=subprocess.STDOUT)

    def get(self, path: str) -> httpx.Response:
        return httpx.get(f"http://127.0.0.1:{self.port}{path}", timeout=5)

    def ready(self) -> None:
        wait_for(lambda: self.get("/readyz").status_code == 200,
                 lambda: f"readiness; log:\n{self.output()}")

    def open_gate(self) -> None:
        """Let the slow source's reads go at full speed (see `workspace(gate=True)`)."""
        (self.root / "gate").touch()

    def move_clock(self, seconds: float) -> None:
        clock.write(self.clock, T0 + dt.timedelta(seconds=seconds))

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 35) -> int:
        self.proc.send_signal(sig)
        return self.proc.wait(timeout)


def store_of(root: Path) -> MetadataStore:
    return MetadataStore(f"sqlite:///{root / '.syncline' / 'metadata.db'}")


def committed(root: Path) -> bool:
    """Whether the connection's run committed a checkpoint (mirrored in the store; the DuckDB
    file itself is locked by the worker writing it)."""
    with store_of(root) as store:
        return bool(store.checkpoints("c"))


def runs(root: Path) -> list[Any]:
    with store_of(root) as store:
        return list(reversed(store.runs(limit=100)))


def workspace(root: Path, rows: int = 30, pause_s: float = 0.0, schedule: str = "every 1m",
              source: dict[str, Any] | None = None, gate: bool = False, **more: Any) -> Path:
    """A connection `c` from the slow source into wh.duckdb (schema dst); with `gate`, a read's
    pages after its first come one every 0.2 s until `Up.open_gate`."""
    doc = {
        "version": 1,
        "sources": {"slow": {"type": "python", "class": "slow_source:Slow", "path": str(HERE),
                             "config": {"rows": rows, "pause_s": pause_s, **(source or {}),
                                        **({"gate": str(root / "gate")} if gate else {})}}},
        "destinations": {"wh": {"type": "duckdb", "path": "wh.duckdb"}},
        "connections": {"c": {"source": "slow", "destination": "wh", "destination_schema": "dst",
                              "schedule": schedule, "streams": {"ticks": {
                                  "mode": "incremental", "cursor": "id", "write": "merge"}},
                              **more}},
    }
    (root / "syncline.yaml").write_text(yaml.safe_dump(doc))
    return root
