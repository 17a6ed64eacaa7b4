"""Token buckets in the metadata store: `requests` per `per_seconds`, bursts up to `requests`,
one budget for every process that draws on the same name (a REST source run by several
workers at once). Like the in-process bucket, a taker that finds it empty reserves its token
(the level goes below zero) and sleeps outside the transaction. It keeps real time: a test
clock never throttles or frees requests."""

from __future__ import annotations

import time
from collections.abc import Callable

from sqlalchemy import Engine, text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import sessionmaker

from syncline.store.models import Budget


class StoreBucket:
    def __init__(self, engine: Engine, name: str, requests: int, per_seconds: float, *,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        self._session = sessionmaker(engine, expire_on_commit=False)
        self.name, self.capacity, self.rate = name, float(requests), requests / per_seconds
        self._sleep = sleep

    def take(self) -> float:
        while True:
            try:
                wait = self._reserve()
                break
            except IntegrityError:  # two first takers: the other created the row
                continue
        if wait > 0:
            self._sleep(wait)
        return wait

    def _reserve(self) -> float:
        with self._session.begin() as s:
            if s.get_bind().dialect.name == "postgresql":
                s.execute(text("SELECT 1 FROM budgets WHERE name = :n FOR UPDATE"), {"n": self.name})
            now = time.time()
            row = s.get(Budget, self.name)
            if row is None:
                row = Budget(name=self.name, level=self.capacity, updated=now)
                s.add(row)
            level = min(self.capacity, row.level + max(0.0, now - row.updated) * self.rate) - 1.0
            row.level, row.updated = level, now
            return -level / self.rate if level < 0 else 0.0
