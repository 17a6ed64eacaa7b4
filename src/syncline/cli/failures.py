"""`syncline failures`: failures grouped by root cause, the widest first."""

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
    duration_option,
    guarded,
    print_json,
    store_of,
    workspace_path,
)
from syncline.cli.views import age
from syncline.config import load_workspace
from syncline.monitoring.failure_groups import collect


def failures(
    workspace: WorkspaceOpt = None,
    since: Annotated[str, typer.Option("--since", help="How far back: <N>s|m|h|d.")] = "7d",
    as_json: JsonOpt = False,
) -> None:
    """Failures grouped by root cause, like Sentry issues: one line for one cause however many
    connections and runs it failed, the groups touching most connections first, each with
    when it was first and last seen, how often, the connections affected, a sample run and
    the fix its error carries."""
    window = duration_option("--since", since)
    ws = guarded(lambda: load_workspace(workspace_path(workspace)))
    store = guarded(lambda: store_of(ws))
    now = clock.now()
    try:
        groups = guarded(lambda: collect(store, now - window))
    finally:
        store.close()
    if as_json:
        print_json([g.to_json() for g in groups])
        return
    if not groups:
        console.print(f"no failures in the last {since}")
        return
    t = Table(title=f"Failures in the last {since}, by root cause")
    for col in ("group", "connections", "runs", "first", "last", "where", "what (sample run)", "fix"):
        t.add_column(col, overflow="fold")
    for g in groups:
        sig = g.signature
        shown = ", ".join(sorted(g.connections)[:5]) + (f" +{len(g.connections) - 5}" if len(g.connections) > 5 else "")
        t.add_row(sig.key[:8], f"{len(g.connections)}: {escape(shown)}", str(g.count),
                  age(g.first_seen, now), age(g.last_seen, now),
                  f"{sig.origin} · {sig.failure_class} · {escape(sig.error_type)}",
                  f"{escape(g.sample)} (run {g.sample_run})",
                  escape(g.fix or "") + f"\nrunbook: syncline runbook failure-{sig.failure_class}")
    console.print(t)
