"""A run's log when the store is away: lines wait, the oldest beyond MAX_WAITING are dropped,
and the log says how many were lost; nothing of it fails the run."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

from syncline.engine import run_log
from syncline.store.store import MetadataStore


def test_lines_beyond_what_can_wait_are_counted_and_said_lost(tmp_path: Path,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    url = f"sqlite:///{tmp_path / 'metadata.db'}"
    monkeypatch.setattr(run_log, "MAX_WAITING", 3)
    monkeypatch.setattr(run_log, "FLUSH_S", 0.0)  # every line tries to write at once
    log = logging.getLogger("syncline.test_run_log")
    engine = create_engine(url)
    with MetadataStore(url) as store:
        run_id = store.start_run("c")
        with run_log.running(store.run_logs(), run_id):
            with engine.begin() as con:
                con.execute(text("ALTER TABLE run_logs RENAME TO run_logs_away"))
            for n in range(5):
                log.info("line %d", n)  # never raises
            with engine.begin() as con:
                con.execute(text("ALTER TABLE run_logs_away RENAME TO run_logs"))
        said = [line.message for line in store.run_logs().read(run_id)]
    engine.dispose()
    assert said == ["line 2", "line 3", "line 4",
                    "2 earlier lines of this run were lost while the metadata store could not take them"]
