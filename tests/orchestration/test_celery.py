"""Distributed mode on a real Redis and a PostgreSQL store: the tested launch script starts a
scheduler and two Celery workers; a triggered run goes through Celery to one of them, and
SIGTERM stops all three."""

from __future__ import annotations

import json
import os
import random
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import duckdb
import pytest
import redis
import yaml

from syncline.errors import ConfigurationError
from syncline.orchestration.celery_queue import PAYLOAD_VERSION, make_app, wake

from services import require_redis

REPO = Path(__file__).parents[2]
SYNCLINE = str(Path(sys.executable).parent / "syncline")


@pytest.fixture
def broker() -> Iterator[str]:
    base = require_redis().rsplit("/", 1)[0]
    url = f"{base}/{random.randint(1, 15)}"  # a database of its own, emptied afterwards
    client = redis.Redis.from_url(url)
    client.flushdb()
    try:
        yield url
    finally:
        client.flushdb()
        client.close()


def syncline(root: Path, env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([SYNCLINE, *args, "-w", str(root)], env=env, capture_output=True, text=True,
                          timeout=120)


def workspace(root: Path) -> Path:
    con = sqlite3.connect(root / "src.db")
    con.executescript("CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT);"
                      "INSERT INTO t VALUES (1, 'x'), (2, 'y'), (3, 'z');")
    con.close()
    (root / "syncline.yaml").write_text(yaml.safe_dump({
        "version": 1, "sources": {"src": {"type": "sqlite", "path": "src.db"}},
        "destinations": {"wh": {"type": "duckdb", "path": "wh.duckdb"}},
        "connections": {"c": {"source": "src", "destination": "wh"}}}))
    return root


def test_a_triggered_run_goes_through_celery_to_a_worker(tmp_path: Path, broker: str,
                                                         require_pg_database: str) -> None:
    root = workspace(tmp_path)
    store = require_pg_database.replace("postgresql://", "postgresql+psycopg://", 1)
    env = {**os.environ, "SYNCLINE_BROKER_URL": broker, "SYNCLINE_METADATA_URL": store,
           "SYNCLINE_BIN": SYNCLINE}
    script = subprocess.Popen([str(REPO / "deploy" / "celery-local.sh"), str(root)], env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                              start_new_session=True)
    try:
        deadline = time.monotonic() + 60
        workers: list[dict[str, Any]] = []
        while time.monotonic() < deadline:  # both workers registered, the revision applied
            listed = syncline(root, env, "workers", "--json")
            workers = json.loads(listed.stdout) if listed.returncode == 0 else []
            if len(workers) == 2 and syncline(root, env, "queue", "--json").returncode == 0:
                break
            assert script.poll() is None, script.stdout.read() if script.stdout else ""
            time.sleep(0.5)
        assert len(workers) == 2 and {w["queue"] for w in workers} == {"celery"}, workers
        done = None
        while time.monotonic() < deadline:
            done = syncline(root, env, "trigger", "c", "--wait", "--timeout", "60")
            if "no config revision" not in done.stdout + done.stderr:
                break
            time.sleep(0.5)
        assert done is not None and done.returncode == 0, done
        runs = json.loads(syncline(root, env, "runs", "c", "--json").stdout)
        assert [r["status"] for r in runs] == ["succeeded"], runs
        with duckdb.connect(str(root / "wh.duckdb"), read_only=True) as con:
            assert con.execute("SELECT id, v FROM c.t ORDER BY id").fetchall() == [
                (1, "x"), (2, "y"), (3, "z")]
    finally:
        os.killpg(script.pid, signal.SIGTERM)
        out, _ = script.communicate(timeout=60)
    assert script.returncode is not None, out
    assert "stopped" in out and "Warm shutdown" in out, out
    left = json.loads(syncline(root, env, "workers", "--json").stdout)
    assert left == [], left  # each worker process said it ended


def test_a_wake_of_a_newer_payload_is_refused_and_a_broker_must_be_redis_or_rabbitmq() -> None:
    with pytest.raises(ConfigurationError, match=f"this worker knows {PAYLOAD_VERSION}"):
        wake({"v": PAYLOAD_VERSION + 1})
    with pytest.raises(ConfigurationError, match="is not a Redis or RabbitMQ URL"):
        make_app("http://127.0.0.1:6379")
    app = make_app("redis://127.0.0.1:6379/0")  # the settings long runs need
    assert app.conf.task_acks_late and app.conf.task_reject_on_worker_lost
    assert app.conf.worker_prefetch_multiplier == 1
