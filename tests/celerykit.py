"""Distributed mode in tests: a broker of its own (a Redis database, or RabbitMQ's queue
emptied), and deploy/celery-local.sh started on a workspace with a PostgreSQL store."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import redis
from kombu import Connection

from syncline.orchestration.celery_queue import DEFAULT_QUEUE
from syncline.store.store import MetadataStore

from services import require_rabbitmq, require_redis

REPO = Path(__file__).parents[1]
SYNCLINE = str(Path(sys.executable).parent / "syncline")


@contextmanager
def redis_broker() -> Iterator[str]:
    base = require_redis().rsplit("/", 1)[0]
    url = f"{base}/{random.randint(1, 15)}"  # a database of its own, emptied afterwards
    client = redis.Redis.from_url(url)
    client.flushdb()
    try:
        yield url
    finally:
        client.flushdb()
        client.close()


@contextmanager
def rabbitmq_broker() -> Iterator[str]:
    url = require_rabbitmq()

    def purge() -> None:
        with Connection(url) as conn:
            channel = conn.channel()
            channel.queue_declare(DEFAULT_QUEUE, passive=False, durable=True, auto_delete=False)
            channel.queue_purge(DEFAULT_QUEUE)
            channel.close()

    purge()  # no wake left by an earlier test
    try:
        yield url
    finally:
        purge()


def syncline(root: Path, env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([SYNCLINE, *args, "-w", str(root)], env=env, capture_output=True, text=True,
                          timeout=120)


class Deployment:
    """deploy/celery-local.sh on a workspace: a scheduler and two Celery workers."""

    def __init__(self, root: Path, broker: str, store: str, env: dict[str, str] | None = None) -> None:
        self.root = root
        self.store = store.replace("postgresql://", "postgresql+psycopg://", 1)
        self.env = {**os.environ, "SYNCLINE_BROKER_URL": broker, "SYNCLINE_METADATA_URL": self.store,
                    "SYNCLINE_BIN": SYNCLINE, **(env or {})}
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
