"""Benchmark: what observability costs, and how fast its readers are.

Usage: python bench/observability.py [--rows 5000000] [--pairs 5] [--skip-overhead]
                                     [--connections 1000] [--runs 100000]

* overhead: Syncline's full load of bench_pg.events (PostgreSQL on 127.0.0.1:5432 into
  DuckDB, see bench/pg_to_duckdb.py) with events and run logs on, then off
  (`SYNCLINE_OBSERVABILITY=off`, a switch for this benchmark only), interleaved `--pairs`
  times, each in a fresh process: the CPU seconds of each, their medians and spreads. The
  goal holds when the difference of the medians is at most 2% or smaller than the spread.
* readers: a SQLite store holding `--connections` connections and `--runs` runs (each with a
  failed attempt, their messages of a few dozen shapes): one `/metrics` scrape (goal
  <= 100 ms) and `syncline failures`' grouping (goal <= 1 s), best of three.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import random
import statistics
import sys
import time
from pathlib import Path

from sqlalchemy import insert

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import pg_to_duckdb as pg  # noqa: E402

from syncline.failure_signature import remembered  # noqa: E402
from syncline.monitoring.failure_groups import collect  # noqa: E402
from syncline.monitoring.metrics import registry  # noqa: E402
from syncline.store.figures import BUCKETS  # noqa: E402
from syncline.store.models import Attempt, Run, RunTotal  # noqa: E402
from syncline.store.store import MetadataStore  # noqa: E402

WORK = HERE / ".work" / "observability"
SHAPES = [
    "source 'crm_{i}': GET https://api{i}.example.com/v1/contacts?page={n} answered HTTP 401 Unauthorized",
    "source 'shop_{i}': cannot connect: connection to server at \"10.0.{i}.{n}\", port 5432 failed: "
    "Connection refused",
    "destination 'wh_{i}' (/data/wh{i}.duckdb): the DuckDB file /data/wh{i}.duckdb is held by another "
    "process (PID {n}); waited 60s",
    "source 'api_{i}': GET https://api.example.com/v2/items/{n} failed 6 times; last: HTTP 503 "
    "Service Unavailable",
    "the primary key (id) is not unique: {n} key values come {n} times in this read",
]


def overhead(rows: int, pairs: int) -> None:
    pg.prepare(rows, False)
    cpu: dict[str, list[float]] = {"on": [], "off": []}
    for i in range(pairs):
        for mode in ("on", "off") if i % 2 == 0 else ("off", "on"):
            ws = pg.syncline_ws(WORK / f"full_{mode}", "full", "256MB")
            if mode == "off":
                os.environ["SYNCLINE_OBSERVABILITY"] = "off"
            else:
                os.environ.pop("SYNCLINE_OBSERVABILITY", None)
            r = pg.measure(sys.executable, pg.SYNCLINE_RUN, str(ws))
            cpu[mode].append(r["cpu"])
            print(f"  pair {i + 1} {mode:>3}: cpu {r['cpu']:.2f}s, wall {r['wall']:.2f}s", file=sys.stderr)
    os.environ.pop("SYNCLINE_OBSERVABILITY", None)
    on, off = statistics.median(cpu["on"]), statistics.median(cpu["off"])
    spread = max(max(v) - min(v) for v in cpu.values())
    diff = (on - off) / off * 100
    verdict = "holds" if diff <= 2 or (on - off) < spread else "FAILS"
    print(f"\nevents and run logs, {rows:,}-row full load, {pairs} interleaved pairs (CPU seconds):")
    print(f"  on  median {on:.2f}s  {sorted(round(v, 2) for v in cpu['on'])}")
    print(f"  off median {off:.2f}s  {sorted(round(v, 2) for v in cpu['off'])}")
    print(f"  difference {on - off:+.2f}s ({diff:+.1f}%), spread {spread:.2f}s: goal <= 2% or within "
          f"the spread {verdict}")


def fill(store: MetadataStore, connections: int, runs: int) -> None:
    engine = store._engine
    rng = random.Random(7)
    t0 = dt.datetime(2026, 11, 1, tzinfo=dt.UTC)
    run_rows, attempt_rows = [], []
    for i in range(runs):
        c = i % connections
        started = t0 + dt.timedelta(seconds=i * 20)
        status = "failed" if i % 3 == 0 else "succeeded"
        took = rng.uniform(1, 90)
        run_rows.append({"id": i + 1, "connection": f"c{c:04d}", "status": status, "trigger": "schedule",
                         "started_at": started, "ended_at": started + dt.timedelta(seconds=took),
                         "seconds": took,
                         "pid": 1, "host": "bench", "rows_read": 100, "rows_committed": 100,
                         "rows_quarantined": 0, "attempts": 1, "region": "default"})
        message = SHAPES[c % len(SHAPES)].format(i=c, n=rng.randint(1, 99999))
        attempt_rows.append({"run_id": i + 1, "number": 1, "started_at": started, "ended_at": started,
                             "status": "failed", "failure_class": "transient", "failure_message": message,
                             "signature": remembered("transient", message).key})
    totals: dict[tuple[str, str, str], dict[str, object]] = {}
    for r in run_rows:  # as end_run keeps them
        t = totals.setdefault((r["connection"], "default", r["status"]), {  # type: ignore[index]
            "connection": r["connection"], "region": "default", "status": r["status"], "runs": 0,
            "rows_read": 0, "rows_committed": 0, "rows_quarantined": 0, "attempts": 0, "seconds": 0.0,
            "under": [0] * len(BUCKETS), "last_run": 0, "last_ended": None})
        t["runs"] += 1  # type: ignore[operator]
        for k in ("rows_read", "rows_committed", "attempts"):
            t[k] += r[k]  # type: ignore[operator]
        t["seconds"] += r["seconds"]  # type: ignore[operator]
        t["under"] = [n + (r["seconds"] <= b) for n, b in zip(t["under"], BUCKETS, strict=True)]  # type: ignore[call-overload]
        t["last_run"], t["last_ended"] = r["id"], r["ended_at"]
    total_rows = [{**{k: v for k, v in t.items() if k != "under"}, "buckets": json.dumps(t["under"])}
                  for t in totals.values()]
    with engine.begin() as con:
        for start in range(0, runs, 5000):
            con.execute(insert(Run.__table__), run_rows[start:start + 5000])  # type: ignore[arg-type]
            con.execute(insert(Attempt.__table__), attempt_rows[start:start + 5000])  # type: ignore[arg-type]
        con.execute(insert(RunTotal.__table__), total_rows)  # type: ignore[arg-type]


def readers(connections: int, runs: int) -> None:
    WORK.mkdir(parents=True, exist_ok=True)
    path = WORK / "store.db"
    path.unlink(missing_ok=True)
    from prometheus_client import generate_latest

    with MetadataStore(f"sqlite:///{path}") as store:
        print(f"filling a store with {connections:,} connections and {runs:,} runs ...", file=sys.stderr)
        fill(store, connections, runs)
        reg = registry(store)
        scrape = min(_timed(lambda: generate_latest(reg)) for _ in range(3))
        since = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
        grouping = min(_timed(lambda: collect(store, since)) for _ in range(3))
        found = collect(store, since)
    print(f"\nreaders over {connections:,} connections and {runs:,} runs ({runs:,} failed attempts):")
    print(f"  /metrics scrape          {scrape * 1000:8.1f} ms   goal <= 100 ms")
    print(f"  syncline failures        {grouping * 1000:8.1f} ms   goal <= 1000 ms ({len(found)} groups)")


def _timed(work: object) -> float:
    began = time.perf_counter()
    work()  # type: ignore[operator]
    return time.perf_counter() - began


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=5_000_000)
    parser.add_argument("--pairs", type=int, default=5)
    parser.add_argument("--skip-overhead", action="store_true")
    parser.add_argument("--connections", type=int, default=1000)
    parser.add_argument("--runs", type=int, default=100_000)
    args = parser.parse_args()
    print(f"observability ({os.cpu_count()} cores; figures vary by machine)")
    readers(args.connections, args.runs)
    if not args.skip_overhead:
        overhead(args.rows, args.pairs)


if __name__ == "__main__":
    main()
