"""Runbooks: a page for every failure class, signal and built-in rule, shipped in
docs/runbooks/ (what it means, how to confirm, how to fix, when to escalate).

A signal's page is `<signal>.md`, a failure class's `failure-<class>.md`; a built-in rule
links to its signal's page. Links are the page's path in Syncline's docs; `syncline runbook
NAME` prints one wherever Syncline is installed.
"""

from __future__ import annotations

import sys
from pathlib import Path

FOLDER = "docs/runbooks"


def link(page: str) -> str:
    """The link a notification carries to a page."""
    return f"{FOLDER}/{page}.md"


def for_signal(signal: str) -> str:
    return link(signal)


def for_failure(failure_class: str) -> str:
    return link(f"failure-{failure_class}")


def folder() -> Path:
    """Where the pages are: beside the source (a checkout, an editable install), else where a
    wheel installs its data files."""
    here = Path(__file__).resolve().parents[2] / FOLDER
    if here.is_dir():
        return here
    return Path(sys.prefix) / "share" / "syncline" / "runbooks"


def pages() -> list[str]:
    return sorted(p.stem for p in folder().glob("*.md"))


def read(page: str) -> str | None:
    path = folder() / f"{page}.md"
    return path.read_text(encoding="utf-8") if path.is_file() else None
