"""The `syncline` command line: exit 0 on success, 1 when a run or check fails, 2 on bad usage."""

from __future__ import annotations

import dataclasses
import datetime as dt
import io
import json
import shlex
import sys
from contextlib import AbstractContextManager, nullcontext, redirect_stdout
from functools import partial
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape
from rich.table import Table

from syncline import clock
from syncline.cli import views
from syncline.cli.alerts import alerts_app
from syncline.cli.apply import apply
from syncline.cli.check import check
from syncline.cli.common import (
    HELP,
    Commands,
    JsonOpt,
    WorkspaceOpt,
    console,
    err_console,
    guarded,
    json_mode,
    print_json,
    refuse,
    set_global_workspace,
    store_of,
    workspace_path,
)
from syncline.cli.digest import digest
from syncline.cli.events import events
from syncline.cli.failures import failures
from syncline.cli.incidents import incidents_app
from syncline.cli.logs import logs
from syncline.cli.metrics import metrics_app
from syncline.cli.notifications import notifications_app
from syncline.cli.oncall import oncall
from syncline.cli.runbook import runbook
from syncline.cli.runs import runs_app
from syncline.cli.schema_file import schema_file
from syncline.cli.service import cancel, pause, queue, resume, trigger, workers
from syncline.cli.silences import silence_app
from syncline.cli.state import state
from syncline.cli.store import store_app
from syncline.cli.up import scheduler, up, worker
from syncline.config import Workspace, find_workspace, load_workspace
from syncline.errors import ConfigurationError, RepeatedKeys
from syncline.schema import StreamSchema

app = typer.Typer(
    context_settings=HELP,
    cls=Commands,
    name="syncline",
    help="Replicate databases, APIs and files into a warehouse: complete, correct and fresh.\n\n"
    "Exit codes: 0 success, 1 a run, check or verify failed, 2 bad usage or configuration.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
app.add_typer(runs_app)
app.add_typer(store_app)
app.add_typer(metrics_app)
app.add_typer(notifications_app)
app.add_typer(alerts_app)
app.add_typer(silence_app)
app.add_typer(incidents_app)
app.command()(check)
app.command()(apply)
app.command()(up)
app.command()(scheduler)
app.command()(worker)
app.command()(events)
app.command()(logs)
app.command()(failures)
app.command()(digest)
app.command()(runbook)
app.command()(state)
app.command()(oncall)
for command in (trigger, pause, resume, cancel, queue, workers):
    app.command()(command)
app.command("schema-file")(schema_file)


def _version(show: bool) -> None:
    if show:
        from importlib.metadata import version

        console.print(f"syncline {version('syncline')}")
        raise typer.Exit(0)


@app.callback()
def _options(
    workspace: WorkspaceOpt = None,
    _show_version: Annotated[bool, typer.Option("--version", callback=_version, is_eager=True,
                                                help="Print the version and exit.")] = False,
) -> None:
    """Replicate databases, APIs and files into a warehouse: complete, correct and fresh."""
    set_global_workspace(workspace)


@app.command()
def init(
    workspace: WorkspaceOpt = None,
    demo: Annotated[bool, typer.Option("--demo", help="Write the demo workspace and its sample data.")] = False,
    as_json: JsonOpt = False,
) -> None:
    """Create a workspace file (syncline.yaml) in the workspace folder."""
    from syncline.demo.workspace import write_workspace

    root = find_workspace(workspace_path(workspace))

    def run() -> dict[str, Any]:
        file = write_workspace(root, demo=demo)
        rows: dict[str, int] = {}
        if demo:
            from syncline.demo.shop import generate_shop

            with console.status("generating the sample shop database") if not as_json else nullcontext():
                rows = dict(generate_shop(root / "data" / "shop.db").rows)
            if not as_json:
                console.print(f"sample shop: {', '.join(f'{k} {v:,}' for k, v in rows.items())}")
        if not as_json:
            console.print(f"[green]wrote[/] {file}")
        return {"workspace": str(root), "file": str(file), "sample_rows": rows}

    done = guarded(run)
    if as_json:
        print_json(done)


@app.command()
def discover(
    source: Annotated[str, typer.Argument(help="Name of a source in the workspace.")],
    workspace: WorkspaceOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """List the streams of a source with their columns, types, keys and cursor candidates."""
    from syncline.engine.endpoints import open_source

    def run() -> list[Any]:
        ws = load_workspace(workspace_path(workspace))
        src = open_source(ws, source)
        try:
            src.check()
            return _with_refusal(src.discover(), src.late_commits_refusal())
        finally:
            src.close()

    streams = guarded(run)
    if as_json:
        print_json([s.to_json() | {"notes": list(s.notes)} for s in streams])
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
            console.print(f"  [yellow]note:[/] {escape(note)}")


def _with_refusal(streams: list[StreamSchema], refused: tuple[str, str] | None) -> list[StreamSchema]:
    """A note on each stream a date or time cursor could read incrementally, when the source
    refuses such reads (a missing privilege), with the fix."""
    if refused is None:
        return streams
    from syncline.sources.late_commits import TEMPORAL

    note = f"incremental reads by a date or time cursor are refused: {refused[0]}; fix: {refused[1]}"
    return [dataclasses.replace(s, notes=(*s.notes, note))
            if any((c := s.column(n)) is not None and c.type.kind in TEMPORAL
                   for n in s.cursor_candidates) else s for s in streams]


def run_sync(ws: Workspace, connection: str, streams: list[str] | None, full_refresh: bool,
             trigger: str = "manual", allow_empty: bool = False, as_json: bool = False,
             since: str | None = None) -> int:
    """Run a connection: progress bars and a summary, or (with `as_json`) the run record as
    `runs show --json` prints it. Returns the exit code."""
    from syncline.cli.progress import RichObserver
    from syncline.engine.observer import RunObserver
    from syncline.engine.run import Runner
    from syncline.engine.watch import StopRequest
    from syncline.orchestration.apply import apply_file, revision_workspace
    from syncline.orchestration.inline import inline_run
    from syncline.orchestration.queue import RunRequest

    # From here SIGTERM or Ctrl-C stops the run cleanly (rolled back to the last commit), also
    # one given before the run began; a second signal kills.
    with StopRequest() as stop:
        store = store_of(ws)
        try:
            _plan, revision = apply_file(ws, store)  # the file as a revision; the run records it
            ws = revision_workspace(ws, revision)
            ws.connection(connection)  # an unknown name: no queue entry, no worker
            watching: AbstractContextManager[RunObserver] = (
                nullcontext(RunObserver()) if as_json else RichObserver(console))
            request = RunRequest(connection, "manual", full_refresh, tuple(streams or ()),
                                 region=ws.region(connection))
            with watching as observer, inline_run(store, request) as held:
                result = Runner(ws, store, held.observer(observer), revision=revision.number,
                                stop=stop.event).sync(
                    connection, streams=streams, full_refresh=full_refresh, trigger=trigger,
                    allow_empty=allow_empty, since=since,
                )
                held.note = f"run {result.run_id} {result.status}"
            record = views.run_data(store, result.run_id) if as_json else None
        finally:
            store.close()
    code = 0 if result.error is None else 2 if isinstance(result.error, ConfigurationError) else 1
    if result.status == "interrupted" and stop.signum is not None:
        code = 128 + stop.signum  # as a shell reports a command a signal stopped: 130 for Ctrl-C
    if record is not None:
        print_json(record)
        return code
    if result.streams:  # a run that failed before reading anything shows just its error
        console.print(views.stream_summary_table(result))
    if result.error is not None:
        label = "configuration error" if isinstance(result.error, ConfigurationError) else \
            f"{result.error.failure_class} error"
        err_console.print(f"[red]run {result.run_id} {result.status} after {result.attempts} "
                          f"attempt(s): {label}:[/] {escape(str(result.error))}")
        if isinstance(result.error, RepeatedKeys) and result.error.samples:  # shown, never stored
            err_console.print("  repeated key values: " + escape("; ".join(
                ", ".join(str(v) for v in sample) for sample in result.error.samples)))
        return code
    warned = result.status == "warning"
    console.print(
        f"[{'yellow' if warned else 'green'}]run {result.run_id} {result.status}:[/] "
        f"{result.rows_committed:,} rows committed, {result.rows_quarantined:,} quarantined"
        + (" (see the warnings above)" if warned else "")
    )
    return 0


FULL_REFRESH_HELP = (
    "Re-read everything into a table built beside the old one, swapped in at the end. Under "
    "write: merge, rows missing from the source are kept with _syncline_deleted = true; only "
    "write: replace removes them; under write: history the re-read is applied to the versions "
    "(changed rows get a new one, missing keys are closed as deleted)."
)
SINCE_HELP = (
    "Re-read the one --stream from this cursor value (rows with cursor >= VALUE), without a full "
    "refresh; the merge makes rows already loaded harmless. Incremental streams of PostgreSQL, "
    "MySQL and SQLite sources under write: merge or history."
)
ALLOW_EMPTY_HELP = (
    "Let a full refresh replace a table with 0 rows, or with fewer than (1 - max_shrink) of its "
    "rows; without it such a refresh fails and keeps the table."
)


@app.command()
def sync(
    connection: Annotated[str, typer.Argument(help="Name of a connection in the workspace.")],
    workspace: WorkspaceOpt = None,
    stream: Annotated[list[str] | None, typer.Option("--stream", "-s", metavar="STREAM", help="Only this stream (repeatable).")] = None,
    full_refresh: Annotated[bool, typer.Option("--full-refresh", help=FULL_REFRESH_HELP)] = False,
    allow_empty: Annotated[bool, typer.Option("--allow-empty", help=ALLOW_EMPTY_HELP)] = False,
    since: Annotated[str | None, typer.Option("--since", metavar="VALUE", help=SINCE_HELP)] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the run record as JSON, no progress "
                                          "(errors too).", callback=json_mode)] = False,
) -> None:
    """Run a connection now, with a live progress bar per stream; exit 1 when the run fails."""
    if since is not None and (len(stream or []) != 1 or full_refresh):
        refuse("--since re-reads one stream from a cursor value",
               "name exactly one stream with --stream, and leave out --full-refresh")
    ws = guarded(lambda: load_workspace(workspace_path(workspace)))
    code = guarded(lambda: run_sync(ws, connection, stream or None, full_refresh,
                                    allow_empty=allow_empty, as_json=as_json, since=since))
    raise typer.Exit(code)


@app.command()
def status(workspace: WorkspaceOpt = None, as_json: JsonOpt = False) -> None:
    """Health, last run, rows and freshness of every connection; exit 1 when any is failing
    or late (its last success older than its freshness_sla), so it serves as a health check."""
    ws = guarded(lambda: load_workspace(workspace_path(workspace)))
    now = guarded(clock.now)
    store = guarded(lambda: store_of(ws))
    try:
        store.reap_stale_runs()  # a process that is gone is never shown as running
        rows = views.connection_status(ws, store, now)
    finally:
        store.close()
    if as_json:
        print_json(rows)
    else:
        console.print(views.status_table(rows, now))
    if any(r["health"] in ("failing", "late") for r in rows):
        raise typer.Exit(1)


@app.command()
def verify(
    connection: Annotated[str, typer.Argument(help="Name of a connection in the workspace.")],
    workspace: WorkspaceOpt = None,
    stream: Annotated[list[str] | None, typer.Option("--stream", "-s", metavar="STREAM", help="Only this stream (repeatable).")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Reconcile source and destination: counts, keys and content hashes; exit 1 on a mismatch."""
    from syncline.engine.verify import verify_connection

    ws = guarded(lambda: load_workspace(workspace_path(workspace)))
    verdicts = guarded(lambda: verify_connection(ws, connection, stream or None))
    if as_json:
        print_json([v.to_json() for v in verdicts])
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

    ws = guarded(lambda: load_workspace(workspace_path(workspace)))
    guarded(lambda: ws.source(source))
    results = guarded(lambda: run_checks(ws, source, stream=stream, batch_size=batch_size))
    if as_json:
        print_json([dataclasses.asdict(r) for r in results])
    else:
        console.print(format_results(results), markup=False)
    raise typer.Exit(exit_status(results))


@app.command()
def demo(
    workspace: Annotated[Path | None, typer.Option(
        "--workspace", "-w", help="Demo workspace folder (default: ./syncline-demo).")] = None,
    orders: Annotated[int, typer.Option(help="Orders in the sample shop (first run only).")] = 100_000,
    as_json: JsonOpt = False,
) -> None:
    """Create (or update) the demo workspace, sync it into DuckDB and print the status (with
    --json: one document of the workspace, each run's record and how to go on)."""
    from syncline.demo.shop import generate_shop, update_shop
    from syncline.demo.workspace import write_workspace

    root = (workspace_path(workspace, Path("syncline-demo")) or Path()).expanduser().resolve()
    shop = root / "data" / "shop.db"

    def prepare() -> None:
        quiet = as_json
        if not (root / "syncline.yaml").exists():
            write_workspace(root, demo=True)
        if shop.exists():
            with nullcontext() if quiet else console.status("simulating a day of shop activity"):
                update_shop(shop, seed=int(dt.datetime.now(dt.UTC).timestamp()))
        else:
            with nullcontext() if quiet else console.status(
                    f"generating the sample shop database ({orders:,} orders)"):
                generate_shop(shop, orders=orders)
        if not quiet:
            console.print(f"demo workspace: {root}")

    guarded(prepare)
    ws = guarded(lambda: load_workspace(root))
    worst = 0
    up = f"{shlex.quote(sys.executable)} -m syncline up -w {shlex.quote(str(root))}"
    if as_json:
        runs = []
        for name in ws.connections:
            with redirect_stdout(io.StringIO()) as record:
                worst = max(worst, guarded(partial(run_sync, ws, name, None, False, trigger="demo",
                                                   as_json=True)))
            runs.append(json.loads(record.getvalue()))
        store = store_of(ws)
        try:
            health = views.connection_status(ws, store, clock.now())
        finally:
            store.close()
        print_json({"workspace": str(root), "warehouse": str(root / "warehouse.duckdb"), "runs": runs,
                    "status": health, "up": up})
        raise typer.Exit(worst)
    for name in ws.connections:
        worst = max(worst, guarded(partial(run_sync, ws, name, None, False, trigger="demo")))
    try:
        status(workspace=root, as_json=False)
    except typer.Exit:  # a failing connection is already in `worst`
        pass
    query = "SELECT status, count(*) FROM shop.orders GROUP BY 1"
    console.print(
        f"query it: {shlex.quote(sys.executable)} -c \"import duckdb; print(duckdb.connect('{root / 'warehouse.duckdb'}')"
        f".sql('{query}'))\"", soft_wrap=True,
    )
    console.print(
        f"run it unattended (every connection on its schedule, status on http://127.0.0.1:8765/api/v1/status):"
        f" {up}   (Ctrl-C stops it cleanly)", soft_wrap=True)
    console.print(
        f"be told when a connection fails: `syncline alerts -w {shlex.quote(str(root))}` lists the "
        "rules, `syncline digest` the failing connections; add `channels:` (webhook, Slack, email) "
        "as docs/alerts.md shows", soft_wrap=True)
    raise typer.Exit(worst)


def main() -> None:
    app()
