"""`status` as a health check: late when the last success is older than the freshness SLA
(given, or two schedule intervals), and exit 1 when any connection is failing or late."""

from __future__ import annotations

import datetime as dt
import json
import time
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

import syncline.cli.app as cli
from syncline.cli.views import connection_status
from syncline.config import load_workspace
from syncline.schedule import Schedule
from syncline.store.store import MetadataStore

from syncfixtures import make_items, write_ws

STREAMS = {"items": {"mode": "incremental", "write": "merge", "cursor": "updated_at"}}


def _with(root: Path, **keys: str | None) -> None:
    doc = yaml.safe_load((root / "syncline.yaml").read_text())
    doc["connections"]["c"].update(keys)
    doc["connections"]["c"] = {k: v for k, v in doc["connections"]["c"].items() if v is not None}
    (root / "syncline.yaml").write_text(yaml.safe_dump(doc))


def _health_at(root: Path, later: dt.timedelta) -> str:
    ws = load_workspace(root)
    store = MetadataStore(ws.metadata_url())
    try:
        [row] = connection_status(ws, store, dt.datetime.now(dt.UTC) + later)
    finally:
        store.close()
    health: str = row["health"]
    return health


def test_a_scheduled_connection_is_late_after_two_intervals_without_a_success(tmp_path: Path) -> None:
    make_items(tmp_path / "src.db", 5)
    write_ws(tmp_path, STREAMS)
    _with(tmp_path, schedule="every 10m")
    assert CliRunner().invoke(cli.app, ["sync", "c", "-w", str(tmp_path)]).exit_code == 0
    assert _health_at(tmp_path, dt.timedelta(minutes=15)) == "healthy"
    assert _health_at(tmp_path, dt.timedelta(minutes=21)) == "late"
    _with(tmp_path, schedule="every 10m", freshness_sla="1h")
    assert _health_at(tmp_path, dt.timedelta(minutes=59)) == "healthy"
    assert _health_at(tmp_path, dt.timedelta(minutes=61)) == "late"
    _with(tmp_path, schedule="manual", freshness_sla=None)
    assert _health_at(tmp_path, dt.timedelta(days=30)) == "healthy"  # no schedule, no SLA


def test_status_exits_1_when_a_connection_is_late_or_failing(tmp_path: Path) -> None:
    make_items(tmp_path / "src.db", 5)
    write_ws(tmp_path, STREAMS)
    _with(tmp_path, freshness_sla="1s")
    runner = CliRunner()
    assert runner.invoke(cli.app, ["sync", "c", "-w", str(tmp_path)]).exit_code == 0
    assert runner.invoke(cli.app, ["status", "-w", str(tmp_path)]).exit_code == 0
    time.sleep(1.2)
    late = runner.invoke(cli.app, ["status", "-w", str(tmp_path), "--json"])
    assert late.exit_code == 1 and json.loads(late.stdout)[0]["health"] == "late"
    _with(tmp_path, freshness_sla="1h")
    (tmp_path / "src.db").unlink()
    assert runner.invoke(cli.app, ["sync", "c", "-w", str(tmp_path)]).exit_code != 0
    failing = runner.invoke(cli.app, ["status", "-w", str(tmp_path), "--json"])
    assert failing.exit_code == 1 and json.loads(failing.stdout)[0]["health"] == "failing"


def test_a_cron_sla_is_twice_the_gap_between_its_last_two_ticks() -> None:
    now = dt.datetime(2026, 12, 6, 12, 30, tzinfo=dt.UTC)
    assert Schedule.parse("0 */6 * * *").default_sla(now) == dt.timedelta(hours=12)
    assert Schedule.parse("every 15m").default_sla(now) == dt.timedelta(minutes=30)
    assert Schedule.parse("manual").default_sla(now) is None


@pytest.mark.parametrize("bad", ["soon", "0h", "5 weeks"])
def test_a_bad_freshness_sla_names_the_key_and_the_form(tmp_path: Path, bad: str) -> None:
    write_ws(tmp_path, STREAMS)
    _with(tmp_path, freshness_sla=bad)
    done = CliRunner().invoke(cli.app, ["status", "-w", str(tmp_path)])
    assert done.exit_code == 2
    assert "connections.c.freshness_sla" in done.stderr and "<N>s|m|h|d" in done.stderr
