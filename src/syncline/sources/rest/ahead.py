"""Fetching an API's next page while the last one is turned into rows: a thread ahead.

The next page of a keyset or cursor API can only be asked for once the last one arrived,
but everything after its arrival (records to Arrow, staging, a commit) can overlap the
wait for the next. One thread walks the pages at most ``depth`` ahead of the reader; the
reader left early (a failure, a stop) tells it to stop at its next page.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TypeVar

from syncline.prefetch import DONE, Prefetch

T = TypeVar("T")


def ahead(items: Iterator[T], depth: int = 2) -> Iterator[T]:
    """``items``, produced by a thread at most ``depth`` ahead; its errors raised here."""
    fetching = Prefetch(items, depth, "syncline-fetch-ahead")
    try:
        while True:
            item = fetching.get()
            if item is DONE:
                return
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        fetching.cancel()
        fetching.thread.join(timeout=30)
