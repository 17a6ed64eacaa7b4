"""`syncline check`: reach every source and destination, and plan every connection as `sync`
would (streams, modes, cursors, keys, tables, what the next run does), writing nothing."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Annotated, Any

import typer
from rich.markup import escape
from rich.table import Table

from syncline.cli.common import (
    JsonOpt,
    WorkspaceOpt,
    console,
    err_console,
    guarded,
    print_json,
    workspace_path,
)
from syncline.config import Workspace, load_workspace
from syncline.errors import ConfigurationError, SynclineError


@dataclass
class Outcome:
    kind: str
    name: str
    ok: bool = True
    failure_class: str | None = None
    message: str | None = None
    plan: list[dict[str, Any]] = field(default_factory=list)
    #: the checks left out (offline)
    skipped: list[str] = field(default_factory=list)
    #: the exit code this outcome asks for: 2 a configuration error, 1 unreachable
    code: int = 0

    def to_json(self) -> dict[str, Any]:
        return {"kind": self.kind, "name": self.name, "ok": self.ok,
                "failure_class": self.failure_class, "message": self.message,
                **({"plan": self.plan} if self.kind == "connection" else {}),
                **({"skipped": self.skipped} if self.skipped else {})}


def _targets(ws: Workspace, name: str | None) -> list[tuple[str, str]]:
    if name is None:
        return ([("source", s) for s in ws.sources] + [("destination", d) for d in ws.destinations]
                + [("connection", c) for c in ws.connections])
    if name in ws.connections:
        c = ws.connections[name]
        return [("source", c.source), ("destination", c.destination), ("connection", name)]
    if name in ws.sources:
        return [("source", name)]
    if name in ws.destinations:
        return [("destination", name)]
    raise ConfigurationError(f"nothing named '{name}' in {ws.file.name}",
                             fix="name a source, destination or connection of the workspace")


def _next_run(plan: Any, state: dict[str, Any] | None) -> str:
    if state is None:
        return "first load"
    return "rebuild" if plan.mode == "full_refresh" else "incremental"


def plan_of(ws: Workspace, name: str) -> list[dict[str, Any]]:
    """Plan a connection as `sync` would, writing nothing: one entry per stream that can run.
    Streams `sync` would refuse raise the very error its run would end with."""
    from syncline.engine.endpoints import open_destination, open_source
    from syncline.engine.outcome import streams_failed
    from syncline.engine.preflight import preflight

    conn = ws.connection(name)
    source = open_source(ws, conn.source)
    try:
        destination = open_destination(ws, conn.destination)
        try:
            planned = preflight(name, conn, source, destination)
        finally:
            destination.close()
    finally:
        source.close()
    rows = [{"stream": p.stream.name, "table": p.qualified_table, "mode": p.mode, "write": p.write,
             "cursor": p.cursor, "cursor_nullable": _nullable(p), "primary_key": list(p.primary_key),
             "next_run": _next_run(p, planned.states.get(p.stream.name))} for p in planned.plans]
    if planned.refused:
        raise Refused(streams_failed(planned.refused), rows)
    return rows


class Refused(Exception):
    """Some streams of a connection would be refused: the run's error, and the plan of the
    streams that would run beside them."""

    def __init__(self, error: SynclineError, plan: list[dict[str, Any]]) -> None:
        super().__init__(str(error))
        self.error, self.plan = error, plan


def _nullable(p: Any) -> bool | None:
    """Whether a StreamPlan's cursor column may hold NULL (such rows are read again on every
    merge run); None without a cursor column."""
    col = p.stream.column(p.cursor) if p.cursor else None
    return None if col is None else col.nullable


def offline_plan_of(ws: Workspace, name: str) -> list[dict[str, Any]]:
    """The plan of a connection from the workspace file alone, reaching nothing."""
    from syncline.engine.plan import SourceAbilities
    from syncline.engine.plan_offline import plan_offline
    from syncline.sources.registry import build_source

    conn = ws.connection(name)
    source = build_source(conn.source, ws.sources[conn.source], str(ws.root))  # opens no connection
    plans = plan_offline(name, conn, SourceAbilities.of(source))
    if not plans:
        return [{"stream": "*", "table": "(one per discovered stream)", "mode": None, "write": None,
                 "cursor": None, "primary_key": None, "next_run": "not known offline"}]
    return [{"stream": p.stream, "table": p.table, "mode": p.mode, "write": p.write,
             "cursor": p.cursor, "primary_key": None if p.primary_key is None else list(p.primary_key),
             "next_run": "not known offline"} for p in plans]


#: what `check` does and `check --offline` cannot: it needs the source or destination
SKIPPED_OFFLINE = {
    "source": ["connect and authenticate", "list the streams it may read"],
    "destination": ["connect and authenticate"],
    "connection": ["discover the streams, their columns, keys and cursor candidates",
                   "cursor columns exist and can be ordered", "privileges (with the GRANTs to run)",
                   "loaded tables' write, key and cursor, and their checkpoints",
                   "the source's prerequisites of these reads (late commits, CDC settings)"],
}


def _offline(ws: Workspace, kind: str, item: str) -> Outcome:
    section = "sources" if kind == "source" else "destinations"
    skipped = SKIPPED_OFFLINE[kind]
    try:
        if kind == "connection":
            return Outcome(kind, item, plan=offline_plan_of(ws, item), skipped=skipped)
    except SynclineError as exc:
        exc.at(connection=item)
        return Outcome(kind, item, ok=False, failure_class=exc.failure_class, message=str(exc), code=2,
                       skipped=skipped)
    unset = [n for _, n in ws.unset_env.get((section, item), ())]
    return Outcome(kind, item, message=("not reached (offline); needs " + ", ".join(unset) + " at run time")
                   if unset else "not reached (offline)", skipped=skipped)


def _outcome(ws: Workspace, kind: str, item: str, offline: bool = False) -> Outcome:
    from syncline.engine.endpoints import open_destination, open_source

    if offline:
        return _offline(ws, kind, item)
    try:
        if kind == "connection":
            try:
                return Outcome(kind, item, plan=plan_of(ws, item))
            except Refused as refused:
                exc = refused.error.at(connection=item)
                return Outcome(kind, item, ok=False, failure_class=exc.failure_class, message=str(exc),
                               plan=refused.plan, code=2 if isinstance(exc, ConfigurationError) else 1)
        obj = open_source(ws, item) if kind == "source" else open_destination(ws, item)
        try:
            obj.check()
        finally:
            obj.close()
        return Outcome(kind, item)
    except SynclineError as exc:
        if kind == "connection":
            exc.at(connection=item)  # as a run of it says
        return Outcome(kind, item, ok=False, failure_class=exc.failure_class, message=str(exc),
                       code=2 if isinstance(exc, ConfigurationError) else 1)


def _plan_table(name: str, plan: list[dict[str, Any]]) -> Table:
    t = Table(title=f"plan of {name}")
    for col in ("stream", "mode", "write", "cursor", "key", "table", "next run"):
        t.add_column(col, overflow="fold")
    for p in plan:
        key = "(at discovery)" if p["primary_key"] is None else ", ".join(p["primary_key"]) or "—"
        t.add_row(p["stream"], p["mode"] or "(at discovery)", p["write"] or "(at discovery)",
                  (p["cursor"] or "—") + (" (may be NULL)" if p.get("cursor_nullable") else ""),
                  key, p["table"], p["next_run"])
    return t


def check(
    name: Annotated[str | None, typer.Argument(help="A source, destination or connection.")] = None,
    workspace: WorkspaceOpt = None,
    as_json: JsonOpt = False,
    offline: Annotated[bool, typer.Option(
        "--offline", help="Validate the file and plan from it alone, reaching no source or "
        "destination (for CI): what only discovery knows is shown as '(at discovery)'.")] = False,
) -> None:
    """Validate the workspace, reach its sources and destinations and plan its connections;
    exit 2 on a configuration error, 1 when something cannot be reached."""
    ws = guarded(lambda: load_workspace(workspace_path(workspace)))
    targets = guarded(lambda: _targets(ws, name))
    outcomes = [_outcome(ws, kind, item, offline) for kind, item in targets]
    worst = max((o.code for o in outcomes), default=0)
    if as_json:
        print_json([o.to_json() for o in outcomes])
        raise typer.Exit(worst)
    table = Table(title=f"check {ws.file}")
    for col in ("kind", "name", "result"):
        table.add_column(col)
    for o in outcomes:
        if not o.ok:
            result = f"[red]{o.failure_class}:[/] {escape(o.message or '')}"
        elif o.kind == "connection":
            result = "[green]ok[/] (" + (", ".join(f"{p['stream']} → {p['table']}" for p in o.plan)
                                         or "no streams") + ")"
        else:
            result = "[green]ok[/]" + (f" ({escape(o.message)})" if o.message else "")
        table.add_row(o.kind, o.name, result)
    console.print(table)
    for o in outcomes:
        if o.plan:  # beside a refusal, the streams that would run
            console.print(_plan_table(o.name, o.plan))
    if offline:
        console.print("skipped offline, checked by `syncline check` where the databases are:")
        for kind, checks in SKIPPED_OFFLINE.items():
            console.print(f"  {kind}s: " + "; ".join(checks))
    if worst:
        err_console.print("[red]check failed[/]: see the results above")
    raise typer.Exit(worst)
