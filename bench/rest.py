"""Benchmark: Syncline's REST source against a plain httpx paging loop, on a loopback API.

Usage: python bench/rest.py [--records 1000000] [--slow-records 200000] [--page 1000]
                            [--latency-ms 100] [--runs 3]

A server in its own process serves ``/items?after=ID&limit=N`` with keyset pagination
(``{"data": [...], "next": ID|null}``), every page made before the clock starts. Two APIs:

* fast: the loopback server as fast as it goes (``--records``);
* slow: every page answered after ``--latency-ms`` (``--slow-records``), like a real API.

Against each, interleaved ``--runs`` times: the plain loop (httpx, ``response.json()``, the
records counted and dropped: the ceiling any client of this API can reach) and a full
``syncline sync`` of the same records into DuckDB (in a fresh process, timed around the run
itself). The table prints records/s of both (median) and Syncline's share of the loop's.
Goals: at least 90% of the loop against the slow API, and 20,000 records/s against the fast one.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import shutil
import statistics
import subprocess
import sys
import textwrap
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlparse

import httpx
import yaml

HERE = Path(__file__).resolve().parent
WORK = HERE / ".work" / "rest"


def _page(after: int, limit: int, total: int) -> bytes:
    ids = range(after + 1, min(after + limit, total) + 1)
    data = [{"id": i, "name": f"customer {i:07d}", "email": f"c{i}@example.com",
             "amount": round(i * 0.37 % 1000, 2), "active": i % 3 != 0,
             "updated_at": f"2026-01-{1 + i % 28:02d}T{i % 24:02d}:{i % 60:02d}:00Z",
             "tags": ["a", "b"] if i % 2 else []} for i in ids]
    nxt = after + limit if ids else None  # a full last page is followed by an empty one
    return json.dumps({"data": data, "next": nxt}).encode()


def serve(port: int, total: int, page: int, latency_s: float, ready: Any) -> None:
    """The API: every page of ``total`` records made up front, then served as asked."""
    pages = {after: _page(after, page, total) for after in range(0, total + 1, page)}

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_GET(self) -> None:
            query = parse_qs(urlparse(self.path).query)
            after = int(query.get("after", ["0"])[0])
            body = pages.get(after) or _page(after, page, total)
            if latency_s:
                time.sleep(latency_s)
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
    ready.set()
    server.serve_forever()


def plain_loop(base: str, page: int) -> tuple[int, float]:
    """(records, seconds) of the loop every client of this API could write."""
    count, after = 0, 0
    started = time.perf_counter()
    with httpx.Client() as client:
        while True:
            body = client.get(f"{base}/items", params={"after": after, "limit": page}).json()
            count += len(body["data"])
            if body["next"] is None:
                break
            after = body["next"]
    return count, time.perf_counter() - started


def workspace(root: Path, base: str, page: int) -> None:
    if root.exists():
        shutil.rmtree(root)
    root.mkdir(parents=True)
    doc = {
        "version": 1,
        "sources": {"api": {"type": "rest", "base_url": base, "streams": {"items": {
            "path": "/items", "records": "$.data[*]", "primary_key": ["id"],
            "pagination": {"type": "cursor", "token_path": "$.next", "param": "after",
                           "size_param": "limit", "size": page}}}}},
        "destinations": {"wh": {"type": "duckdb", "path": "wh.duckdb"}},
        "connections": {"c": {"source": "api", "destination": "wh",
                              "streams": {"items": {"mode": "full_refresh", "write": "replace"}}}},
    }
    (root / "syncline.yaml").write_text(yaml.safe_dump(doc), encoding="utf-8")


RUN = textwrap.dedent("""
    import json, sys, time
    from syncline.config import load_workspace
    from syncline.engine.run import Runner
    from syncline.store.store import MetadataStore
    ws = load_workspace(sys.argv[1])
    store = MetadataStore(ws.metadata_url())
    started = time.perf_counter()
    result = Runner(ws, store).sync("c")
    seconds = time.perf_counter() - started
    print(json.dumps({"status": result.status, "rows": result.rows_committed, "seconds": seconds}))
""")


def syncline_run(root: Path) -> tuple[int, float]:
    """(records, seconds) of one `sync` of the API into a fresh DuckDB file, in its own process."""
    for leftover in root.glob("wh.duckdb*"):
        leftover.unlink()
    out = subprocess.run([sys.executable, "-c", RUN, str(root)], capture_output=True, text=True,
                         check=True)
    done = json.loads(out.stdout.strip().splitlines()[-1])
    if done["status"] != "succeeded":
        raise SystemExit(f"the sync did not succeed: {done}\n{out.stderr[-2000:]}")
    return int(done["rows"]), float(done["seconds"])


def measure(name: str, total: int, page: int, latency_ms: float, runs: int, port: int) -> dict[str, Any]:
    ready = multiprocessing.Event()
    server = multiprocessing.Process(target=serve, args=(port, total, page, latency_ms / 1000, ready),
                                     daemon=True)
    server.start()
    try:
        if not ready.wait(600):
            raise SystemExit("the API server did not start")
        base = f"http://127.0.0.1:{port}"
        root = WORK / name
        workspace(root, base, page)
        loop, ours = [], []
        for _ in range(runs):  # interleaved, so a busy moment of the machine hits both
            n, s = plain_loop(base, page)
            assert n == total, (n, total)
            loop.append(n / s)
            n, s = syncline_run(root)
            assert n == total, (n, total)
            ours.append(n / s)
    finally:
        server.terminate()
        server.join()
    return {"api": name, "records": total, "page": page, "latency_ms": latency_ms,
            "loop": statistics.median(loop), "syncline": statistics.median(ours),
            "loop_all": loop, "syncline_all": ours}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--records", type=int, default=1_000_000)
    parser.add_argument("--slow-records", type=int, default=200_000)
    parser.add_argument("--page", type=int, default=1000)
    parser.add_argument("--latency-ms", type=float, default=100.0)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    args = parser.parse_args()
    rows = [measure("fast", args.records, args.page, 0.0, args.runs, 18731),
            measure("slow", args.slow_records, args.page, args.latency_ms, args.runs, 18732)]
    if args.json:
        print(json.dumps(rows, indent=2))
        return
    print(f"{'API':<6} {'records':>9} {'ms/page':>8} {'plain loop rec/s':>17} "
          f"{'Syncline rec/s':>15} {'share':>6}")
    for r in rows:
        print(f"{r['api']:<6} {r['records']:>9,} {r['latency_ms']:>8g} {r['loop']:>17,.0f} "
              f"{r['syncline']:>15,.0f} {r['syncline'] / r['loop']:>6.0%}")
    print("goals: slow share >= 90%, fast Syncline >= 20,000 records/s "
          f"(median of {args.runs} interleaved runs)")


if __name__ == "__main__":
    main()
