"""Benchmark: sync a 1M- and a 5M-row SQLite table into DuckDB; rows/s and peak RSS.

Usage: python bench/sqlite_to_duckdb.py [--rows 1000000 5000000] [--repeat 1]

Side by side it times a bare baseline (sqlite3 fetchmany -> pyarrow -> DuckDB
insert, no checkpoints, no type checks) on the same table, so the cost of
Syncline's guarantees is visible. Each measurement runs in a fresh process so
peak RSS belongs to that run alone.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sqlite3
import sys
import textwrap
from pathlib import Path

from peers import SYNCLINE_RUN, measure

HERE = Path(__file__).resolve().parent
WORK = HERE / ".work"

DDL = """CREATE TABLE events (
  id INTEGER PRIMARY KEY, user_id INTEGER NOT NULL, event_type TEXT NOT NULL,
  amount DECIMAL(12,2), score DOUBLE, is_test BOOLEAN, payload JSON,
  note TEXT, created_at TIMESTAMPTZ NOT NULL, updated_at TIMESTAMP NOT NULL)"""

TYPES = ["view", "click", "buy", "refund", "signup", "login", "logout", "search", "share", "like"]


def make_source(path: Path, rows: int) -> None:
    if path.exists():
        return
    tmp = path.with_suffix(".tmp")
    tmp.unlink(missing_ok=True)
    con = sqlite3.connect(tmp)
    con.execute("PRAGMA journal_mode = OFF")
    con.execute("PRAGMA synchronous = OFF")
    con.execute(DDL)
    chunk = 100_000
    for start in range(1, rows + 1, chunk):
        con.executemany(
            "INSERT INTO events VALUES (?,?,?,?,?,?,?,?,?,?)",
            (
                (
                    i, i % 50_000, TYPES[i % 10], f"{(i * 7919) % 100000 / 100:.2f}",
                    (i % 1000) / 7, i % 13 == 0, f'{{"n": {i % 97}, "src": "web"}}',
                    None if i % 3 else f"note for event {i} — ünïcode",
                    f"2026-01-{1 + i % 28:02d}T{i % 24:02d}:{i % 60:02d}:{(i // 60) % 60:02d}.{i % 1000000:06d}+00:00",
                    f"2026-02-{1 + i % 28:02d} {i % 24:02d}:{i % 60:02d}:{(i // 60) % 60:02d}.{i % 1000000:06d}",
                )
                for i in range(start, min(start + chunk, rows + 1))
            ),
        )
    con.commit()
    con.execute("CREATE INDEX events_updated ON events (updated_at, id)")
    con.close()
    tmp.rename(path)


BASELINE_RUN = textwrap.dedent("""
    import json, resource, sqlite3, sys, time
    import duckdb, pyarrow as pa
    src, dst = sys.argv[1], sys.argv[2]
    t0 = time.perf_counter()
    s = sqlite3.connect(src)
    d = duckdb.connect(dst, config={"memory_limit": sys.argv[3]})
    cur = s.execute("SELECT * FROM events")
    names = [c[0] for c in cur.description]
    n = 0
    first = True
    while rows := cur.fetchmany(50_000):
        t = pa.table(dict(zip(names, (pa.array(c) for c in zip(*rows)))))
        if first:
            d.execute("CREATE TABLE events AS SELECT * FROM t")
            first = False
        else:
            d.execute("INSERT INTO events SELECT * FROM t")
        n += len(rows)
    d.close()
    wall = time.perf_counter() - t0
    print(json.dumps({"rows": n, "wall": wall,
                      "rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
""")


def workspace(root: Path, source: Path, memory_limit: str) -> Path:
    if root.exists():
        shutil.rmtree(root)
    root.mkdir(parents=True)
    (root / "syncline.yaml").write_text(textwrap.dedent(f"""
        version: 1
        sources: {{src: {{type: sqlite, path: {source}}}}}
        destinations: {{wh: {{type: duckdb, path: wh.duckdb, memory_limit: {memory_limit}}}}}
        connections:
          bench:
            source: src
            destination: wh
            streams: {{events: {{mode: full_refresh, write: replace}}}}
    """))
    return root


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, nargs="+", default=[1_000_000, 5_000_000])
    parser.add_argument("--memory-limit", default="256MB", help="DuckDB memory_limit of the destination")
    parser.add_argument("--skip-baseline", action="store_true")
    args = parser.parse_args()
    WORK.mkdir(exist_ok=True)
    results = []
    for rows in args.rows:
        source = WORK / f"events_{rows}.db"
        print(f"preparing {rows:,}-row source ...", file=sys.stderr)
        make_source(source, rows)
        base_db = WORK / "baseline.duckdb"
        base_db.unlink(missing_ok=True)
        base = {"wall": float("nan"), "rss_mb": float("nan")} if args.skip_baseline else \
            measure(sys.executable, BASELINE_RUN, str(source), str(base_db), args.memory_limit)
        ws = workspace(WORK / f"ws_{rows}", source, args.memory_limit)
        syn = measure(sys.executable, SYNCLINE_RUN, str(ws))
        results.append((rows, syn, base))
    print(f"\nSQLite -> DuckDB, full refresh ({os.cpu_count()} cores; figures vary by machine)")
    print(f"{'rows':>10} | {'syncline s':>10} {'rows/s':>10} {'peak MB':>8} | "
          f"{'bare loop s':>11} {'rows/s':>10} {'peak MB':>8}")
    for rows, syn, base in results:
        print(f"{rows:>10,} | {syn['wall']:>10.1f} {rows / syn['wall']:>10,.0f} {syn['rss_mb']:>8.0f} | "
              f"{base['wall']:>11.1f} {rows / base['wall']:>10,.0f} {base['rss_mb']:>8.0f}")
    if len(results) >= 2:
        small, large = results[0][1]["rss_mb"], results[-1][1]["rss_mb"]
        print(f"peak RSS {results[-1][0]:,} rows vs {results[0][0]:,}: {large / small:.2f}x "
              f"(goal: within 1.20x)")


if __name__ == "__main__":
    main()
