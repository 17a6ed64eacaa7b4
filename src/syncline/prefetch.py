"""An iterator run by a thread of its own, a bounded number of items ahead of its reader.

The reader takes items with `get` (an item, `DONE`, or the exception the iterator raised);
`cancel` tells the thread to stop at its next item, closing the iterator (its own cleanup:
connections, files), and `thread` lets the reader wait for that.
"""

from __future__ import annotations

import contextvars
import queue
import threading
from collections.abc import Iterator
from typing import Any

DONE = object()


class Prefetch:
    def __init__(self, items: Iterator[Any], depth: int, name: str) -> None:
        self.items = items
        self.queue: queue.Queue[Any] = queue.Queue(maxsize=depth)
        self.cancelled = threading.Event()
        # the thread's log lines belong to the reader's context (a run's, engine/run_log.py)
        self.thread = threading.Thread(target=contextvars.copy_context().run, args=(self._produce,),
                                       name=name, daemon=True)
        self.thread.start()

    def get(self, timeout: float | None = None) -> Any:
        """The next item, `DONE`, or an exception of the iterator; `queue.Empty` on timeout."""
        return self.queue.get(timeout=timeout)

    def cancel(self) -> None:
        self.cancelled.set()

    def _offer(self, value: Any) -> bool:
        """Hand ``value`` to the reader unless it has stopped listening."""
        while not self.cancelled.is_set():
            try:
                self.queue.put(value, timeout=0.2)
                return True
            except queue.Full:
                continue
        return False

    def _produce(self) -> None:
        try:
            for item in self.items:
                if not self._offer(item):
                    return
            self._offer(DONE)
        except BaseException as exc:  # handed to the reader, which raises it
            self._offer(exc)
        finally:
            close = getattr(self.items, "close", None)
            if close is not None:
                close()
