"""`syncline store upgrade` while a worker of the version before keeps writing: migrations only
add, under the database's lock, so the worker neither fails nor loses a row, on SQLite and
PostgreSQL."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import yaml
from alembic import command
from sqlalchemy import create_engine

from syncline.store.db import alembic_config, head_revision
from syncline.store.store import MetadataStore

#: what a sync of a version whose store schema was 0002 writes: a run begun, then ended
OLD_WORKER = """
import datetime as dt, json, os, socket, sys, time
from pathlib import Path
from sqlalchemy import create_engine, text
url, stop, progress = sys.argv[1], Path(sys.argv[2]), Path(sys.argv[3])
engine = create_engine(url, connect_args={"timeout": 30} if url.startswith("sqlite") else {})
done, errors = 0, []
while not stop.exists():
    now = dt.datetime.now(dt.UTC).replace(tzinfo=None)
    try:
        with engine.begin() as conn:
            run = conn.execute(text(
                "INSERT INTO runs (connection, status, trigger, started_at, pid, host) "
                "VALUES ('old', 'running', 'manual', :now, :pid, :host) RETURNING id"),
                {"now": now, "pid": os.getpid(), "host": socket.gethostname()}).scalar_one()
        with engine.begin() as conn:
            conn.execute(text("UPDATE runs SET status = 'succeeded', ended_at = :now, "
                              "rows_committed = :n WHERE id = :id"), {"now": now, "n": run, "id": run})
        done += 1
    except Exception as exc:
        errors.append(f"{type(exc).__name__}: {exc}")
    progress.write_text(json.dumps({"done": done, "errors": errors[:3]}))
    time.sleep(0.005)
print(json.dumps({"done": done, "errors": errors}))
"""


def ran(progress: Path) -> int:
    """How many runs the old worker wrote; it must not have failed once."""
    try:
        seen = json.loads(progress.read_text())
    except (FileNotFoundError, ValueError):  # not yet written, or caught mid-write
        return 0
    assert seen["errors"] == [], seen["errors"]
    return int(seen["done"])


def wait_for(progress: Path, count: int) -> None:
    deadline = time.monotonic() + 60
    while ran(progress) < count:
        assert time.monotonic() < deadline, f"the old worker stalled at {ran(progress)} runs"
        time.sleep(0.05)


def test_upgrade_while_a_worker_of_the_previous_schema_writes(store_url: str, tmp_path: Path) -> None:
    engine = create_engine(store_url)
    cfg = alembic_config()
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "0002")  # before the control plane's tables and columns
    engine.dispose()
    stop, progress = tmp_path / "stop", tmp_path / "progress"
    worker = subprocess.Popen([sys.executable, "-c", OLD_WORKER, store_url, str(stop), str(progress)],
                              stdout=subprocess.PIPE, text=True)
    try:
        wait_for(progress, 20)
        (tmp_path / "syncline.yaml").write_text(yaml.safe_dump({"version": 1, "metadata": store_url}))
        upgrade = subprocess.run([sys.executable, "-m", "syncline", "store", "upgrade", "--json",
                                  "-w", str(tmp_path)], capture_output=True, text=True, timeout=120)
        assert upgrade.returncode == 0, upgrade.stderr
        report = json.loads(upgrade.stdout)
        assert (report["from"], report["to"]) == ("0002", head_revision())
        wait_for(progress, ran(progress) + 20)  # and it goes on writing into the new schema
    finally:
        stop.touch()
        out, _ = worker.communicate(timeout=60)
    result = json.loads(out)
    assert result["errors"] == []
    with MetadataStore(store_url) as store:
        runs = store.runs("old", limit=result["done"] + 10)
    assert len(runs) == result["done"]  # every run the worker began is there, and ended
    assert {r.status for r in runs} == {"succeeded"}
    assert all(r.rows_committed == r.id for r in runs)
