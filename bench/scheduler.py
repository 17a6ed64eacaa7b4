"""Benchmark: the scheduler, the run queue and `syncline up` with many connections.

Usage: python bench/scheduler.py [--connections 1000 10000] [--burst 1000] [--workers 4]
                                 [--modes embedded embedded-pg celery]
                                 [--idle 1000] [--skip-burst] [--skip-idle]

* tick: a metadata store (SQLite file) whose revision holds N connections on `every 1h`;
  the first tick (every connection seen for the first time and due), a steady tick (none
  due) and the tick an hour later (all due again). Goal: 1,000 connections <= 100 ms a
  steady tick, 10,000 <= 1 s.
* burst: N tiny runs queued at once (each connection writes its own DuckDB file), side by
  side: `syncline up --workers W` on the SQLite store (embedded), the same on a PostgreSQL
  store (embedded-pg), and `syncline up --broker` with `syncline worker --workers W` on
  Celery over Redis with the PostgreSQL store (celery): due -> started p50 and p99, and
  runs per minute, so Celery's per-run overhead is a figure. PostgreSQL and Redis are
  those of SYNCLINE_BENCH_PG (default postgresql://postgres@127.0.0.1:5432/postgres; a
  database syncline_bench is made afresh) and SYNCLINE_BENCH_REDIS (default
  redis://127.0.0.1:6379/15, emptied).
* idle: `syncline up` with N manual connections, idle: resident memory of the main process
  and of each worker (goal: < 250 MB and < 200 MB), and the process tree's PSS.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import shutil
import signal
import socket
import sqlite3
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import yaml

from syncline.orchestration.queue import RunRequest
from syncline.orchestration.scheduler import Scheduler
from syncline.store.store import MetadataStore

HERE = Path(__file__).resolve().parent
WORK = HERE / ".work" / "scheduler"
T0 = dt.datetime(2026, 12, 7, 12, 0, tzinfo=dt.UTC)


def tick_figures(n: int) -> dict[str, float]:
    root = WORK / f"tick-{n}"
    shutil.rmtree(root, ignore_errors=True)
    root.mkdir(parents=True)
    with MetadataStore(f"sqlite:///{root / 'metadata.db'}") as store:
        store.revisions().apply({"version": 1, "connections": {
            f"c{i:05d}": {"source": "s", "destination": "d", "schedule": "every 1h",
                          "schedule_jitter": "30s"} for i in range(n)}}, "file:bench")
        scheduler = Scheduler(store, store.queue())

        def timed(now: dt.datetime) -> tuple[float, int]:
            began = time.perf_counter()
            done = scheduler.tick(now)
            return (time.perf_counter() - began) * 1000, len(done.queued)

        first, queued = timed(T0)
        assert queued == n, queued
        steady = [timed(T0 + dt.timedelta(seconds=s))[0] for s in range(1, 6)]
        q = store.queue()
        for entry in q.entries(("queued",), limit=n + 1):
            q.finish(entry.id, now=T0)
        hour, queued = timed(T0 + dt.timedelta(hours=1, seconds=31))
        assert queued == n, queued
    return {"first": first, "steady": statistics.median(steady), "hour": hour}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def workspace(root: Path, n: int, schedule: str) -> Path:
    shutil.rmtree(root, ignore_errors=True)
    root.mkdir(parents=True)
    con = sqlite3.connect(root / "src.db")
    con.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT)")
    con.executemany("INSERT INTO t VALUES (?, ?)", [(i, f"v{i}") for i in range(10)])
    con.commit()
    con.close()
    doc: dict[str, Any] = {
        "version": 1, "sources": {"src": {"type": "sqlite", "path": "src.db"}},
        "destinations": {f"d{i:05d}": {"type": "duckdb", "path": f"wh/{i:05d}.duckdb"} for i in range(n)},
        "connections": {f"c{i:05d}": {"source": "src", "destination": f"d{i:05d}", "schedule": schedule,
                                      "streams": {"t": {"mode": "full_refresh", "write": "replace"}}}
                        for i in range(n)}}
    (root / "wh").mkdir()
    (root / "syncline.yaml").write_text(yaml.safe_dump(doc))
    return root


def start_up(root: Path, workers: int, env: dict[str, str] | None = None,
             broker: str | None = None) -> tuple[subprocess.Popen[bytes], int]:
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "syncline", "up", "-w", str(root), "--port",
                             str(port), "--workers", str(workers),
                             *(["--broker", broker] if broker else [])],
                            env={**os.environ, **(env or {})},
                            stdout=subprocess.DEVNULL, stderr=(root / "up.log").open("wb"))
    import httpx

    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=5).status_code == 200:
                return proc, port
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    proc.kill()
    raise RuntimeError(f"up did not get ready; see {root / 'up.log'}")


def fresh_pg() -> str:
    """A new, empty database syncline_bench: its SQLAlchemy URL."""
    import psycopg

    server = os.environ.get("SYNCLINE_BENCH_PG", "postgresql://postgres@127.0.0.1:5432/postgres")
    with psycopg.connect(server, autocommit=True) as con:
        con.execute("DROP DATABASE IF EXISTS syncline_bench WITH (FORCE)")
        con.execute("CREATE DATABASE syncline_bench")
    base = server.rsplit("/", 1)[0].replace("postgresql://", "postgresql+psycopg://", 1)
    return f"{base}/syncline_bench"


def fresh_redis() -> str:
    import redis

    url = os.environ.get("SYNCLINE_BENCH_REDIS", "redis://127.0.0.1:6379/15")
    client = redis.Redis.from_url(url)
    client.flushdb()
    client.close()
    return url


def burst_figures(n: int, workers: int, mode: str = "embedded") -> dict[str, float]:
    root = workspace(WORK / f"burst-{mode}", n, "manual")
    url = f"sqlite:///{root / '.syncline' / 'metadata.db'}" if mode == "embedded" else fresh_pg()
    env = {"SYNCLINE_METADATA_URL": url}
    broker = fresh_redis() if mode == "celery" else None
    celery = None
    if broker is not None:  # up starts no worker of its own: these are the workers
        celery = subprocess.Popen([sys.executable, "-m", "syncline", "worker", "-w", str(root),
                                   "--broker", broker, "--workers", str(workers)],
                                  env={**os.environ, **env}, stdout=subprocess.DEVNULL,
                                  stderr=(root / "worker.log").open("wb"), start_new_session=True)
    proc, _port = start_up(root, workers, env, broker)
    try:
        with MetadataStore(url) as store:
            q = store.queue()
            queued_at = dt.datetime.now(dt.UTC)
            for i in range(n):
                q.put(RunRequest(f"c{i:05d}", "manual"), now=queued_at)
            while q.entries(("queued", "claimed"), limit=1):
                time.sleep(0.5)
            runs = store.runs(limit=n + 10)
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(60)
        if celery is not None:
            celery.send_signal(signal.SIGTERM)
            celery.wait(60)
    waits = sorted((r.started_at - queued_at).total_seconds() for r in runs)
    span = (max(r.ended_at or r.started_at for r in runs) - queued_at).total_seconds()
    ok = sum(r.status == "succeeded" for r in runs)
    return {"runs": len(runs), "succeeded": ok, "p50": waits[len(waits) // 2],
            "p99": waits[min(len(waits) - 1, int(len(waits) * 0.99))], "per_minute": len(runs) / span * 60}


def memory(pid: int) -> tuple[float, float]:
    """(RSS, PSS) in MB of one process."""
    rss = pss = 0.0
    for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
        if line.startswith("Rss:"):
            rss = int(line.split()[1]) / 1024
        elif line.startswith("Pss:"):
            pss = int(line.split()[1]) / 1024
    return rss, pss


def idle_figures(n: int, workers: int) -> dict[str, Any]:
    root = workspace(WORK / "idle", n, "manual")
    proc, _port = start_up(root, workers)
    try:
        time.sleep(10)
        children = [int(p) for p in subprocess.run(["pgrep", "-P", str(proc.pid)], capture_output=True,
                                                   text=True).stdout.split()]
        main = memory(proc.pid)
        kids = [memory(p) for p in children]
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(60)
    return {"main_rss": main[0], "worker_rss": max((k[0] for k in kids), default=0.0),
            "tree_pss": main[1] + sum(k[1] for k in kids), "workers": len(kids)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--connections", type=int, nargs="*", default=[1000, 10000])
    parser.add_argument("--burst", type=int, default=1000)
    parser.add_argument("--idle", type=int, default=1000)
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--modes", nargs="*", default=["embedded", "embedded-pg", "celery"],
                        choices=["embedded", "embedded-pg", "celery"])
    parser.add_argument("--skip-burst", action="store_true")
    parser.add_argument("--skip-idle", action="store_true")
    args = parser.parse_args()
    print(f"scheduler and run queue ({os.cpu_count()} cores; SQLite metadata store; figures vary by machine)")
    print(f"{'connections':>12} {'first tick ms':>14} {'steady tick ms':>15} {'all due ms':>11}   goal (steady)")
    for n in args.connections:
        t = tick_figures(n)
        goal = "<= 100 ms" if n <= 1000 else "<= 1000 ms"
        print(f"{n:>12,} {t['first']:>14.1f} {t['steady']:>15.1f} {t['hour']:>11.1f}   {goal}")
    if not args.skip_burst:
        print(f"\nburst: {args.burst:,} tiny runs queued at once on {args.workers} workers")
        print(f"{'mode':>12} {'store':>10} {'runs':>6} {'succeeded':>10} {'p50 s':>7} {'p99 s':>7} "
              f"{'runs/min':>9}")
        for mode in args.modes:
            b = burst_figures(args.burst, args.workers, mode)
            store = "SQLite" if mode == "embedded" else "PostgreSQL"
            print(f"{mode:>12} {store:>10} {b['runs']:>6,.0f} {b['succeeded']:>10,.0f} {b['p50']:>7.1f} "
                  f"{b['p99']:>7.1f} {b['per_minute']:>9.0f}", flush=True)
    if not args.skip_idle:
        m = idle_figures(args.idle, 2)
        print(f"\nup idle with {args.idle:,} connections, {m['workers']} workers:")
        print(f"  main process RSS {m['main_rss']:.0f} MB (goal < 250), largest worker RSS "
              f"{m['worker_rss']:.0f} MB (goal < 200), tree PSS {m['tree_pss']:.0f} MB")


if __name__ == "__main__":
    main()
