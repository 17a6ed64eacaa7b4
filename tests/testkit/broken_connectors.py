"""Deliberately broken SDK connectors: the connector test kit must catch each of them."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from typing import Any

from syncline.sdk import Item, SimpleSource, State, Stream

EVENTS = 30
PAGE = 10


def event(n: int) -> dict[str, Any]:
    stamp = dt.datetime(2026, 1, 1, tzinfo=dt.UTC) + dt.timedelta(minutes=n)
    return {"id": n, "kind": "click" if n % 3 else "view", "updated_at": stamp.isoformat()}


def _events() -> list[Stream]:
    return [Stream("events", primary_key=["id"], cursor="updated_at")]


class LosesOnResume(SimpleSource):
    """Off by one when resuming: the record right after a committed state is never read."""

    def streams(self) -> list[Stream]:
        return _events()

    def read(self, stream: str, state: dict[str, Any] | None) -> Iterator[Item]:
        start = state["next"] + 1 if state else 1  # the bug: should start at state["next"]
        for n in range(start, EVENTS + 1):
            yield event(n)
            if n % PAGE == 0:
                yield State({"next": n + 1})


class RereadsFromStart(SimpleSource):
    """Yields states but ignores them: every resumed read starts over."""

    def streams(self) -> list[Stream]:
        return _events()

    def read(self, stream: str, state: dict[str, Any] | None) -> Iterator[Item]:
        for n in range(1, EVENTS + 1):
            yield event(n)
            if n % PAGE == 0:
                yield State({"after": event(n)["updated_at"]})


class Unstable(SimpleSource):
    """Each read sees different values, as a source leaking its read counter would."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.reads = 0

    def streams(self) -> list[Stream]:
        return [Stream("scores", primary_key=["id"], columns={"id": "int64", "score": "int64"})]

    def read(self, stream: str, state: dict[str, Any] | None) -> Iterator[Item]:
        self.reads += 1
        for n in range(1, 21):
            yield {"id": n, "score": n * 10 + (self.reads if n == 7 else 0)}


class NoFinalState(SimpleSource):
    """Marks a state every full page only: the records of the last, short page are never covered."""

    def streams(self) -> list[Stream]:
        return _events()

    def read(self, stream: str, state: dict[str, Any] | None) -> Iterator[Item]:
        after = (state or {}).get("after")
        for n in range(1, EVENTS - 4):
            if after is None or event(n)["updated_at"] > after:
                yield event(n)
                if n % PAGE == 0:
                    yield State({"after": event(n)["updated_at"]})
