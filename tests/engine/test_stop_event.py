"""The engine is a library that behaves as one: it never installs signal handlers (a program
embedding Syncline keeps its own SIGTERM), and it stops cleanly when its stop event is set."""

from __future__ import annotations

import os
import signal
import threading
from pathlib import Path
from typing import Any

from syncline.config import load_workspace
from syncline.engine.observer import RunObserver
from syncline.engine.run import Runner
from syncline.store.store import MetadataStore

from syncfixtures import dest_query, make_items, write_ws

STREAMS = {"items": {"mode": "incremental", "write": "append", "cursor": "updated_at"}}


class Watching(RunObserver):
    """Looks at the SIGTERM handler while a batch is being loaded, and may set the stop event."""

    def __init__(self, stop: threading.Event | None = None) -> None:
        self.handlers: list[Any] = []
        self.stop = stop

    def stream_progress(self, progress: Any) -> None:
        self.handlers.append(signal.getsignal(signal.SIGTERM))
        os.kill(os.getpid(), signal.SIGTERM)  # the embedding program's own handler gets it
        if self.stop is not None:
            self.stop.set()


def test_an_embedding_program_keeps_its_sigterm_and_stops_a_run_with_the_event(tmp_path: Path) -> None:
    make_items(tmp_path / "src.db", 50)
    write_ws(tmp_path, STREAMS, batch_size=10)
    received: list[int] = []

    def mine(signum: int, _frame: Any) -> None:
        received.append(signum)

    before = signal.signal(signal.SIGTERM, mine)
    try:
        ws = load_workspace(tmp_path)
        with MetadataStore(ws.metadata_url()) as store:
            watching = Watching()
            done = Runner(ws, store, watching).sync("c")
            assert done.error is None and done.rows_committed == 50  # SIGTERM was the program's
            assert set(watching.handlers) == {mine} and len(received) == len(watching.handlers)
            stop = threading.Event()
            (tmp_path / "src.db").unlink()
            make_items(tmp_path / "src.db", 100)
            stopped = Runner(ws, store, Watching(stop), stop=stop).sync("c")
        assert stopped.status == "interrupted"
        [(rows, keys)] = dest_query(tmp_path, "SELECT count(*), count(DISTINCT id) FROM dst.items")
        assert rows == keys and 50 <= rows < 100 and rows % 10 == 0  # whole batches, then stopped
    finally:
        signal.signal(signal.SIGTERM, before)
