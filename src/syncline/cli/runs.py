"""`syncline runs`: the run history (`runs list [CONNECTION]`, or `runs CONNECTION`) and one
run in full (`runs show RUN_ID`)."""

from __future__ import annotations

from typing import Annotated

import typer

from syncline.cli import views
from syncline.cli.common import (
    HELP,
    JsonOpt,
    ListByDefault,
    WorkspaceOpt,
    console,
    guarded,
    print_json,
    refuse,
    store_of,
    workspace_path,
)
from syncline.config import load_workspace

runs_app = typer.Typer(context_settings=HELP, name="runs", cls=ListByDefault,
                       help="Run history: `runs list [CONNECTION]`, `runs show RUN_ID`.")


@runs_app.command("list")
def list_runs(
    connection: Annotated[str | None, typer.Argument(help="Only this connection's runs.")] = None,
    workspace: WorkspaceOpt = None,
    limit: Annotated[int, typer.Option("--limit", "-n", min=0, help="How many runs, newest first.")] = 20,
    as_json: JsonOpt = False,
) -> None:
    """Runs newest first: status, attempts, rows and the whole failure text."""
    ws = guarded(lambda: load_workspace(workspace_path(workspace)))
    if connection is not None:
        guarded(lambda: ws.connection(connection))
    store = guarded(lambda: store_of(ws))
    try:
        store.reap_stale_runs()
        rows = views.runs_data(store, connection, limit)
    finally:
        store.close()
    if as_json:
        print_json(rows)
    else:
        console.print(views.runs_table(connection, rows))


@runs_app.command("show")
def show_run(
    run_id: Annotated[int, typer.Argument(help="A run number, as `runs list` shows it.")],
    workspace: WorkspaceOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """One run in full: totals, every stream, and every attempt with its failure."""
    ws = guarded(lambda: load_workspace(workspace_path(workspace)))
    store = guarded(lambda: store_of(ws))
    try:
        store.reap_stale_runs()
        found = views.run_data(store, run_id)
    finally:
        store.close()
    if found is None:
        refuse(f"no run {run_id} in this workspace", "see `syncline runs list` for the run numbers")
    if as_json:
        print_json(found)
    else:
        console.print(views.run_detail(found))

