"""What a run tells from what its last runs taught: a stream reading far fewer rows than usual,
and a success far later than usual, are events (volume.anomaly, freshness.anomaly) and lines of
the run's log; a run like the others tells nothing of the kind."""

from __future__ import annotations

import datetime as dt
import json
import sqlite3
from pathlib import Path

import pytest
from typer.testing import CliRunner

import syncline.cli.app as cli
from syncline.store.store import MetadataStore

from syncfixtures import run_sync, write_ws

T0 = dt.datetime(2026, 11, 2, 6, 0, tzinfo=dt.UTC)


def add_rows(db: Path, start: int, n: int) -> None:
    con = sqlite3.connect(db)
    con.execute("CREATE TABLE IF NOT EXISTS t (id INTEGER PRIMARY KEY, v TEXT)")
    con.executemany("INSERT INTO t VALUES (?, ?)", [(i, f"v{i}") for i in range(start, start + n)])
    con.commit()
    con.close()


def test_a_drop_in_volume_and_a_late_success_are_anomalies(tmp_path: Path,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    write_ws(tmp_path, {"t": {"mode": "incremental", "cursor": "id", "write": "append"}})
    next_id = 1
    for hour in range(12):  # hourly, 100 new rows each time
        add_rows(tmp_path / "src.db", next_id, 100)
        next_id += 100
        monkeypatch.setenv("SYNCLINE_CLOCK", (T0 + dt.timedelta(hours=hour)).isoformat())
        assert run_sync(tmp_path).status == "succeeded"
    with MetadataStore(f"sqlite:///{tmp_path / '.syncline' / 'metadata.db'}") as store:
        assert store.events().read(kinds=["volume.anomaly", "freshness.anomaly"]) == []
    add_rows(tmp_path / "src.db", next_id, 5)  # 5% of the usual, and 6 hours after the last
    monkeypatch.setenv("SYNCLINE_CLOCK", (T0 + dt.timedelta(hours=17)).isoformat())
    late = run_sync(tmp_path)
    assert late.status == "succeeded"
    with MetadataStore(f"sqlite:///{tmp_path / '.syncline' / 'metadata.db'}") as store:
        told = {e.kind: e for e in store.events().read(kinds=["volume.anomaly", "freshness.anomaly"])}
        lines = [line.message for line in store.run_logs().read(late.run_id, level="warning")]
    volume = told["volume.anomaly"]
    assert (volume.run, volume.stream, volume.body["rows_read"]) == (late.run_id, "t", 5)
    assert volume.body["expected_low"] > 5 and volume.body["median"] == 100 and volume.body["history"] >= 10
    fresh = told["freshness.anomaly"]
    assert fresh.body["gap_s"] == 6 * 3600 and fresh.body["median_s"] == 3600, fresh.body
    assert any("read 5 rows, outside the usual" in m for m in lines), lines
    shown = CliRunner().invoke(cli.app, ["status", "-w", str(tmp_path), "--json"])
    [c] = json.loads(shown.stdout)
    assert [(a["kind"], a.get("stream")) for a in c["anomalies"]] == [
        ("volume.anomaly", "t"), ("freshness.anomaly", None)], c["anomalies"]
