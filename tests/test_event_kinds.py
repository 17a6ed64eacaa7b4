"""docs/events.md shows every event kind with the JSON Schema of its body, as event_kinds.py
defines them; an event of an unknown kind cannot be made."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from syncline.event_kinds import KINDS, Event, run_end_kind
from syncline.store.records import RUN_STATUSES

DOCS = Path(__file__).resolve().parents[1] / "docs" / "events.md"


def test_every_kind_is_documented_with_its_schema() -> None:
    text = DOCS.read_text()
    found = dict(re.findall(r"### `([a-z_.]+)`\nSeverity `\w+`\. [^\n]*\n\n```json\n(.*?)\n```", text, re.S))
    assert sorted(found) == sorted(KINDS), "docs/events.md and event_kinds.KINDS disagree"
    for name, kind in KINDS.items():
        assert json.loads(found[name]) == kind.body, f"{name}: docs/events.md shows another schema"
        assert f"### `{name}`\nSeverity `{kind.severity}`" in text


def test_every_run_status_has_its_event_and_no_kind_is_made_up() -> None:
    for status in RUN_STATUSES - {"queued", "running"}:
        assert run_end_kind(status) in KINDS
    assert "run.queued" in KINDS and "run.started" in KINDS
    with pytest.raises(ValueError, match="unknown event kind 'run.exploded'"):
        Event("run.exploded", {})
