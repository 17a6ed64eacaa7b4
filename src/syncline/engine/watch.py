"""Reading a source under watch: prefetch in a thread, detect silence, honour a stop request."""

from __future__ import annotations

import queue
import signal
import threading
import time
from collections.abc import Callable, Generator, Iterator
from types import FrameType
from typing import Any

from syncline.errors import Interrupted, TransientError
from syncline.prefetch import DONE, Prefetch
from syncline.stream import StreamItem

#: Longest wait for the reader thread to finish its current item once the consumer stops.
JOIN_TIMEOUT_S = 30.0


def set_from_signal(event: threading.Event) -> None:
    """Set `event` from a signal handler. The handler runs in the main thread between two of its
    steps, maybe while that thread holds the event's own lock (inside `wait` or `set`), so
    taking it here could deadlock: another thread takes it instead."""
    threading.Thread(target=event.set, name="stop-signal", daemon=True).start()


class StopRequest:
    """A stop flag the engine checks between items: once set, the run stops at the next item and
    rolls back what is staged. The engine never touches signals itself; whoever runs it sets
    the event: the CLI and `up`'s workers from SIGTERM/SIGINT (`with StopRequest(...)` installs
    those handlers), a program embedding Syncline however it likes.

    With the handlers installed, a second signal falls through to the default action
    (immediate exit), so a stuck run can still be killed.
    """

    def __init__(self, event: threading.Event | None = None) -> None:
        self.event = event if event is not None else threading.Event()
        self._saved: dict[int, Any] = {}
        self.signum: int | None = None  # the signal that set the event, if one did

    def __enter__(self) -> StopRequest:
        """Install SIGTERM and SIGINT handlers that set the event (main thread only)."""
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGTERM, signal.SIGINT):
                self._saved[sig] = signal.signal(sig, self._handle)
        return self

    def __exit__(self, *exc: object) -> None:
        for sig, handler in self._saved.items():
            signal.signal(sig, handler)
        self._saved.clear()

    def _handle(self, signum: int, _frame: FrameType | None) -> None:
        signal.signal(signum, self._saved.get(signum, signal.SIG_DFL))  # a second one kills
        self.signum = self.signum or signum
        set_from_signal(self.event)

    def check(self) -> None:
        if self.event.is_set():
            raise Interrupted(
                "stopped by a signal; uncommitted rows were rolled back",
                fix="run the sync again: it resumes from the last committed checkpoint",
            )


def watched(items: Iterator[StreamItem], timeout_s: float, stop: StopRequest | None = None,
            abandon: Callable[[], None] | None = None) -> Generator[StreamItem, None, None]:
    """Yield ``items`` produced by a background thread, at most two ahead (bounded memory).

    Reading the next batch overlaps the destination's commit of the previous one. If
    the source produces nothing for ``timeout_s`` the attempt fails as transient. Left
    early (a failure, a stop), a reader still inside the source after a moment is handed to
    ``abandon`` (`Source.abandon`), which unblocks one waiting on another process.
    """
    ahead = Prefetch(items, 2, "syncline-source")
    thread = ahead.thread
    try:
        while True:
            try:
                item = ahead.get(timeout=min(timeout_s, 0.5) if stop else timeout_s)
            except queue.Empty:
                if stop is not None:
                    stop.check()
                waited = _waited(ahead, timeout_s, stop)
                if waited is None:
                    raise TransientError(
                        f"the source sent nothing for {timeout_s:g}s",
                        fix="the attempt is retried; raise `source_timeout_s` if the source is "
                        "legitimately this slow",
                    ) from None
                item = waited
            if item is DONE:
                return
            if isinstance(item, BaseException):
                raise item
            yield item
            if stop is not None:
                stop.check()
    finally:
        ahead.cancel()
        if abandon is not None and thread.is_alive():
            thread.join(timeout=0.5)  # a reader between two items ends by itself
            if thread.is_alive():
                abandon()
        # The reader may be inside native code (a driver, Arrow); left running, it would be torn
        # down mid-call when the interpreter exits, which aborts the process. It ends at its next
        # item, so wait for that, within bounds: a hung source is closed by the caller instead.
        thread.join(timeout=min(timeout_s, JOIN_TIMEOUT_S))


def _waited(ahead: Prefetch, timeout_s: float, stop: StopRequest | None) -> Any:
    """Keep waiting until ``timeout_s`` in total, checking for a stop request."""
    deadline = time.monotonic() + timeout_s - min(timeout_s, 0.5)
    while True:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return None
        try:
            return ahead.get(timeout=min(remaining, 0.5))
        except queue.Empty:
            if stop is not None:
                stop.check()
