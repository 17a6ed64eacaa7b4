"""`syncline store backup` / `restore`: every table as JSON lines, from SQLite into PostgreSQL
and back with nothing changed; a restore refuses a store that is not empty; `store upgrade`
migrates an older store."""

from __future__ import annotations

import datetime as dt
import io
import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from alembic import command
from sqlalchemy import create_engine
from typer.testing import CliRunner

import syncline.cli.app as cli
from syncline.errors import ConfigurationError
from syncline.orchestration.queue import RunRequest
from syncline.store.db import alembic_config, head_revision
from syncline.store.schedules import Due
from syncline.store.store import MetadataStore, StreamStats

T0 = dt.datetime(2026, 12, 7, 12, 0, 0, 123456, tzinfo=dt.UTC)


def fill(store: MetadataStore) -> None:
    """A store that has seen a bit of everything."""
    run_id = store.start_run("shop", "schedule", revision=1)
    attempt = store.start_attempt(run_id, 1)
    store.end_attempt(attempt, "failed", "transient", "timeout ü")
    store.record_stream(run_id, StreamStats("orders", "orders", "incremental", "merge", "succeeded",
                                            10, 9, 1, 2048, 1.5, T0, T0 + dt.timedelta(seconds=2)))
    store.end_run(run_id, "warning", rows_read=10, rows_committed=9, rows_quarantined=1, attempts=2)
    store.record_schema("shop", "orders", {"id": "int64"}, run_id)
    store.mirror_checkpoint("shop", "orders", {"cursor": "2026-12-07", "key": [1]})
    grant = store.leases(dt.timedelta(seconds=60)).acquire("shop", run_id)
    store.leases(dt.timedelta(seconds=60)).release(grant)
    store.revisions().apply({"version": 1, "connections": {"shop": {"schedule": "every 1h"}}}, "file:x")
    queued = store.queue().put(RunRequest("shop", "manual", streams=("orders",)), now=T0)
    store.queue().put(RunRequest("crm", "schedule"), now=T0)
    store.queue().claim("w1", now=T0)
    store.queue().started(queued.id, run_id)
    store.leader("scheduler", "one", dt.timedelta(seconds=30)).hold(T0)
    store.workers().register("w1")
    store.schedule_states().save([Due("shop", "every 1h [UTC]", T0, T0 - dt.timedelta(hours=1), 1)])
    store.pauses().pause("crm")
    store.bucket("rest api", 5, 1.0).take()


def dump(store: MetadataStore) -> list[str]:
    out = io.StringIO()
    store.backup(out)
    return out.getvalue().splitlines()


def test_a_backup_restores_into_the_other_backend_unchanged(tmp_path: Path, require_pg_database: str) -> None:
    sqlite = f"sqlite:///{tmp_path / 'metadata.db'}"
    with MetadataStore(sqlite) as store:
        fill(store)
        first = dump(store)
    assert json.loads(first[0])["schema"] is not None
    assert {json.loads(line)["table"] for line in first[1:]} >= {
        "runs", "attempts", "stream_runs", "stream_schemas", "checkpoints", "leases",
        "config_revisions", "run_queue", "leaders", "schedule_state", "workers", "pauses", "budgets"}
    with MetadataStore(require_pg_database) as pg:
        counts = pg.restore(first)
        assert counts["runs"] == 1 and counts["run_queue"] == 2
        assert dump(pg) == first
        assert pg.start_run("shop") == 2  # ids continue past the restored ones
        assert pg.queue().put(RunRequest("other")).id == 3
        again = dump(pg)
    back = f"sqlite:///{tmp_path / 'back.db'}"
    with MetadataStore(back) as store:
        store.restore(again)
        assert dump(store) == again
        run = store.run(1)
        assert run is not None and run.status == "warning" and run.streams[0].started_at == T0


def test_a_restore_refuses_a_store_that_holds_anything_or_a_file_that_is_no_backup(tmp_path: Path) -> None:
    with MetadataStore(f"sqlite:///{tmp_path / 'a.db'}") as store:
        fill(store)
        lines = dump(store)
        with pytest.raises(ConfigurationError, match="the metadata store is not empty"):
            store.restore(lines)
    with MetadataStore(f"sqlite:///{tmp_path / 'b.db'}") as empty:
        with pytest.raises(ConfigurationError, match="not a Syncline store backup"):
            empty.restore(['{"runs": []}'])
        header = json.loads(lines[0]) | {"schema": "0001"}
        with pytest.raises(ConfigurationError, match="the backup is of store schema 0001"):
            empty.restore([json.dumps(header), *lines[1:]])
        assert dump(empty)[1:] == []  # nothing was written


def workspace(root: Path, metadata: str) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    (root / "syncline.yaml").write_text(yaml.safe_dump({"version": 1, "metadata": metadata}))
    return root


def test_the_store_commands(tmp_path: Path) -> None:
    old = f"sqlite:///{tmp_path / 'old.db'}"
    engine = create_engine(old)
    cfg = alembic_config()
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "0006")
    engine.dispose()
    ws = workspace(tmp_path / "a", old)
    done = CliRunner().invoke(cli.app, ["store", "upgrade", "-w", str(ws), "--json"])
    assert done.exit_code == 0, done.output
    report: dict[str, Any] = json.loads(done.stdout)
    assert (report["from"], report["to"]) == ("0006", head_revision())
    with MetadataStore(old) as store:
        fill(store)
    saved = tmp_path / "store.jsonl"
    assert CliRunner().invoke(cli.app, ["store", "backup", str(saved), "-w", str(ws)]).exit_code == 0
    fresh = workspace(tmp_path / "b", f"sqlite:///{tmp_path / 'new.db'}")
    restored = CliRunner().invoke(cli.app, ["store", "restore", str(saved), "-w", str(fresh), "--json"])
    assert restored.exit_code == 0, restored.output
    assert json.loads(restored.stdout)["tables"]["runs"] == 1
    twice = CliRunner().invoke(cli.app, ["store", "restore", str(saved), "-w", str(fresh)])
    assert twice.exit_code == 2 and "not empty" in twice.output
