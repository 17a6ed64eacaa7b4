"""`syncline oncall`: for each team, who is on call and where a page for it goes now (or at a
given time), and why — its own hours, its pair's, or out of hours — with the managers' on-call."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any

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
    workspace_path,
)
from syncline.config import load_workspace
from syncline.teams import MANAGERS, route

_WHY = {"own_hours": "in its hours", "pair_hours": "out of its hours; its pair is in theirs",
        "out_of_hours": "out of hours (its pair too): its own on-call"}


def oncall(
    team: Annotated[str | None, typer.Option("--team", help="Only this team.")] = None,
    at: Annotated[str | None, typer.Option("--at", help="At this time instead of now: ISO 8601 "
                                           "with a zone, e.g. 2026-12-12T20:00-08:00.")] = None,
    workspace: WorkspaceOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """For each team: who is on call, whether the team is in its working hours, and where a page
    for it goes (follow the sun: its on-call in its hours, else its pair's on-call in theirs,
    else its own), with the managers' on-call who is told of critical pages."""
    ws = guarded(lambda: load_workspace(workspace_path(workspace)))
    teams = ws.model.teams
    if not teams:
        refuse(f"no `teams:` in {ws.file.name}", "add teams with an on_call rotation "
               "(docs/incidents.md)")
    if team is not None and team not in teams:
        refuse(f"no team named '{team}'", f"use one of: {', '.join(sorted(teams))}")
    moment = clock.now()
    if at is not None:
        try:
            moment = dt.datetime.fromisoformat(at.replace("Z", "+00:00"))
        except ValueError:
            moment = None  # type: ignore[assignment]
        if moment is None or moment.tzinfo is None:
            refuse(f"--at {at!r} is not an ISO time with a zone", "write e.g. --at 2026-12-12T20:00Z")
    rows: list[dict[str, Any]] = []
    for name in sorted(teams) if team is None else [team]:
        t = teams[name]
        page = route(teams, name, moment)
        rows.append({"team": name, "on_call": t.on_call_person(moment), "in_hours": t.in_hours(moment),
                     "local_time": t.local(moment).strftime("%a %Y-%m-%d %H:%M"),
                     "timezone": t.timezone, "pair": t.pair, "page": page.to_json(),
                     "owns": sorted(c for c, o in ws.owners.items() if o == name)})
    if as_json:
        print_json({"at": moment.isoformat(), "teams": rows})
        return
    table = Table(title=f"On call at {moment:%Y-%m-%d %H:%M} UTC")
    for col in ("team", "local time", "in hours", "on call", "a page goes to", "why", "managers"):
        table.add_column(col, overflow="fold")
    for r in rows:
        page = r["page"]
        to = f"{page['person'] or '(no rotation)'}" + (f" ({page['via']})" if page["via"] != r["team"] else "")
        table.add_row(escape(r["team"]) + (" [dim](managers)[/dim]" if r["team"] == MANAGERS else ""),
                      f"{r['local_time']} {r['timezone']}", "yes" if r["in_hours"] else "no",
                      escape(r["on_call"] or "—"), escape(to), _WHY[page["reason"]],
                      escape(page["manager"] or "—"))
    console.print(table)
