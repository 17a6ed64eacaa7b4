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
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import duckdb
import pytest
import redis
import yaml
from upkit import wait_for
from upkit import workspace as slow_workspace

from syncline.errors import ConfigurationError
from syncline.orchestration.celery_queue import PAYLOAD_VERSION, make_app, wake
from syncline.store.store import MetadataStore

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


class Deployment:
    """deploy/celery-local.sh on a workspace: a scheduler and two Celery workers."""

    def __init__(self, root: Path, broker: str, store: str) -> None:
        self.root = root
        self.store = store.replace("postgresql://", "postgresql+psycopg://", 1)
        self.env = {**os.environ, "SYNCLINE_BROKER_URL": broker, "SYNCLINE_METADATA_URL": self.store,
                    "SYNCLINE_BIN": SYNCLINE}
        self.log = root / "deploy.log"
        self.script = subprocess.Popen([str(REPO / "deploy" / "celery-local.sh"), str(root)],
                                       env=self.env, stdout=self.log.open("wb"),
                                       stderr=subprocess.STDOUT, start_new_session=True)

    def __call__(self, *args: str) -> subprocess.CompletedProcess[str]:
        return syncline(self.root, self.env, *args)

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def workers(self) -> list[dict[str, Any]]:
        listed = self("workers", "--json")
        return list(json.loads(listed.stdout)) if listed.returncode == 0 else []

    def ready(self) -> None:
        """Both workers registered and the scheduler's revision applied."""
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if len(self.workers()) == 2 and self._applied():
                return
            assert self.script.poll() is None, self.output()
            time.sleep(0.5)
        raise AssertionError(f"the deployment did not start: {self.workers()}\n{self.output()}")

    def _applied(self) -> bool:
        with MetadataStore(self.store) as store:
            return store.revisions().latest_number() is not None

    def stop(self) -> int:
        os.killpg(self.script.pid, signal.SIGTERM)
        return self.script.wait(timeout=60)


@pytest.fixture
def deployment(tmp_path: Path, broker: str, require_pg_database: str) -> Iterator[Callable[[], Deployment]]:
    started: list[Deployment] = []

    def start() -> Deployment:
        started.append(Deployment(tmp_path, broker, require_pg_database))
        started[-1].ready()
        return started[-1]

    yield start
    for d in started:
        if d.script.poll() is None:
            d.stop()


def test_a_triggered_run_goes_through_celery_to_a_worker(tmp_path: Path,
                                                         deployment: Callable[[], Deployment]) -> None:
    workspace(tmp_path)
    d = deployment()
    assert {w["queue"] for w in d.workers()} == {"celery"}
    done = d("trigger", "c", "--wait", "--timeout", "60")
    assert done.returncode == 0, done
    runs = json.loads(d("runs", "c", "--json").stdout)
    assert [r["status"] for r in runs] == ["succeeded"], runs
    with duckdb.connect(str(tmp_path / "wh.duckdb"), read_only=True) as con:
        assert con.execute("SELECT id, v FROM c.t ORDER BY id").fetchall() == [
            (1, "x"), (2, "y"), (3, "z")]
    assert d.stop() is not None
    assert "stopped" in d.output() and "Warm shutdown" in d.output(), d.output()
    assert d.workers() == [], d.workers()  # each worker process said it ended


def test_a_worker_killed_mid_run_loses_and_doubles_no_row(tmp_path: Path,
                                                          deployment: Callable[[], Deployment]) -> None:
    slow_workspace(tmp_path, rows=2000, schedule="manual", gate=True, streams={
        "ticks": {"mode": "incremental", "cursor": "id", "write": "append"}})
    d = deployment()
    assert d("trigger", "c").returncode == 0
    running = wait_for(lambda: [w for w in d.workers() if w["run_id"]], "a worker running the run")
    with MetadataStore(d.store) as store:
        wait_for(lambda: store.checkpoints("c"), "the run's first commit")
    os.kill(running[0]["pid"], signal.SIGKILL)
    wait_for(lambda: "c: run 1 lost; queued again as entry 2" in d.output(), d.output)
    (tmp_path / "gate").touch()
    wait_for(lambda: [r["status"] for r in json.loads(d("runs", "c", "--json").stdout)]
             == ["succeeded", "crashed"], lambda: d("runs", "c").stdout, 90)
    again = json.loads(d("runs", "c", "--json").stdout)[0]
    assert 0 < again["rows_read"] < 2000, again  # resumed from the committed checkpoint
    assert d.stop() is not None
    with duckdb.connect(str(tmp_path / "wh.duckdb"), read_only=True) as con:  # the oracle
        assert con.execute("SELECT count(*), count(DISTINCT id), min(id), max(id) "
                           "FROM dst.ticks").fetchall() == [(2000, 2000, 1, 2000)]


def test_a_wake_of_a_newer_payload_is_refused_and_a_broker_must_be_redis_or_rabbitmq() -> None:
    with pytest.raises(ConfigurationError, match=f"this worker knows {PAYLOAD_VERSION}"):
        wake({"v": PAYLOAD_VERSION + 1})
    with pytest.raises(ConfigurationError, match="is not a Redis or RabbitMQ URL"):
        make_app("http://127.0.0.1:6379")
    app = make_app("redis://127.0.0.1:6379/0")  # the settings long runs need
    assert app.conf.task_acks_late and app.conf.task_reject_on_worker_lost
    assert app.conf.worker_prefetch_multiplier == 1
