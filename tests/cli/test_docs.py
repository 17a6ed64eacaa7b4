"""Every CLI command and option is documented, and the public API is what __all__ says."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import typer.main

import syncline
from syncline.cli.app import app

DOCS = Path(__file__).resolve().parents[2] / "docs" / "cli.md"


def _commands() -> dict[str, Any]:
    group: Any = typer.main.get_command(app)
    return dict(group.commands)


def test_every_command_has_a_section_in_the_cli_docs() -> None:
    text = DOCS.read_text(encoding="utf-8")
    documented = set(re.findall(r"^## `syncline (\w[\w-]*)", text, flags=re.MULTILINE))
    assert documented == set(_commands())


def test_the_docs_name_no_command_the_cli_lacks() -> None:
    text = DOCS.read_text(encoding="utf-8")
    named = set(re.findall(r"`syncline ([a-z][\w-]*)", text))
    assert named - set(_commands()) == set()


def test_every_option_of_every_command_is_documented() -> None:
    text = DOCS.read_text(encoding="utf-8")
    missing = [
        f"{name} {opt}"
        for name, cmd in _commands().items()
        for param in cmd.params
        if type(param).__name__ == "Option" or type(param).__name__ == "TyperOption"
        for opt in param.opts
        if opt.startswith("--") and opt not in text
    ]
    assert missing == []


def test_public_api_matches_all() -> None:
    for name in syncline.__all__:
        assert hasattr(syncline, name), name
    public = {n for n in vars(syncline) if not n.startswith("_")} - {"annotations"}
    modules = {n for n in public if type(getattr(syncline, n)).__name__ == "module"}
    assert public - modules == set(syncline.__all__) - {"__version__"}
