"""`syncline demo`: a new user's first command builds, syncs and reports a complete copy."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
from pathlib import Path

import duckdb

TABLES = ("customers", "products", "orders", "order_items")


def _demo(root: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "syncline", "demo", "--workspace", str(root), "--orders", "3000"],
        capture_output=True, text=True, timeout=300,
    )


def _counts(root: Path) -> tuple[dict[str, int], dict[str, int]]:
    src = sqlite3.connect(root / "data" / "shop.db")
    dst = duckdb.connect(str(root / "warehouse.duckdb"), read_only=True)
    try:
        source = {t: src.execute(f"SELECT count(*) FROM {t}").fetchone()[0] for t in TABLES}
        dest = {t: dst.execute(f"SELECT count(DISTINCT id) FROM shop.{t}").fetchone()[0] for t in TABLES}
        dups = dst.execute("SELECT count(*) - count(DISTINCT id) FROM shop.orders").fetchone()[0]
        assert dups == 0
        return source, dest
    finally:
        src.close()
        dst.close()


def test_demo_syncs_the_whole_shop_then_only_what_changed(tmp_path: Path) -> None:
    root = tmp_path / "demo"
    first = _demo(root)
    assert first.returncode == 0, first.stderr
    assert "shop_to_warehouse" in first.stdout and "healthy" in first.stdout
    source, dest = _counts(root)
    assert source == dest and source["orders"] == 3000
    second = _demo(root)  # a simulated day of activity, then an incremental sync
    assert second.returncode == 0, second.stderr
    source2, dest2 = _counts(root)
    assert source2 == dest2 and source2["orders"] > source["orders"]
    latest = sqlite3.connect(root / "data" / "shop.db").execute(
        "SELECT id, status FROM orders ORDER BY updated_at DESC, id DESC LIMIT 1").fetchone()
    con = duckdb.connect(str(root / "warehouse.duckdb"), read_only=True)
    assert con.execute("SELECT status FROM shop.orders WHERE id = ?", [latest[0]]).fetchone()[0] == latest[1]
    con.close()


def test_the_demo_ends_with_how_to_run_it_unattended_and_that_command_runs(tmp_path: Path) -> None:
    import shlex
    import signal
    import socket
    import time

    import httpx

    root = tmp_path / "demo"
    done = _demo(root)
    assert done.returncode == 0, done.stderr
    [hint] = [line for line in done.stdout.splitlines() if "-m syncline up" in line]
    command = shlex.split(hint.split("): ", 1)[1].split("   (")[0])
    assert command[1:4] == ["-m", "syncline", "up"]
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    up = subprocess.Popen([*command, "--port", str(port)],
                          stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline, served = time.monotonic() + 30, None
        while served is None and time.monotonic() < deadline:
            try:
                served = httpx.get(f"http://127.0.0.1:{port}/api/v1/status", timeout=5).json()
            except httpx.HTTPError:
                time.sleep(0.2)
        assert served is not None
        assert {c["connection"]: c["health"] for c in served} == {
            "drops_to_warehouse": "healthy", "shop_to_warehouse": "healthy"}
        up.send_signal(signal.SIGTERM)
        assert up.wait(35) == 0
    finally:
        if up.poll() is None:
            up.kill()
