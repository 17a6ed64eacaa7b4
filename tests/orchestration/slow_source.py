"""A custom source that takes its time: `rows` numbered rows in pages of 10, `pause_s` between
pages, a checkpoint after each; with `gate`, a read sends its first page at once and the rest one
every 0.2 s until the test creates that file, so a test stops or kills a run in the middle."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from typing import Any

from pydantic import BaseModel, ConfigDict

from syncline.sdk import Item, SimpleSource, State, Stream, TransientError


class Slow(SimpleSource):
    class Config(BaseModel):
        model_config = ConfigDict(extra="forbid")
        rows: int = 100
        pause_s: float = 0.05
        plan_pause_s: float = 0.0  # listing the streams takes this long (stuck before reading)
        fail: bool = False  # every read fails as transient
        gate: str | None = None  # until this file exists, pages after a read's first are slow

    config: Config

    def streams(self) -> list[Stream]:
        time.sleep(self.config.plan_pause_s)
        return [Stream("ticks", primary_key=["id"], cursor="id",
                       columns={"id": "int64", "label": "string"})]

    def read(self, stream: str, state: dict[str, Any] | None) -> Iterator[Item]:
        if self.config.fail:
            raise TransientError("the service answered 503", fix="it is retried")
        after = int((state or {}).get("after", 0))
        for start in range(after + 1, self.config.rows + 1, 10):
            if start > after + 1 and self.config.gate and not os.path.exists(self.config.gate):
                time.sleep(0.2)  # short enough for the engine to stop the read between pages
            stop = min(start + 10, self.config.rows + 1)
            yield from ({"id": i, "label": f"tick {i}"} for i in range(start, stop))
            yield State({"after": stop - 1})
            time.sleep(self.config.pause_s)
