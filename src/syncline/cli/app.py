"""The `syncline` command line: exit 0 on success, 1 when a run or check fails, 2 on bad usage."""

from __future__ import annotations

import datetime as dt
import json
import sys
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from syncline.cli import views
from syncline.config import Workspace, find_workspace, load_workspace
from syncline.errors import ConfigurationError, SynclineError

app = typer.Typer(
    name="syncline",
    help="Replicate databases, APIs and files into a warehouse: complete, correct and fresh.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
# Piped output keeps whole lines rather than folding tables at 80 columns.
console = Console(highlight=False, width=None if sys.stdout.isatty() else 150)
err_console = Console(stderr=True, highlight=False, width=None if sys.stderr.isatty() else 150)

WorkspaceOpt = Annotated[
    Path | None,
    typer.Option("--workspace", "-w", envvar="SYNCLINE_WORKSPACE",
                 help="Workspace folder (default: the current folder)."),
]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print machine-readable JSON.")]

T = TypeVar("T")


def guarded(fn: Callable[[], T]) -> T:
    """Turn Syncline errors into a clear message and the documented exit code."""
    try:
        return fn()
    except ConfigurationError as exc:
        err_console.print(f"[red]configuration error:[/] {escape(str(exc))}")
        raise typer.Exit(2) from None
    except SynclineError as exc:
        err_console.print(f"[red]{exc.failure_class} error:[/] {escape(str(exc))}")
        raise typer.Exit(1) from None


def _store(ws: Workspace) -> Any:
    from syncline.store.store import MetadataStore

    return MetadataStore(ws.metadata_url())


def _print_json(data: Any) -> None:
    sys.stdout.write(json.dumps(data, indent=2, default=str) + "\n")


@app.command()
def init(
    workspace: WorkspaceOpt = None,
    demo: Annotated[bool, typer.Option("--demo", help="Write the demo workspace and its sample data.")] = False,
) -> None:
    """Create a workspace file (syncline.yaml) in the workspace folder."""
    from syncline.demo.workspace import write_workspace

    root = find_workspace(workspace)

    def run() -> None:
        file = write_workspace(root, demo=demo)
        if demo:
            from syncline.demo.shop import generate_shop

            with console.status("generating the sample shop database"):
                stats = generate_shop(root / "data" / "shop.db")
            console.print(f"sample shop: {', '.join(f'{k} {v:,}' for k, v in stats.rows.items())}")
        console.print(f"[green]wrote[/] {file}")

    guarded(run)


@app.command()
def check(
    name: Annotated[str | None, typer.Argument(help="A source, destination or connection.")] = None,
    workspace: WorkspaceOpt = None,
) -> None:
    """Validate the workspace and test that sources and destinations can be reached."""
    from syncline.engine.run import open_destination, open_source

    ws = guarded(lambda: load_workspace(workspace))
    targets: list[tuple[str, str]] = []
    if name is None:
        targets = [("source", s) for s in ws.sources] + [("destination", d) for d in ws.destinations]
        targets += [("connection", c) for c in ws.connections]
    elif name in ws.connections:
        c = ws.connections[name]
        targets = [("source", c.source), ("destination", c.destination), ("connection", name)]
    elif name in ws.sources:
        targets = [("source", name)]
    elif name in ws.destinations:
        targets = [("destination", name)]
    else:
        err_console.print(f"[red]configuration error:[/] nothing named '{name}' in {ws.file.name}\n"
                          "  fix: name a source, destination or connection of the workspace")
        raise typer.Exit(2)
    table = Table(title=f"check {ws.file}")
    for col in ("kind", "name", "result"):
        table.add_column(col)
    worst = 0
    for kind, item in targets:
        try:
            if kind == "connection":
                table.add_row(kind, item, f"[green]ok[/] ({_check_plan(ws, item)})")
                continue
            obj = open_source(ws, item) if kind == "source" else open_destination(ws, item)
            try:
                obj.check()
            finally:
                obj.close()
            table.add_row(kind, item, "[green]ok[/]")
        except SynclineError as exc:
            worst = max(worst, 2 if isinstance(exc, ConfigurationError) else 1)
            table.add_row(kind, item, f"[red]{exc.failure_class}:[/] {escape(str(exc))}")
    console.print(table)
    if worst:
        raise typer.Exit(worst)


def _check_plan(ws: Workspace, name: str) -> str:
    """Plan a connection as `sync` would, writing nothing: its streams and their tables."""
    from syncline.engine.plan import plan_streams
    from syncline.engine.run import open_destination, open_source

    conn = ws.connection(name)
    source = open_source(ws, conn.source)
    try:
        destination = open_destination(ws, conn.destination)
        try:
            plans = plan_streams(name, conn, source, destination)
        finally:
            destination.close()
    finally:
        source.close()
    return ", ".join(f"{p.stream.name} → {p.table}" for p in plans) or "no streams"


@app.command()
def discover(
    source: Annotated[str, typer.Argument(help="Name of a source in the workspace.")],
    workspace: WorkspaceOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """List the streams of a source with their columns, types, keys and cursor candidates."""
    from syncline.engine.run import open_source

    def run() -> list[Any]:
        ws = load_workspace(workspace)
        src = open_source(ws, source)
        try:
            src.check()
            return src.discover()
        finally:
            src.close()

    streams = guarded(run)
    if as_json:
        _print_json([s.to_json() | {"notes": list(s.notes)} for s in streams])
        return
    for s in streams:
        t = Table(title=f"{s.name}  key: {', '.join(s.primary_key) or '—'}  "
                        f"cursor candidates: {', '.join(s.cursor_candidates) or '—'}")
        for col in ("column", "type", "nullable", "native type"):
            t.add_column(col)
        for c in s.columns:
            t.add_row(c.name, str(c.type), "yes" if c.nullable else "no", c.native_type or "")
        console.print(t)
        for note in s.notes:
            console.print(f"  [yellow]note:[/] {note}")


def run_sync(ws: Workspace, connection: str, streams: list[str] | None, full_refresh: bool,
             trigger: str = "manual", allow_empty: bool = False) -> int:
    from syncline.cli.progress import RichObserver
    from syncline.engine.run import Runner

    store = _store(ws)
    try:
        with RichObserver(console) as observer:
            result = Runner(ws, store, observer).sync(
                connection, streams=streams, full_refresh=full_refresh, trigger=trigger,
                allow_empty=allow_empty,
            )
    finally:
        store.close()
    console.print(views.stream_summary_table(result))
    if result.error is not None:
        label = "configuration error" if isinstance(result.error, ConfigurationError) else \
            f"{result.error.failure_class} error"
        err_console.print(f"[red]run {result.run_id} failed after {result.attempts} attempt(s): "
                          f"{label}:[/] {escape(str(result.error))}")
        return 2 if isinstance(result.error, ConfigurationError) else 1
    console.print(
        f"[green]run {result.run_id} succeeded:[/] {result.rows_committed:,} rows committed, "
        f"{result.rows_quarantined:,} quarantined"
    )
    return 0


FULL_REFRESH_HELP = (
    "Re-read everything into a table built beside the old one, swapped in at the end. Under "
    "write: merge, rows missing from the source are kept with _syncline_deleted = true; only "
    "write: replace removes them."
)
ALLOW_EMPTY_HELP = (
    "Let a full refresh replace a table with 0 rows, or with fewer than (1 - max_shrink) of its "
    "rows; without it such a refresh fails and keeps the table."
)


@app.command()
def sync(
    connection: Annotated[str, typer.Argument(help="Name of a connection in the workspace.")],
    workspace: WorkspaceOpt = None,
    stream: Annotated[list[str] | None, typer.Option("--stream", "-s", help="Only this stream (repeatable).")] = None,
    full_refresh: Annotated[bool, typer.Option("--full-refresh", help=FULL_REFRESH_HELP)] = False,
    allow_empty: Annotated[bool, typer.Option("--allow-empty", help=ALLOW_EMPTY_HELP)] = False,
) -> None:
    """Run a connection now, with a live progress bar per stream."""
    ws = guarded(lambda: load_workspace(workspace))
    code = guarded(lambda: run_sync(ws, connection, stream or None, full_refresh,
                                    allow_empty=allow_empty))
    raise typer.Exit(code)


@app.command()
def status(workspace: WorkspaceOpt = None, as_json: JsonOpt = False) -> None:
    """Health, last run, rows and freshness of every connection."""
    ws = guarded(lambda: load_workspace(workspace))
    now = dt.datetime.now(dt.UTC)
    store = guarded(lambda: _store(ws))
    try:
        store.reap_stale_runs()  # a process that is gone is never shown as running
        rows = views.connection_status(ws, store, now)
    finally:
        store.close()
    if as_json:
        _print_json(rows)
    else:
        console.print(views.status_table(rows, now))


@app.command()
def runs(
    connection: Annotated[str, typer.Argument(help="Name of a connection in the workspace.")],
    workspace: WorkspaceOpt = None,
    limit: Annotated[int, typer.Option("--limit", "-n", help="How many runs, newest first.")] = 20,
    as_json: JsonOpt = False,
) -> None:
    """Run history of a connection: status, attempts, rows and failures."""
    ws = guarded(lambda: load_workspace(workspace))
    guarded(lambda: ws.connection(connection))
    store = guarded(lambda: _store(ws))
    try:
        store.reap_stale_runs()
        rows = views.runs_data(store, connection, limit)
    finally:
        store.close()
    if as_json:
        _print_json(rows)
    else:
        console.print(views.runs_table(connection, rows))


@app.command()
def state(
    connection: Annotated[str, typer.Argument(help="Name of a connection in the workspace.")],
    workspace: WorkspaceOpt = None,
    reset: Annotated[str | None, typer.Option("--reset", help="Forget this stream's checkpoint.")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Show the checkpoints of a connection (as committed in the destination), or reset one."""
    from syncline.engine.run import open_destination

    ws = guarded(lambda: load_workspace(workspace))
    conn = guarded(lambda: ws.connection(connection))
    schema = conn.destination_schema or connection
    dest = guarded(lambda: open_destination(ws, conn.destination))
    try:
        if reset is not None:
            existed = guarded(lambda: dest.reset_state(schema, reset))
            store = _store(ws)
            store.mirror_checkpoint(connection, reset, None)
            store.close()
            if not existed:
                err_console.print(f"[yellow]no checkpoint for stream '{reset}' of {connection}[/]")
                raise typer.Exit(2)
            console.print(f"[green]reset[/] {connection}/{reset}: the next sync reads it from the start")
            return
        states = guarded(lambda: dest.all_states(schema))
    finally:
        dest.close()
    if as_json:
        _print_json(states)
        return
    t = Table(title=f"checkpoints of {connection} (in {conn.destination}.{schema})")
    for col in ("stream", "mode", "phase", "position", "updated"):
        t.add_column(col)
    for stream_name, st in sorted(states.items()):
        t.add_row(stream_name, str(st.get("mode", "?")), str(st.get("phase", "corrupt")),
                  json.dumps(st.get("source"), default=str)[:80], str(st.get("updated_at", ""))[:19])
    console.print(t)


@app.command()
def verify(
    connection: Annotated[str, typer.Argument(help="Name of a connection in the workspace.")],
    workspace: WorkspaceOpt = None,
    stream: Annotated[list[str] | None, typer.Option("--stream", "-s", help="Only this stream (repeatable).")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Reconcile source and destination: counts, keys and content hashes; exit 1 on a mismatch."""
    from syncline.engine.verify import verify_connection

    ws = guarded(lambda: load_workspace(workspace))
    verdicts = guarded(lambda: verify_connection(ws, connection, stream or None))
    if as_json:
        _print_json([v.to_json() for v in verdicts])
    else:
        console.print(views.verify_table(connection, verdicts))
        for v in verdicts:
            for kind in ("missing", "extra", "different", "duplicated"):
                sample = getattr(v, kind)
                if sample:
                    keys = "; ".join(", ".join(map(str, k)) for k in sample)
                    console.print(f"  {v.stream}: {kind} keys (sample): {keys}")
            if v.not_in_source:
                console.print(f"  [yellow]note:[/] {v.stream}: destination column(s) the source no "
                              f"longer has (not compared): {', '.join(v.not_in_source)}")
            if v.note:
                console.print(f"  [yellow]note:[/] {v.stream}: {v.note}")
    if not all(v.ok for v in verdicts):
        raise typer.Exit(1)


@app.command("test-connector")
def test_connector(
    source: Annotated[str, typer.Argument(help="Name of a source in the workspace.")],
    workspace: WorkspaceOpt = None,
    stream: Annotated[str | None, typer.Option("--stream", "-s", help="Only this stream.")] = None,
    batch_size: Annotated[int, typer.Option("--batch-size", help="Rows per batch while testing.")] = 1000,
    as_json: JsonOpt = False,
) -> None:
    """Run the connector test kit on a source: config, check, discover, reads, resume."""
    import dataclasses

    from syncline.testkit import exit_status, format_results, run_checks

    ws = guarded(lambda: load_workspace(workspace))
    guarded(lambda: ws.source(source))
    results = guarded(lambda: run_checks(ws, source, stream=stream, batch_size=batch_size))
    if as_json:
        _print_json([dataclasses.asdict(r) for r in results])
    else:
        console.print(format_results(results), markup=False)
    raise typer.Exit(exit_status(results))


@app.command()
def demo(
    workspace: Annotated[Path, typer.Option("--workspace", "-w", envvar="SYNCLINE_WORKSPACE",
                                            help="Demo workspace folder.")] = Path("syncline-demo"),
    orders: Annotated[int, typer.Option(help="Orders in the sample shop (first run only).")] = 100_000,
) -> None:
    """Create (or update) the demo workspace, sync it into DuckDB and print the status."""
    from syncline.demo.shop import generate_shop, update_shop
    from syncline.demo.workspace import write_workspace

    root = workspace.expanduser().resolve()
    shop = root / "data" / "shop.db"

    def prepare() -> None:
        if not (root / "syncline.yaml").exists():
            write_workspace(root, demo=True)
        if shop.exists():
            with console.status("simulating a day of shop activity"):
                update_shop(shop, seed=int(dt.datetime.now(dt.UTC).timestamp()))
        else:
            with console.status(f"generating the sample shop database ({orders:,} orders)"):
                generate_shop(shop, orders=orders)
        console.print(f"demo workspace: {root}")

    guarded(prepare)
    ws = guarded(lambda: load_workspace(root))
    worst = 0
    for name in ws.connections:
        worst = max(worst, guarded(partial(run_sync, ws, name, None, False, trigger="demo")))
    status(workspace=root, as_json=False)
    query = "SELECT status, count(*) FROM shop.orders GROUP BY 1"
    console.print(
        f"query it: python -c \"import duckdb; print(duckdb.connect('{root / 'warehouse.duckdb'}')"
        f".sql('{query}'))\"", soft_wrap=True,
    )
    raise typer.Exit(worst)


def main() -> None:
    app()
