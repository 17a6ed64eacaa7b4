"""What the database benches share: a measurement in a fresh process (wall, CPU, peak RSS),
the peer tools' venv (dlt and its backends, never in the project's venv), the results table."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
PEERS = HERE / ".venv-peers"
PEER_PY = PEERS / "bin" / "python"

# peak RSS of this process; with children (a client, dlt workers) the larger of the two. CPU
# seconds (user + system, children included) are printed too: on a shared machine they
# vary less than wall time. The database server's own CPU is in neither.
REPORT = """
def report(rows, wall):
    import json, resource
    me, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = me.ru_utime + me.ru_stime + kids.ru_utime + kids.ru_stime
    print(json.dumps({"rows": rows, "wall": wall, "cpu": cpu,
                      "rss_mb": max(me.ru_maxrss, kids.ru_maxrss) / 1024}))
"""


#: Syncline's `sync` of connection `bench` of the workspace in argv[1], timed around the run
SYNCLINE_RUN = REPORT + """
import sys, time
from syncline.config import load_workspace
from syncline.engine.run import Runner
from syncline.store.store import MetadataStore
ws = load_workspace(sys.argv[1])
store = MetadataStore(ws.metadata_url())
t0 = time.perf_counter()
result = Runner(ws, store).sync("bench")
wall = time.perf_counter() - t0
assert result.status == "succeeded", result.error
report(result.rows_committed, wall)
"""


def measure(python: str, code: str, *args: str) -> dict[str, Any]:
    """Run `code` (which ends by calling `report`) in a fresh interpreter; its figures."""
    out = subprocess.run([python, "-c", code, *args], capture_output=True, text=True)
    if out.returncode != 0:
        tail = (out.stderr or out.stdout).strip().splitlines()[-12:]
        raise RuntimeError("measurement failed:\n  " + "\n  ".join(tail))
    return json.loads(out.stdout.strip().splitlines()[-1])  # type: ignore[no-any-return]


class Measurements:
    """Named measurements, each possibly taken several times; the median run stands for it."""

    def __init__(self, only: list[str] | None = None, settle: Callable[[], None] | None = None) -> None:
        self.only = only
        self.settle = settle  # run before each measurement: a server quiet after the last one
        self.rounds: dict[str, list[dict[str, Any]]] = {}

    def run(self, name: str, python: str, code: str, *argv: str) -> None:
        """Measure `code` in a fresh `python` (a failure is told and leaves no figure)."""
        if self.only and name not in self.only:
            return
        if self.settle:
            self.settle()
        print(f"  {name} ...", file=sys.stderr, flush=True)
        try:
            r = measure(python, code, *argv)
        except RuntimeError as exc:
            print(f"  {name}: {exc}", file=sys.stderr)
            return
        self.rounds.setdefault(name, []).append(r)
        print(f"  {name}: {r['wall']:.2f}s, {r['rows']:,} rows, {r['rss_mb']:.0f} MB, cpu {r['cpu']:.1f}s",
              file=sys.stderr)

    def results(self) -> dict[str, dict[str, Any]]:
        return {name: sorted(rs, key=lambda r: r["wall"])[len(rs) // 2] for name, rs in self.rounds.items()}

    def wall(self, name: str) -> float | None:
        result = self.results().get(name)
        return None if result is None else float(result["wall"])


def fresh_dir(root: Path) -> Path:
    if root.exists():
        shutil.rmtree(root)
    root.mkdir(parents=True)
    return root


def peers_ready(packages: list[str], install: bool, skip: bool, script: str) -> bool:
    """Whether the dlt rows run: the peers' venv exists (`install` creates it)."""
    if install:
        if not PEER_PY.exists():
            subprocess.run([sys.executable, "-m", "venv", str(PEERS)], check=True)
        subprocess.run([str(PEER_PY), "-m", "pip", "install", *packages], check=True)
    if skip:
        return False
    if not PEER_PY.exists():
        print(f"dlt rows skipped: no {PEERS}; create it with `python bench/{script} --install-peers` "
              f"(pip install {' '.join(packages)} into a separate venv)", file=sys.stderr)
        return False
    return True


def print_results(title: str, results: dict[str, dict[str, Any]]) -> None:
    print(f"\n{title} ({os.cpu_count()} cores; figures vary by machine)")
    print(f"{'measurement':<26} {'rows':>10} {'wall s':>8} {'rows/s':>11} {'peak MB':>8} {'cpu s':>7}")
    for name, r in results.items():
        rate = f"{r['rows'] / r['wall']:>11,.0f}" if r["rows"] else f"{'':>11}"
        print(f"{name:<26} {r['rows']:>10,} {r['wall']:>8.2f} {rate} {r['rss_mb']:>8.0f} {r['cpu']:>7.2f}")
