"""`syncline incidents`: the open incidents (`list`), one in full with its timeline (`show`),
and each change a person makes: `open`, `ack`, `assign`, `note`, `resolve`, `reopen`."""

from __future__ import annotations

from collections.abc import Callable
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
from syncline.config import Workspace
from syncline.store.incidents import SEVERITIES, STATES, IncidentRecord, IncidentRefused
from syncline.store.leases import who
from syncline.store.store import MetadataStore

incidents_app = typer.Typer(
    context_settings=HELP, name="incidents", cls=ListByDefault,
    help="Incidents: `list`, `show ID`, `open`, `ack ID`, `assign ID WHO`, `note ID TEXT`, "
    "`resolve ID --note TEXT`, `reopen ID`, `stats`.")
IdArg = Annotated[int, typer.Argument(help="An incident's number, as `incidents list` shows it.")]


def _with_store(workspace: WorkspaceOpt,
                work: Callable[[MetadataStore, Workspace], IncidentRecord | None]) -> IncidentRecord | None:
    with opened(workspace) as (ws, store):
        try:
            return work(store, ws)
        except IncidentRefused as exc:
            refuse(str(exc), "see `syncline incidents show ID` for its state and timeline")
        except KeyError as exc:
            refuse(f"no incident {exc.args[0]}", "see `syncline incidents list --all`")


def _said(inc: IncidentRecord | None, as_json: bool, what: str) -> None:
    assert inc is not None
    if as_json:
        print_json(inc.to_json(clock.now()))
    else:
        console.print(f"incident {inc.id} {what}: {escape(inc.title)} ({inc.state}, "
                      f"due {inc.due_at:%Y-%m-%d})")


def _change(action: str, workspace: WorkspaceOpt, incident_id: int, text: str | None = None,
            assignee: str | None = None) -> IncidentRecord | None:
    from syncline.alerting.incidents import change_incident

    return _with_store(workspace, lambda store, ws: change_incident(
        store, ws, incident_id, action, by=who(), now=clock.now(), text=text, assignee=assignee))


@incidents_app.command("list")
def list_incidents(
    include_all: Annotated[bool, typer.Option("--all", help="Resolved ones too.")] = False,
    team: Annotated[str | None, typer.Option("--team", help="Only this team's.")] = None,
    workspace: WorkspaceOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """The unresolved incidents (--all: every one), the earliest due first: severity, state,
    owner team, assignee, connection, when opened and when due (overdue ones say so)."""
    with opened(workspace) as (_ws, store):
        found = store.incidents().list(states=STATES if include_all else STATES[:3], owner=team)
    now = clock.now()
    if as_json:
        print_json([i.to_json(now) for i in found])
        return
    if not found:
        console.print("no incidents" if include_all else "no open incidents")
        return
    t = Table(title="Incidents, the earliest due first")
    for col in ("id", "severity", "state", "title", "owner", "assignee", "connection", "opened", "due"):
        t.add_column(col, overflow="fold")
    for i in found:
        due = f"{i.due_at:%Y-%m-%d}" + (" [red]overdue[/red]" if i.overdue(now) else "")
        t.add_row(str(i.id), i.severity, i.state, escape(i.title), escape(i.owner or "—"),
                  escape(i.assignee or "—"), escape(i.connection or "—"), age(i.opened_at, now), due)
    console.print(t)


@incidents_app.command("show")
def show(incident_id: IdArg, workspace: WorkspaceOpt = None, as_json: JsonOpt = False) -> None:
    """One incident in full: its fields and its timeline (every change, note and recurrence)."""
    inc = _with_store(workspace, lambda store, _ws: store.incidents().get(incident_id))
    if inc is None:
        refuse(f"no incident {incident_id}", "see `syncline incidents list --all`")
    now = clock.now()
    if as_json:
        print_json(inc.to_json(now))
        return
    console.print(f"[bold]incident {inc.id}: {escape(inc.title)}[/bold]\n{inc.severity} · {inc.state}"
                  f" · owner {escape(inc.owner or '—')} · assignee {escape(inc.assignee or '—')}"
                  f" · connection {escape(inc.connection or '—')} · opened {age(inc.opened_at, now)}"
                  f" · due {inc.due_at:%Y-%m-%d %H:%M} UTC" + (" (overdue)" if inc.overdue(now) else ""))
    if inc.resolution:
        console.print(f"resolution: {escape(inc.resolution)}")
    for e in inc.timeline:
        console.print(f"  {e.time:%Y-%m-%d %H:%M} {e.kind:<12} {escape(e.by)}"
                      + (f": {escape(e.text)}" if e.text else ""))


@incidents_app.command("open")
def open_(
    connection: Annotated[str | None, typer.Option("--connection", help="The connection it is "
                                                   "about (its owner team owns it).")] = None,
    title: Annotated[str | None, typer.Option("--title", help="What is wrong (required).")] = None,
    severity: Annotated[str, typer.Option("--severity", help="info, warning, error or critical.")] = "error",
    team: Annotated[str | None, typer.Option("--team", help="The owner team (default: the "
                                             "connection's).")] = None,
    workspace: WorkspaceOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Open an incident by hand, due `incidents.due` (21 days) from now."""
    from syncline.alerting.incidents import open_incident

    if not title:
        refuse("an incident needs a title", "pass --title TEXT")
    if severity not in SEVERITIES:
        refuse(f"--severity {severity!r} is not one of {', '.join(SEVERITIES)}", "pass e.g. --severity error")

    def work(store: MetadataStore, ws: Workspace) -> IncidentRecord:
        if connection is not None:
            ws.connection(connection)
        if team is not None and team not in ws.model.teams:
            raise IncidentRefused(f"no team named '{team}' (teams: "
                                  f"{', '.join(sorted(ws.model.teams)) or 'none'})")
        return open_incident(store, ws, title=title or "", severity=severity, by=who(),
                             now=clock.now(), connection=connection, owner=team)[0]

    _said(guarded(lambda: _with_store(workspace, work)), as_json, "opened")


@incidents_app.command("ack")
def ack(incident_id: IdArg, workspace: WorkspaceOpt = None, as_json: JsonOpt = False) -> None:
    """Acknowledge an open incident: someone has it in hand."""
    _said(_change("acknowledge", workspace, incident_id), as_json, "acknowledged")


@incidents_app.command("assign")
def assign(incident_id: IdArg,
           person: Annotated[str, typer.Argument(help="Who takes it (an email address).")],
           workspace: WorkspaceOpt = None, as_json: JsonOpt = False) -> None:
    """Assign an unresolved incident to a person."""
    _said(_change("assign", workspace, incident_id, assignee=person), as_json, f"assigned to {person}")


@incidents_app.command("note")
def note(incident_id: IdArg, text: Annotated[str, typer.Argument(help="The note.")],
         workspace: WorkspaceOpt = None, as_json: JsonOpt = False) -> None:
    """Add a note to an incident's timeline."""
    _said(_change("note", workspace, incident_id, text=text), as_json, "noted")


@incidents_app.command("resolve")
def resolve(
    incident_id: IdArg,
    text: Annotated[str | None, typer.Option("--note", help="What was wrong and what fixed it "
                                             "(required).")] = None,
    workspace: WorkspaceOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Resolve an incident, with a note saying what was wrong and what fixed it."""
    _said(_change("resolve", workspace, incident_id, text=text), as_json, "resolved")


@incidents_app.command("reopen")
def reopen(
    incident_id: IdArg,
    text: Annotated[str | None, typer.Option("--note", help="Why.")] = None,
    workspace: WorkspaceOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Open a resolved incident again (its due date stays)."""
    _said(_change("reopen", workspace, incident_id, text=text), as_json, "reopened")


@incidents_app.command("stats")
def stats(
    team: Annotated[str | None, typer.Option("--team", help="Only this team's.")] = None,
    since: Annotated[str, typer.Option("--since", help="Incidents opened in this window: "
                                       "<N>s|m|h|d.")] = "90d",
    workspace: WorkspaceOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Per owner team, over the incidents opened in the window: how many, open and overdue now,
    time to acknowledge and to resolve (median and p90), and the share resolved within their
    due date (the zero-incident policy) among those resolved or already past it."""
    from syncline.alerting.incidents import incident_stats
    from syncline.alerting.rules import show as shown

    window = duration_option("--since", since)
    now = clock.now()
    with opened(workspace) as (_ws, store):
        rows = incident_stats(store, now - window, now, team)
    if as_json:
        print_json(rows)
        return
    if not rows:
        console.print(f"no incidents opened in the last {since}")
        return

    def took(figure: float | None) -> str:
        return shown(figure, "seconds") if figure is not None else "—"

    t = Table(title=f"Incidents opened in the last {since}, by team")
    for col in ("team", "opened", "open", "overdue", "ack median", "ack p90", "resolve median",
                "resolve p90", "resolved in time"):
        t.add_column(col)
    for r in rows:
        share = r["resolved_within_due"]
        t.add_row(escape(r["team"]), str(r["opened"]), str(r["open"]), str(r["overdue"]),
                  took(r["acknowledge_seconds"]["median"]), took(r["acknowledge_seconds"]["p90"]),
                  took(r["resolve_seconds"]["median"]), took(r["resolve_seconds"]["p90"]),
                  f"{share:.0%}" if share is not None else "—")
    console.print(t)
