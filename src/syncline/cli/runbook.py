"""`syncline runbook NAME`: print a runbook — of a signal, a built-in rule, a failure class."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.markdown import Markdown

from syncline import runbooks
from syncline.alerting_config import BUILTIN_RULES, Condition, Rule, parse_condition
from syncline.cli.common import JsonOpt, WorkspaceOpt, console, print_json, refuse, workspace_path
from syncline.config import load_workspace
from syncline.errors import SynclineError


def _rule_of_workspace(workspace: Path | None, name: str) -> Rule | None:
    """The workspace's rule NAME, if there is a workspace here with such a rule."""
    try:
        ws = load_workspace(workspace_path(workspace))
    except SynclineError:
        return None
    return ws.rules.get(name)


def page_of(name: str) -> str:
    """The page NAME means: a page itself, a built-in rule's signal, a failure class."""
    if name in runbooks.pages():
        return name
    rule = BUILTIN_RULES.get(name)
    if rule is not None and rule.when is not None:
        condition = parse_condition(rule.when)
        if not isinstance(condition, str):
            return condition.signal
        if "failure_class" in rule.match:  # an event rule about one failure class
            return f"failure-{rule.match['failure_class']}"
    if f"failure-{name}" in runbooks.pages():
        return f"failure-{name}"
    return name


def runbook(
    name: Annotated[str | None, typer.Argument(help="A signal (connection_down), a rule "
                                               "(connection-down) or a failure class (source, "
                                               "failure-source). None: list them.")] = None,
    workspace: WorkspaceOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Print a runbook: what it means, how to confirm, how to fix, when to escalate. Every
    alert notification and `syncline failures` group links to one. A rule of the workspace
    shows its own `runbook:` link if it sets one, else its signal's page."""
    own = _rule_of_workspace(workspace, name) if name is not None else None
    if own is not None and own.runbook:
        if as_json:
            print_json({"name": name, "link": own.runbook, "text": None})
        else:
            console.print(f"rule {name}: its runbook is {own.runbook}")
        return
    if own is not None and isinstance(own.when, Condition):
        name = own.when.signal
    if name is None:
        names = runbooks.pages()
        if as_json:
            print_json({"runbooks": names, "builtin_rules": {r: page_of(r) for r in BUILTIN_RULES}})
        else:
            console.print("\n".join(names))
        return
    page = page_of(name)
    text = runbooks.read(page)
    if text is None:
        refuse(f"no runbook named '{name}'", "run `syncline runbook` for the list")
    if as_json:
        print_json({"name": page, "link": runbooks.link(page), "text": text})
    else:
        console.print(Markdown(text))
