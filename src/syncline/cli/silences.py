"""`syncline silence`: hold notifications back for a while — of a connection, a rule, or a rule
for one connection (`silence add`), see them (`silence list`), end one early (`expire`)."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.markup import escape
from rich.table import Table

from syncline import clock
from syncline.cli.common import (
    HELP,
    JsonOpt,
    ListByDefault,
    WorkspaceOpt,
    console,
    duration_option,
    guarded,
    opened,
    print_json,
    refuse,
)
from syncline.cli.views import age

silence_app = typer.Typer(context_settings=HELP, name="silence", cls=ListByDefault,
                          help="Silences: `silence add`, `silence list`, `silence expire ID`.")


@silence_app.command("add")
def add(
    connection: Annotated[str | None, typer.Option("--connection", help="Silence this "
                                                   "connection's notifications.")] = None,
    rule: Annotated[str | None, typer.Option("--rule", help="Silence this rule's notifications "
                                             "(with --connection: only for that connection).")] = None,
    duration: Annotated[str, typer.Option("--for", help="How long: <N>s|m|h|d.")] = "2h",
    reason: Annotated[str | None, typer.Option("--reason", help="Why (shown in `silence list`; "
                                               "required).")] = None,
    workspace: WorkspaceOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Hold back every notification of a connection, of a rule, or of a rule for a connection,
    from now for --for. Rules go on judging (`syncline alerts` still shows what fires); what
    still fires when the silence ends is told then."""
    if connection is None and rule is None:
        refuse("say what to silence", "pass --connection NAME, --rule NAME, or both")
    if not reason or not reason.strip():
        refuse("a silence needs a reason", "pass --reason TEXT, e.g. --reason \"vendor outage\"")
    length = duration_option("--for", duration)
    now = clock.now()
    with opened(workspace) as (ws, store):
        if connection is not None:
            guarded(lambda: ws.connection(connection))
        if rule is not None and rule not in ws.rules:
            refuse(f"no alert rule named '{rule}'", f"use one of: {', '.join(sorted(ws.rules))}")
        made = store.silences().add(connection=connection, rule=rule, starts=now,
                                    ends=now + length, reason=reason.strip())
    if as_json:
        print_json(made.to_json(now))
        return
    what = " ".join(x for x in (f"rule {rule}" if rule else "", f"connection {connection}"
                                if connection else "") if x)
    console.print(f"silence {made.id}: {escape(what)} until {made.ends:%Y-%m-%d %H:%M} UTC "
                  f"({escape(made.reason)})")


@silence_app.command("list")
def list_silences(
    include_ended: Annotated[bool, typer.Option("--all", help="Ended silences too.")] = False,
    workspace: WorkspaceOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """The silences in force (and to come), with who made them and why; --all adds those ended."""
    now = clock.now()
    with opened(workspace) as (_ws, store):
        found = store.silences().list(now, include_ended)
    if as_json:
        print_json([s.to_json(now) for s in found])
        return
    if not found:
        console.print("no silences")
        return
    t = Table(title="Silences")
    for col in ("id", "connection", "rule", "started", "ends", "by", "reason"):
        t.add_column(col, overflow="fold")
    for s in found:
        t.add_row(str(s.id), escape(s.connection or "any"), escape(s.rule or "any"),
                  age(s.starts, now), f"{s.ends:%Y-%m-%d %H:%M} UTC" + ("" if s.active(now) else " (ended)"),
                  escape(s.created_by), escape(s.reason))
    console.print(t)


@silence_app.command("expire")
def expire(
    silence_id: Annotated[int, typer.Argument(help="A silence's id, as `silence list` shows it.")],
    workspace: WorkspaceOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """End a silence now: what still fires is told at the next evaluation."""
    now = clock.now()
    with opened(workspace) as (_ws, store):
        ended = store.silences().expire(silence_id, now)
    if ended is None:
        refuse(f"no silence {silence_id}", "see `syncline silence list --all`")
    if as_json:
        print_json(ended.to_json(now))
    else:
        console.print(f"silence {ended.id} ended")
