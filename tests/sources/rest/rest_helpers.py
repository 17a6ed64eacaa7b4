"""Helpers of the REST source tests: configs, sources, and reading a stream to the end."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import httpx
import pyarrow as pa

from syncline.sources.base import SourceContext
from syncline.sources.rest import RestConfig, RestSource
from syncline.stream import BadRecord, Checkpoint, ReadRequest, SchemaChange

FAST_RETRY = {"max_attempts": 6, "backoff_base_s": 0.01, "max_backoff_s": 0.05,
              "max_retry_after_s": 0.05}


def config(base_url: str, streams: dict[str, Any], **extra: Any) -> RestConfig:
    return RestConfig.model_validate(
        {"type": "rest", "base_url": base_url, "retry": FAST_RETRY, "streams": streams, **extra})


def source(base_url: str, streams: dict[str, Any], *,
           handler: Callable[[httpx.Request], httpx.Response] | None = None,
           sleep: Callable[[float], None] | None = None, **extra: Any) -> RestSource:
    transport = httpx.MockTransport(handler) if handler else None
    return RestSource("api", config(base_url, streams, **extra), SourceContext(root="."),
                      transport=transport, sleep=sleep)


@dataclass
class Read:
    items: list[Any]

    @property
    def rows(self) -> list[dict[str, Any]]:
        return [r for i in self.items if isinstance(i, pa.RecordBatch) for r in i.to_pylist()]

    @property
    def ids(self) -> list[Any]:
        return [r["id"] for r in self.rows]

    @property
    def bad(self) -> list[BadRecord]:
        return [i for i in self.items if isinstance(i, BadRecord)]

    @property
    def schema_changes(self) -> list[SchemaChange]:
        return [i for i in self.items if isinstance(i, SchemaChange)]

    @property
    def checkpoints(self) -> list[dict[str, Any]]:
        return [i.value for i in self.items if isinstance(i, Checkpoint)]


def read(src: RestSource, stream: str, checkpoint: dict[str, Any] | None = None,
         mode: str = "incremental", batch_size: int = 10_000) -> Read:
    schema = next(s for s in src.discover() if s.name == stream)
    request = ReadRequest(stream=schema, mode=mode, checkpoint=checkpoint,  # type: ignore[arg-type]
                          batch_size=batch_size)
    items = list(src.read(request))
    for item in items:
        if isinstance(item, SchemaChange) and item.stream is not None:
            schema = item.stream  # the batches after it carry the grown schema
        if isinstance(item, pa.RecordBatch):
            assert item.schema == schema.arrow_schema()
    return Read(items)
