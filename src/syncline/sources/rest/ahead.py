"""Fetching an API's next page while the last one is turned into rows: a thread ahead.

The next page of a keyset or cursor API can only be asked for once the last one arrived,
but everything after its arrival (records to Arrow, staging, a commit) can overlap the
wait for the next. One thread walks the pages at most ``depth`` ahead of the reader; the
reader left early (a failure, a stop) tells it to stop at its next page.
"""

from __future__ import annotations

import contextvars
import queue
import threading
from collections.abc import Iterator
from typing import Any, TypeVar

T = TypeVar("T")
_DONE = object()


def ahead(items: Iterator[T], depth: int = 2) -> Iterator[T]:
    """``items``, produced by a thread at most ``depth`` ahead; its errors raised here."""
    q: queue.Queue[Any] = queue.Queue(maxsize=depth)
    stopped = threading.Event()

    def offer(value: Any) -> bool:
        while not stopped.is_set():
            try:
                q.put(value, timeout=0.2)
                return True
            except queue.Full:
                continue
        return False

    def produce() -> None:
        try:
            for item in items:
                if not offer(item):
                    return
            offer(_DONE)
        except BaseException as exc:  # handed to the reader, which raises it
            offer(exc)
        finally:
            close = getattr(items, "close", None)
            if close is not None:
                close()

    thread = threading.Thread(target=contextvars.copy_context().run, args=(produce,),
                              name="syncline-fetch-ahead", daemon=True)
    thread.start()
    try:
        while True:
            item = q.get()
            if item is _DONE:
                return
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        stopped.set()
        thread.join(timeout=30)
