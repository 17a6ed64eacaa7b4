"""SYNCLINE_CLOCK drives the control plane's clock, in this process and in the ones it starts."""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from syncline import clock
from syncline.errors import ConfigurationError

from syncfixtures import make_items, write_ws


def test_a_fixed_time_a_file_and_a_bad_value(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SYNCLINE_CLOCK", "2026-12-07T12:00:00Z")
    assert clock.now() == dt.datetime(2026, 12, 7, 12, tzinfo=dt.UTC)
    path = tmp_path / "clock"
    monkeypatch.setenv("SYNCLINE_CLOCK", f"file:{path}")
    clock.write(path, dt.datetime(2026, 12, 7, 13, 30, tzinfo=dt.timezone(dt.timedelta(hours=1))))
    assert clock.now() == dt.datetime(2026, 12, 7, 12, 30, tzinfo=dt.UTC)
    for bad in ("2026-12-07T12:00:00", "tomorrow"):
        monkeypatch.setenv("SYNCLINE_CLOCK", bad)
        with pytest.raises(ConfigurationError, match="SYNCLINE_CLOCK: .* is not an ISO time with a zone"):
            clock.now()
    monkeypatch.delenv("SYNCLINE_CLOCK")
    assert abs(clock.now() - dt.datetime.now(dt.UTC)) < dt.timedelta(seconds=5)


def test_status_in_another_process_judges_freshness_by_the_test_clock(tmp_path: Path) -> None:
    make_items(tmp_path / "src.db", 3)
    write_ws(tmp_path, {"items": {"mode": "full_refresh", "write": "replace"}})
    doc = yaml.safe_load((tmp_path / "syncline.yaml").read_text())
    doc["connections"]["c"]["schedule"] = "every 1h"  # late two hours after its last success
    (tmp_path / "syncline.yaml").write_text(yaml.safe_dump(doc))
    cli = [sys.executable, "-m", "syncline", "-w", str(tmp_path)]
    env = {k: v for k, v in os.environ.items() if k != "SYNCLINE_CLOCK"}
    assert subprocess.run([*cli, "sync", "c"], env=env, capture_output=True).returncode == 0
    now = subprocess.run([*cli, "status", "--json"], env=env, capture_output=True, text=True)
    assert now.returncode == 0 and json.loads(now.stdout)[0]["health"] == "healthy"
    later = (dt.datetime.now(dt.UTC) + dt.timedelta(hours=3)).isoformat()
    late = subprocess.run([*cli, "status", "--json"], env={**env, "SYNCLINE_CLOCK": later},
                          capture_output=True, text=True)
    assert late.returncode == 1 and json.loads(late.stdout)[0]["health"] == "late"
