"""`syncline apply`: the workspace file becomes the store's newest config revision."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.markup import escape

from syncline.cli.common import (
    JsonOpt,
    WorkspaceOpt,
    console,
    guarded,
    print_json,
    store_of,
    workspace_path,
)
from syncline.config import load_workspace, read_document

_SIGN = {"added": "[green]+[/]", "removed": "[red]-[/]", "changed": "[yellow]~[/]"}


def apply(
    workspace: WorkspaceOpt = None,
    plan_only: Annotated[bool, typer.Option(
        "--plan", help="Show what applying would change and apply nothing; exit 1 when the "
        "file and the store differ (for CI).")] = False,
    as_json: JsonOpt = False,
) -> None:
    """Apply syncline.yaml to the metadata store as a numbered config revision (what `up`'s
    workers and every run read), after validating it; nothing changes when it is the same."""
    from syncline.orchestration.apply import plan

    ws = guarded(lambda: load_workspace(workspace_path(workspace)))  # invalid: nothing applied
    store = guarded(lambda: store_of(ws))
    try:
        document = guarded(lambda: read_document(ws.file))
        revisions = store.revisions()
        found = plan(document, revisions.latest())
        revision = found.current
        if not plan_only and found.differs:
            revision, _ = revisions.apply(document, origin=f"file:{ws.file}")
    finally:
        store.close()
    current = found.current.number if found.current else None
    if as_json:
        print_json({
            "file": str(ws.file), "current_revision": current,
            "revision": revision.number if revision else None,
            "applied": not plan_only and found.differs, "differs": found.differs,
            "digest": found.digest, "changes": [c.to_json() for c in found.changes]})
    else:
        for c in found.changes:
            keys = f": {', '.join(c.keys)}" if c.keys else ""
            console.print(f"  {_SIGN[c.change]} {escape(c.path)}{escape(keys)}")
        if not found.differs:
            console.print(f"revision {current} is current: {ws.file.name} has not changed")
        elif plan_only:
            console.print(f"{ws.file.name} differs from revision {current or '(none)'}: "
                          f"{len(found.changes)} change(s); `syncline apply` applies them")
        else:
            assert revision is not None
            console.print(f"[green]applied revision {revision.number}[/] "
                          f"(sha256 {found.digest[:12]}; was {current or 'none'})")
    if plan_only and found.differs:
        raise typer.Exit(1)
