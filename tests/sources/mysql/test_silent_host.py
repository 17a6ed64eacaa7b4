"""A MariaDB host that accepts TCP and never answers: check and sync end within connect_timeout,
and a stop signal ends a sync as interrupted within seconds."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

HOST = "127.0.0.1"


@pytest.fixture
def silent_port() -> Iterator[int]:
    """A port that accepts connections and never sends a byte (a hung server, a black hole)."""
    server = socket.socket()
    server.bind((HOST, 0))
    server.listen(16)
    held: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        server.settimeout(0.2)
        while not stop.is_set():
            try:
                held.append(server.accept()[0])
            except OSError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield int(server.getsockname()[1])
    stop.set()
    thread.join()
    for s in held:
        s.close()
    server.close()


def workspace(root: Path, port: int, **conn: object) -> Path:
    (root / "syncline.yaml").write_text(yaml.safe_dump({
        "version": 1,
        "sources": {"shop": {"type": "mysql", "host": HOST, "port": port, "user": "root",
                             "database": "test", "connect_timeout": 2}},
        "destinations": {"wh": {"type": "duckdb", "path": "wh.duckdb"}},
        "connections": {"c": {"source": "shop", "destination": "wh", **conn}},
    }))
    return root


def syncline(root: Path, *args: str) -> subprocess.Popen[str]:
    env = {**os.environ, "SYNCLINE_RETRY_BASE_S": "0.1"}
    return subprocess.Popen([sys.executable, "-m", "syncline", *args, "-w", str(root)], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def test_check_of_a_silent_host_ends_within_its_connect_timeout(tmp_path: Path, silent_port: int) -> None:
    started = time.monotonic()
    proc = syncline(workspace(tmp_path, silent_port), "check", "shop", "--json")
    out, err = proc.communicate(timeout=60)
    assert time.monotonic() - started < 15, "check waited past connect_timeout"
    assert proc.returncode == 1, out + err
    [outcome] = json.loads(out)
    assert outcome["failure_class"] == "transient"
    assert "cannot connect" in outcome["message"] and "timed out" in outcome["message"]


def test_a_stop_signal_ends_a_sync_waiting_on_a_silent_host_as_interrupted(
        tmp_path: Path, silent_port: int) -> None:
    root = workspace(tmp_path, silent_port, max_attempts=20)
    proc = syncline(root, "sync", "c")
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:  # until the run is recorded: it waits on the greeting
        listed = subprocess.run([sys.executable, "-m", "syncline", "runs", "c", "-w", str(root),
                                 "--json"], capture_output=True, text=True)
        if listed.returncode == 0 and json.loads(listed.stdout):
            break
        time.sleep(0.2)
    time.sleep(0.5)
    proc.send_signal(signal.SIGTERM)
    stopped = time.monotonic()
    out, err = proc.communicate(timeout=60)
    assert time.monotonic() - stopped < 5, "the signal was not honoured within seconds"
    assert proc.returncode == 143, out + err  # 128 + SIGTERM
    runs = subprocess.run([sys.executable, "-m", "syncline", "runs", "c", "-w", str(root), "--json"],
                          capture_output=True, text=True, check=True)
    [run] = json.loads(runs.stdout)
    assert run["status"] == "interrupted"
