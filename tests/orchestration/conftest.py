"""`broker` (Redis, or with an indirect parameter `rabbitmq`) and `deployment` for Celery."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from celerykit import Deployment, rabbitmq_broker, redis_broker


@pytest.fixture
def broker(request: pytest.FixtureRequest) -> Iterator[str]:
    kind = getattr(request, "param", "redis")
    with (rabbitmq_broker() if kind == "rabbitmq" else redis_broker()) as url:
        yield url


@pytest.fixture
def deployment(tmp_path: Path, broker: str,
               require_pg_database: str) -> Iterator[Callable[..., Deployment]]:
    """Start deploy/celery-local.sh on tmp_path (extra environment as keywords), ready."""
    started: list[Deployment] = []

    def start(**env: str) -> Deployment:
        started.append(Deployment(tmp_path, broker, require_pg_database, env))
        started[-1].ready()
        return started[-1]

    yield start
    for d in started:
        if d.script.poll() is None:
            d.stop()
