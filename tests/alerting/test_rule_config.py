"""`alerts:` mistakes are configuration errors naming the key, the cause and the fix."""

from __future__ import annotations

from pathlib import Path

import pytest

from syncline.config import load_workspace
from syncline.errors import ConfigurationError

CHANNELS = "channels:\n  ops: {type: webhook, url: 'https://x', secret: s}\n"


def error(tmp_path: Path, alerts: str) -> str:
    (tmp_path / "syncline.yaml").write_text(f"version: 1\n{CHANNELS}alerts:\n{alerts}", encoding="utf-8")
    with pytest.raises(ConfigurationError) as info:
        load_workspace(tmp_path)
    return str(info.value)


@pytest.mark.parametrize(("alerts", "expected"), [
    ("  x: {when: 'failing_connectionz > 5'}\n",
     "alerts.x.when: got 'failing_connectionz > 5'; unknown signal 'failing_connectionz'; did you "
     "mean 'failing_connections'?"),
    ("  x: {when: 'connection_down > 48'}\n",
     "connection_down is a duration: compare it with e.g. 48h, not '48'"),
    ("  x: {when: 'quarantined_rows > 5'}\n", "compare it with e.g. 5%"),
    ("  x: {when: 'run.faild'}\n", "did you mean 'run.failed'?"),
    ("  x: {when: 'queue_size > 5', notify: [pager]}\n",
     "alerts.x.notify: 'pager' is not a channel"),
    ("  x: {for: 10m}\n", "alerts.x.when: required key is missing"),
    ("  x: {when: 'queue_size > 5', severity: urgent}\n",
     "alerts.x.severity: got 'urgent'; expected one of info, warning, error, critical"),
    ("  x: {when: 'queue_size > 5', for: soon}\n", "alerts.x.for: got 'soon'"),
    ("  x: {when: 'queue_size > 5', every: 1h}\n", "alerts.x.every: unknown key 'every'"),
], ids=["unknown-signal", "duration-without-unit", "percent-without-sign", "misspelt-event-kind",
        "unknown-channel", "no-condition", "bad-severity", "bad-for", "unknown-key"])
def test_a_bad_rule_names_its_key(tmp_path: Path, alerts: str, expected: str) -> None:
    message = error(tmp_path, alerts)
    assert expected in message
    assert "fix:" in message


def test_changing_a_built_in_rule_keeps_its_condition(tmp_path: Path) -> None:
    (tmp_path / "syncline.yaml").write_text(
        f"version: 1\n{CHANNELS}alerts:\n  connection-down: {{notify: [ops], for: 30m}}\n"
        "  backlog: {when: 'queue_wait > 15m', severity: critical}\n", encoding="utf-8")
    rules = load_workspace(tmp_path).rules
    down = rules["connection-down"]
    assert (down.notify, down.for_s, down.severity, down.builtin) == (("ops",), 1800.0, "error", True)
    assert str(down.when.text) == "connection_down >= 0s"
    assert rules["backlog"].when.threshold == 900.0
    assert list(rules) == ["connection-down", "bugbot", "freshness-breach", "contract-change",
                           "freshness-projected", "slot-lag-trend", "rate-limit-low", "backlog"]
    assert rules["bugbot"].notify == ()  # it pages the owner team only where teams exist


def test_every_signal_is_documented_with_its_unit() -> None:
    import re

    from syncline.alerting_config import SIGNALS

    docs = (Path(__file__).resolve().parents[2] / "docs" / "alerts.md").read_text(encoding="utf-8")
    rows = dict(re.findall(r"^\| `([a-z_]+)` \| (?:workspace|connection|failure group) \| (\w+) \|",
                           docs, flags=re.MULTILINE))
    units = {"count": "count", "seconds": "duration", "percent": "percent", "bytes": "bytes"}
    assert rows == {name: units[s.unit] for name, s in SIGNALS.items()}
