"""Every failure class, signal and built-in rule has a runbook page with its four parts, and
`syncline runbook` prints it; notifications and `syncline failures` carry the link."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

import syncline.cli.app as cli
import syncline.errors as errors
from syncline import runbooks
from syncline.alerting_config import BUILTIN_RULES, SIGNALS
from syncline.cli.runbook import page_of

PARTS = ("## What it means", "## How to confirm", "## How to fix", "## When to escalate")


def failure_classes() -> set[str]:
    return {cls.failure_class for cls in vars(errors).values()
            if isinstance(cls, type) and issubclass(cls, errors.SynclineError)}


@pytest.mark.parametrize("page", sorted({*SIGNALS, *(f"failure-{c}" for c in failure_classes()),
                                         *(page_of(r) for r in BUILTIN_RULES)}))
def test_each_has_a_page_with_its_four_parts(page: str) -> None:
    text = runbooks.read(page)
    assert text is not None, f"docs/runbooks/{page}.md is missing"
    for part in PARTS:
        assert part in text, f"{page}: no '{part}'"
    assert Path(runbooks.folder() / f"{page}.md").is_file()


def test_no_page_names_nothing() -> None:
    known = {*SIGNALS, *(f"failure-{c}" for c in failure_classes())}
    assert set(runbooks.pages()) - known == set()


def test_syncline_runbook_prints_a_page_by_any_of_its_names() -> None:
    for name in ("connection-down", "connection_down"):
        done = CliRunner().invoke(cli.app, ["runbook", name, "--json"])
        assert done.exit_code == 0, done.output
        assert json.loads(done.stdout)["link"] == "docs/runbooks/connection_down.md"
    text = CliRunner().invoke(cli.app, ["runbook", "source"]).output
    assert "What it means" in text and "source failure" in text
    missing = CliRunner().invoke(cli.app, ["runbook", "nope"])
    assert missing.exit_code == 2 and "no runbook named 'nope'" in missing.output
    listed = CliRunner().invoke(cli.app, ["runbook"]).output.split()
    assert "failure-transient" in listed and "slot_lag_growth" in listed
