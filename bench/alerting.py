"""Benchmark: alert rule evaluation and notification delivery.

Usage: python bench/alerting.py [--connections 1000] [--runs 100000] [--notifications 10000]
                                [--channels 10]

* evaluation: a SQLite store holding `--connections` connections and `--runs` runs (a third
  failed, their messages of a few dozen shapes; see bench/observability.py), a workspace of
  those connections and 20 rules over every signal (both built-in ones included): the first
  evaluation (every firing rule written with its notifications) and the steady tick after it
  (median of 20). Goal: <= 100 ms per tick.
* delivery: `--notifications` pending notifications spread over `--channels` webhook channels,
  each a receiver on loopback in another process (HTTP/1.1 keep-alive), drained by one
  `Deliverer.drain` into a fresh SQLite store. Goal: >= 500 notifications/s.
"""

from __future__ import annotations

import argparse
import datetime as dt
import multiprocessing
import os
import statistics
import sys
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import yaml

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from observability import fill  # noqa: E402

from syncline.alerting.delivery import Deliverer  # noqa: E402
from syncline.alerting.notification import Notification  # noqa: E402
from syncline.alerting.rules import Evaluator  # noqa: E402
from syncline.config import load_workspace  # noqa: E402
from syncline.store.store import MetadataStore  # noqa: E402

WORK = HERE / ".work" / "alerting"
RULES = {
    "connection-down": {"notify": ["ops"]}, "freshness-breach": {"notify": ["ops"]},
    "too-many-failing": {"when": "failing_connections > 5", "for": "10m", "notify": ["ops"]},
    "many-failing": {"when": "failing_connections > 50", "severity": "critical", "notify": ["ops"]},
    "backlog": {"when": "queue_size > 100", "for": "15m", "notify": ["ops"]},
    "slow-queue": {"when": "queue_wait > 10m", "notify": ["ops"]},
    "down-1h": {"when": "connection_down > 1h", "notify": ["ops"]},
    "down-48h": {"when": "connection_down > 48h", "severity": "critical", "notify": ["ops"]},
    "stale": {"when": "freshness_breach > 6h", "notify": ["ops"]},
    "quarantine": {"when": "quarantined_rows > 5%", "notify": ["ops"]},
    "quarantine-high": {"when": "quarantined_rows > 50%", "severity": "error"},
    "slot": {"when": "slot_lag > 1GB", "notify": ["ops"]},
    "slot-high": {"when": "slot_lag > 10GB", "severity": "critical"},
    "wide-failure": {"when": "failure_group_connections >= 10", "notify": ["ops"]},
    "wider-failure": {"when": "failure_group_connections >= 100", "severity": "critical"},
    "every-failure": {"when": "run.failed", "notify": ["ops"]},
    "every-crash": {"when": "run.crashed", "notify": ["ops"]},
    "schema": {"when": "schema.changed"},
    "quarantined-event": {"when": "rows.quarantined"},
    "lost-worker": {"when": "worker.lost", "notify": ["ops"]},
}


def evaluation(connections: int, runs: int) -> None:
    WORK.mkdir(parents=True, exist_ok=True)
    path = WORK / "store.db"
    path.unlink(missing_ok=True)
    url = f"sqlite:///{path}"
    (WORK / "syncline.yaml").write_text(yaml.safe_dump({
        "version": 1, "metadata": url,
        "sources": {"db": {"type": "sqlite", "path": "src.db"}},
        "destinations": {"wh": {"type": "duckdb", "path": "wh.duckdb"}},
        "connections": {f"c{c:04d}": {"source": "db", "destination": "wh", "schedule": "every 1h"}
                        for c in range(connections)},
        "channels": {"ops": {"type": "webhook", "url": "http://127.0.0.1:9/", "secret": "bench"}},
        "alerts": RULES}))
    ws = load_workspace(WORK)
    assert len(ws.rules) == 20, len(ws.rules)
    with MetadataStore(url) as store:
        print(f"filling a store with {connections:,} connections and {runs:,} runs ...", file=sys.stderr)
        fill(store, connections, runs)
        now = dt.datetime(2026, 11, 1, tzinfo=dt.UTC) + dt.timedelta(seconds=runs * 20 + 600)
        at = [now]
        evaluator = Evaluator(store, lambda: at[0])
        began = time.perf_counter()
        first = evaluator.evaluate(ws)
        first_s = time.perf_counter() - began
        at[0] = now + dt.timedelta(seconds=31)  # past group_wait: the firing ones are told
        began = time.perf_counter()
        told = evaluator.evaluate(ws)
        told_s = time.perf_counter() - began
        ticks = []
        for _ in range(20):
            began = time.perf_counter()
            evaluator.evaluate(ws)
            ticks.append(time.perf_counter() - began)
    print(f"\nrule evaluation over {connections:,} connections, 20 rules, {runs:,} runs:")
    print(f"  first evaluation  {first_s * 1000:8.1f} ms  ({len(first.fired):,} firing, "
          f"{len(first.pending):,} pending)")
    print(f"  telling them      {told_s * 1000:8.1f} ms  ({told.queued:,} grouped notifications "
          "queued)")
    print(f"  steady tick       {statistics.median(ticks) * 1000:8.1f} ms  median of 20 "
          f"(min {min(ticks) * 1000:.1f}, max {max(ticks) * 1000:.1f})   goal <= 100 ms")


def _serve(port: int) -> None:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_POST(self) -> None:
            self.rfile.read(int(self.headers.get("Content-Length") or 0))
            # one write: headers and body apart would meet delayed ACKs (40 ms a request)
            self.wfile.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")

        def log_message(self, *_: object) -> None:
            pass

    ThreadingHTTPServer(("127.0.0.1", port), Handler).serve_forever()


def delivery(notifications: int, channels: int) -> None:
    import socket

    ports = []
    for _ in range(channels):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            ports.append(s.getsockname()[1])
    servers = [multiprocessing.Process(target=_serve, args=(p,), daemon=True) for p in ports]
    for proc in servers:
        proc.start()
    time.sleep(0.5)
    root = WORK / "delivery"
    root.mkdir(parents=True, exist_ok=True)
    path = root / "store.db"
    path.unlink(missing_ok=True)
    url = f"sqlite:///{path}"
    (root / "syncline.yaml").write_text(yaml.safe_dump({
        "version": 1, "metadata": url,
        "channels": {f"hook{i}": {"type": "webhook", "url": f"http://127.0.0.1:{p}/",
                                  "secret": "bench-secret"} for i, p in enumerate(ports)}}))
    ws = load_workspace(root)
    now = dt.datetime.now(dt.UTC)
    items = []
    for n in range(notifications):
        note = Notification(id=f"bench-{n}", kind="run.failed", time=now, severity="error",
                            connection=f"c{n % 1000:04d}", body={"message": "connection refused",
                                                                 "rows_read": 0, "attempts": 3})
        items.append((f"hook{n % channels}", note.id, note.kind, note.payload()))
    try:
        with MetadataStore(url) as store:
            store.outbox().put(items, now)
            began = time.perf_counter()
            report = Deliverer(store, lambda: now).drain(ws, release=True)
            took = time.perf_counter() - began
            left = store.outbox().counts()
    finally:
        for proc in servers:
            proc.kill()
    pending = sum(n for (_, status), n in left.items() if status == "pending")
    print(f"\ndelivery of {notifications:,} notifications over {channels} webhook channels (SQLite store):")
    print(f"  drained in        {took:8.2f} s   {report.delivered / took:8.0f} /s   goal >= 500 /s "
          f"({report.delivered:,} delivered, {pending} left, {len(report.errors)} channel errors)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--connections", type=int, default=1000)
    parser.add_argument("--runs", type=int, default=100_000)
    parser.add_argument("--notifications", type=int, default=10_000)
    parser.add_argument("--channels", type=int, default=10)
    args = parser.parse_args()
    print(f"alerting ({os.cpu_count()} cores; figures vary by machine)")
    evaluation(args.connections, args.runs)
    delivery(args.notifications, args.channels)


if __name__ == "__main__":
    main()
