"""`syncline digest`: the Wall of Shame now — overdue incidents, then failing connections by root
cause, the widest first, then those down for more than 48 hours; `--send` also sends it."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.markup import escape
from rich.table import Table

from syncline import clock
from syncline.cli.common import (
    JsonOpt,
    WorkspaceOpt,
    console,
    guarded,
    print_json,
    refuse,
    store_of,
    workspace_path,
)
from syncline.config import load_workspace


def digest(
    workspace: WorkspaceOpt = None,
    send: Annotated[bool, typer.Option("--send", help="Also send it now to the channels of "
                                       "`digest.notify` (exit 1 when one failed).")] = False,
    as_json: JsonOpt = False,
) -> None:
    """The digest as `up` sends it at `digest.at`: failing connections grouped by root cause
    (the causes hitting most connections first), each with since when it is down and its last
    error, then the connections down for more than 48 hours."""
    from syncline.alerting.delivery import Deliverer
    from syncline.alerting.digest import build
    from syncline.alerting.rules import show

    ws = guarded(lambda: load_workspace(workspace_path(workspace)))
    if send and ws.model.digest is None:
        refuse(f"no `digest:` in {ws.file.name} to send it to",
               "add e.g. digest: {at: [\"08:00\", \"20:00\"], notify: [team-mail]}")
    now = clock.now()
    store = guarded(lambda: store_of(ws))
    errors: dict[str, str] = {}
    busy: str | None = None
    try:
        made = guarded(lambda: build(store, ws, now))
        if send and ws.model.digest is not None:
            note = made.notification(f"digest/manual/{now.isoformat()}")
            store.outbox().put([(c, note.id, note.kind, note.payload()) for c in ws.model.digest.notify], now)
            report = Deliverer(store).drain(ws, release=True)
            errors, busy = report.errors, report.busy
    finally:
        store.close()
    if as_json:
        print_json({**made.to_json(), "sent": send and not errors and not busy,
                    "delivered_by": busy, "delivery_errors": errors})
    else:
        console.print(f"[bold]{escape(made.title())}[/bold]")
        if made.overdue:
            t = Table(title=f"Overdue incidents ({len(made.overdue)})", title_justify="left")
            for col in ("incident", "title", "owner", "assignee", "due"):
                t.add_column(col, overflow="fold")
            for i in made.overdue:
                t.add_row(str(i.id), escape(i.title), escape(i.owner or "—"),
                          escape(i.assignee or "—"), f"{i.due_at:%Y-%m-%d}")
            console.print(t)
        for g in made.groups:
            t = Table(title=f"{g.pattern[:120]} — {len(g.connections)} connection(s) "
                      f"({g.origin}, {g.failure_class})", title_justify="left")
            for col in ("connection", "down since", "for", "owner", "incident", "last error"):
                t.add_column(col, overflow="fold")
            for d in g.connections:
                t.add_row(escape(d.connection), f"{d.since:%Y-%m-%d %H:%M} UTC",
                          show((now - d.since).total_seconds(), "seconds"), escape(d.owner or "—"),
                          str(d.incident or "—"), escape(d.error[:300]))
            console.print(t)
        if made.down_long:
            console.print("Down for more than 48 hours: " + ", ".join(
                f"{d.connection} ({show((now - d.since).total_seconds(), 'seconds')})"
                for d in made.down_long))
        if send and busy:
            console.print(f"queued; {busy} delivers it")
        elif send:
            console.print("sent" if not errors else "[red]not sent[/red]: " + "; ".join(
                f"{escape(c)}: {escape(e)}" for c, e in sorted(errors.items())))
    if errors:
        raise typer.Exit(1)
