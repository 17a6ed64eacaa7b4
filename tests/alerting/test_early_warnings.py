"""Early warnings: freshness projected to breach before the next run ends, a CDC slot's lag
growing run after run, an API's rate limit nearly spent (seen through a real REST source)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import pytest
import yaml
from apikit import json_api
from typer.testing import CliRunner

import syncline.cli.app as cli
from syncline import clock
from syncline.alerting.rules import Evaluator
from syncline.config import Workspace, load_workspace
from syncline.event_kinds import Event
from syncline.store.store import MetadataStore

T0 = dt.datetime(2026, 12, 7, 12, tzinfo=dt.UTC)
ONLY = ("freshness-projected", "slot-lag-trend", "rate-limit-low")


def workspace(root: Path, store_url: str, **more: Any) -> Workspace:
    (root / "syncline.yaml").write_text(yaml.safe_dump({
        "version": 1, "metadata": store_url,
        "sources": {"db": {"type": "sqlite", "path": "src.db"}, **more.get("sources", {})},
        "destinations": {"wh": {"type": "duckdb", "path": "wh.duckdb"}},
        "connections": {"slow": {"source": "db", "destination": "wh", "schedule": "every 1h"},
                        "quick": {"source": "db", "destination": "wh", "schedule": "every 1h"},
                        **more.get("connections", {})},
        "alerts": {"connection-down": {"enabled": False}, "freshness-breach": {"enabled": False},
                   **{r: {"group_wait": "0s"} for r in ONLY}}}))
    return load_workspace(root)


def at(monkeypatch: pytest.MonkeyPatch, moment: dt.datetime) -> None:
    monkeypatch.setenv(clock.ENV, moment.isoformat())


def succeed(store: MetadataStore, connection: str, took: dt.timedelta,
            monkeypatch: pytest.MonkeyPatch) -> None:
    at(monkeypatch, T0)
    run_id = store.start_run(connection, "schedule")
    at(monkeypatch, T0 + took)
    store.end_run(run_id, "succeeded", rows_read=1, rows_committed=1, rows_quarantined=0, attempts=1)


def test_freshness_projected_warns_of_a_run_that_will_end_too_late(
        tmp_path: Path, store_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    ws = workspace(tmp_path, store_url)
    with MetadataStore(store_url) as store:
        succeed(store, "slow", dt.timedelta(minutes=40), monkeypatch)  # SLA 2h: due 13:40, ends 14:20
        succeed(store, "quick", dt.timedelta(minutes=1), monkeypatch)
        result = Evaluator(store, lambda: T0 + dt.timedelta(minutes=41)).evaluate(ws)
        assert result.fired == [("freshness-projected", "slow")]
        [note] = store.alert_states().all().values()
        assert note.value == pytest.approx(20 * 60)
        late = Evaluator(store, lambda: T0 + dt.timedelta(hours=3)).evaluate(ws)
        assert late.resolved == [("freshness-projected", "slow")]  # breached now: not a forecast


def test_a_slot_lag_growing_run_after_run_warns_and_a_wobbling_one_does_not(
        tmp_path: Path, store_url: str) -> None:
    ws = workspace(tmp_path, store_url)
    with MetadataStore(store_url) as store:
        for n in range(8):
            when = T0 - dt.timedelta(minutes=10 * (8 - n))
            for conn, lag in (("slow", 1_000_000 + n * 5_000_000),
                              ("quick", 50_000_000 + (n % 2) * 40_000_000)):
                store.emitter.emit(Event("stream.finished", {
                    "table": "t", "mode": "cdc", "write": "merge", "rows_read": 1,
                    "rows_committed": 1, "rows_quarantined": 0, "bytes": 1, "seconds": 1.0,
                    "window": {"from": None, "to": {"phase": "stream", "lag_bytes": lag}}},
                    connection=conn, stream="public.orders", time=when))
        result = Evaluator(store, lambda: T0).evaluate(ws)
        assert result.fired == [("slot-lag-trend", "slow")]
        [state] = store.alert_states().all().values()
        assert state.value == 35_000_000.0


@pytest.mark.parametrize(("remaining", "warned"), [(4, True), (60, False)], ids=["4-left", "60-left"])
def test_an_api_nearly_out_of_its_rate_limit_warns(tmp_path: Path, remaining: int, warned: bool) -> None:
    url = f"sqlite:///{tmp_path / '.syncline' / 'metadata.db'}"
    with json_api(lambda _n, _path, _auth: (200, [{"id": 1}, {"id": 2}]),
                  headers={"X-RateLimit-Limit": "100", "X-RateLimit-Remaining": str(remaining)}) as api:
        ws = workspace(tmp_path, url, sources={"crm": {
            "type": "rest", "base_url": api,
            "streams": {"contacts": {"path": "/contacts", "primary_key": ["id"]}}}},
            connections={"crm_sync": {"source": "crm", "destination": "wh"}})
        done = CliRunner().invoke(cli.app, ["sync", "crm_sync", "-w", str(tmp_path)])
        assert done.exit_code == 0, done.output
    with MetadataStore(url) as store:
        result = Evaluator(store).evaluate(ws)
    assert result.fired == ([("rate-limit-low", "crm_sync")] if warned else [])
