"""Where a PostgreSQL → DuckDB full load's memory goes: its resident memory over time, and what
the run was doing at its peak.

Usage: python bench/pg_to_duckdb_memory.py [--memory-limit 256MB 64MB] [--reader]

Runs Syncline's full load of ``bench_pg.events`` (made by ``pg_to_duckdb.py``) in a child
process per setting. This process reads the child's resident memory every 5 ms from /proc
(a thread inside the child would miss spikes: it cannot run while the loading thread holds
the interpreter). The child records when each loader step ran (``write``: a batch handed to
DuckDB's staging, ``_spill``: staged rows into the table, ``commit``, ``finish``: the swap)
and, after each, Arrow's memory pool and DuckDB's own accounting (``duckdb_memory()``). The
report: the peak, the step it fell in, and the largest Arrow and DuckDB figures seen.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import textwrap
import time

from peers import HERE, fresh_dir

WORK = HERE / ".work" / "pg_memory"
PAGE = 4096

CHILD = textwrap.dedent("""
    import json, sys, time
    import duckdb, pyarrow as pa
    from syncline.config import load_workspace
    from syncline.destinations.duckdb.loader import DuckDBLoader
    from syncline.engine.run import Runner
    from syncline.store.store import MetadataStore

    steps = []
    def watched(name, method):
        def run(self, *args, **kwargs):
            t0 = time.time()
            try:
                return method(self, *args, **kwargs)
            finally:
                duck = sum(r[1] for r in self.dest.con.execute("SELECT * FROM duckdb_memory()").fetchall())
                steps.append((name, t0, time.time(), pa.total_allocated_bytes(), duck))
        return run
    for name in ("write", "_spill", "commit", "finish"):
        setattr(DuckDBLoader, name, watched(name, getattr(DuckDBLoader, name)))

    ws = load_workspace(sys.argv[1])
    store = MetadataStore(ws.metadata_url())
    began = time.time()
    result = Runner(ws, store).sync("bench")
    assert result.status == "succeeded", result.error
    print(json.dumps({"rows": result.rows_committed, "began": began, "ended": time.time(), "steps": steps}))
""")


# the same read with nowhere to go: the source's batches (as many rows each as the engine asks
# for) counted and dropped, to split the load's memory between the read and DuckDB
READER = textwrap.dedent("""
    import json, sys, time
    import pyarrow as pa
    from syncline.config import load_workspace
    from syncline.engine.buffers import use_returning_pool
    from syncline.sources.registry import build_source
    from syncline.stream import ReadRequest

    use_returning_pool()  # Arrow's pool as a run has it
    ws = load_workspace(sys.argv[1])
    source = build_source("src", ws.sources["src"], str(ws.root))
    [stream] = [s for s in source.discover() if s.name == "bench_pg.events"]
    group = 122_880  # DuckDB's row group, as the engine rounds to it
    rows = max(1, round((source.batch_rows(stream) or 50_000) / group)) * group
    began, n, steps = time.time(), 0, []
    for item in source.read(ReadRequest(stream=stream, mode="full_refresh", batch_size=rows)):
        if isinstance(item, pa.RecordBatch):
            n += item.num_rows
            steps.append(("read", time.time(), time.time(), pa.total_allocated_bytes(), 0))
    print(json.dumps({"rows": n, "began": began, "ended": time.time(), "steps": steps}))
""")


def workspace(memory_limit: str) -> str:
    root = fresh_dir(WORK / f"ws_{memory_limit}")
    (root / "syncline.yaml").write_text(textwrap.dedent(f"""
        version: 1
        sources:
          src: {{type: postgres, host: "127.0.0.1", port: 5432, user: postgres, database: test,
                 tables: [bench_pg.events]}}
        destinations: {{wh: {{type: duckdb, path: wh.duckdb, memory_limit: {memory_limit}}}}}
        connections:
          bench:
            source: src
            destination: wh
            streams: {{bench_pg.events: {{mode: full_refresh, write: replace}}}}
    """))
    return str(root)


def probe(memory_limit: str, code: str = CHILD) -> dict[str, object]:
    child = subprocess.Popen([sys.executable, "-c", code, workspace(memory_limit)],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    samples: list[tuple[float, int]] = []
    statm = f"/proc/{child.pid}/statm"
    while child.poll() is None:
        try:
            with open(statm) as f:
                samples.append((time.time(), int(f.read().split()[1]) * PAGE))
        except (OSError, IndexError, ValueError):
            pass
        time.sleep(0.005)
    out, err = child.communicate()
    if child.returncode != 0:
        raise RuntimeError(err.strip().splitlines()[-1] if err.strip() else "the load failed")
    report = json.loads(out.strip().splitlines()[-1])
    at, peak = max(samples, key=lambda s: s[1])
    during = [s for s in report["steps"] if s[1] <= at <= s[2]]
    before = [s for s in report["steps"] if s[2] <= at]
    mb = 1 / 2**20
    return {
        "peak_mb": peak * mb, "at_s": at - report["began"], "run_s": report["ended"] - report["began"],
        "step": during[-1][0] if during else ("after " + before[-1][0] if before else "before the load"),
        "arrow_max_mb": max((s[3] for s in report["steps"]), default=0) * mb,
        "duckdb_max_mb": max((s[4] for s in report["steps"]), default=0) * mb,
        "start_mb": samples[0][1] * mb if samples else 0,
        "steps": len(report["steps"]),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--memory-limit", nargs="+", default=["256MB", "64MB"])
    parser.add_argument("--reader", action="store_true", help="also the read alone, its batches dropped")
    args = parser.parse_args()
    print(f"{'memory_limit':>12} {'peak RSS MB':>11} {'at s':>6} {'of s':>6}  {'in step':<14} "
          f"{'Arrow max MB':>12} {'DuckDB max MB':>13}")
    for limit in args.memory_limit:
        r = probe(limit)
        print(f"{limit:>12} {r['peak_mb']:>11.0f} {r['at_s']:>6.1f} {r['run_s']:>6.1f}  {r['step']:<14} "
              f"{r['arrow_max_mb']:>12.0f} {r['duckdb_max_mb']:>13.0f}", flush=True)
    if args.reader:
        r = probe(args.memory_limit[0], READER)
        print(f"{'read alone':>12} {r['peak_mb']:>11.0f} {r['at_s']:>6.1f} {r['run_s']:>6.1f}  "
              f"{'(no DuckDB)':<14} {r['arrow_max_mb']:>12.0f} {'-':>13}",
              flush=True)


if __name__ == "__main__":
    main()
