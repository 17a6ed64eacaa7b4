"""Talking to a running service from another shell: `trigger`, `pause`, `resume`, `cancel`,
`queue` and `workers`. They work through the metadata store, so `up` need not answer them:
a run triggered while `up` is down waits in the queue for its next start."""

from __future__ import annotations

import time
from typing import Annotated, Any

import typer
from rich.markup import escape
from rich.table import Table

from syncline import clock
from syncline.cli.common import (
    JsonOpt,
    WorkspaceOpt,
    console,
    err_console,
    guarded,
    print_json,
    refuse,
    store_of,
    workspace_path,
)
from syncline.cli.views import age, iso
from syncline.config import Workspace, load_workspace
from syncline.store.store import MetadataStore

ConnectionArg = Annotated[str, typer.Argument(help="Name of a connection in the workspace.")]
OUTCOME_CODE = {"succeeded": 0, "warning": 0}


def _open(workspace: Any) -> tuple[Workspace, MetadataStore]:
    ws = guarded(lambda: load_workspace(workspace_path(workspace)))
    return ws, guarded(lambda: store_of(ws))


def _entry_json(e: Any, reason: str | None = None) -> dict[str, Any]:
    return {"entry": e.id, "connection": e.connection, "trigger": e.trigger, "state": e.state,
            "full_refresh": e.full_refresh, "streams": list(e.streams),
            "queued_at": iso(e.queued_at), "due_at": iso(e.not_before), "worker": e.worker,
            "run_id": e.run_id, "claimed_at": iso(e.claimed_at), "note": e.note,
            "cancel_requested_by": e.cancel_requested_by, "region": e.region, "why": reason}


def trigger(
    connection: ConnectionArg,
    workspace: WorkspaceOpt = None,
    full_refresh: Annotated[bool, typer.Option("--full-refresh", help="Queue a full refresh.")] = False,
    stream: Annotated[list[str] | None, typer.Option("--stream", "-s", metavar="STREAM", help="Only this stream (repeatable).")] = None,
    wait: Annotated[bool, typer.Option("--wait", help="Wait for the run and exit with its outcome "
                                       "(0 succeeded or warning, 1 otherwise).")] = False,
    timeout: Annotated[float | None, typer.Option("--timeout", min=0, help="With --wait: give up "
                                                  "after this many seconds (exit 1; the run goes on).")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Queue a run of a connection now (manual runs go before scheduled ones); with --wait,
    exit with its outcome, for cron, Airflow or dbt."""
    from syncline.engine.endpoints import check_selected
    from syncline.orchestration.apply import apply_file, revision_workspace
    from syncline.orchestration.queue import RunRequest

    ws, store = _open(workspace)
    try:
        _plan, revision = guarded(lambda: apply_file(ws, store))  # what the worker will run
        current = revision_workspace(ws, revision)
        guarded(lambda: current.connection(connection))
        guarded(lambda: check_selected(current, connection, stream or None))
        entry = store.queue().put(RunRequest(connection, "manual", full_refresh, tuple(stream or ()),
                                             region=current.region(connection)))
        alive = store.workers().list()
        paused = connection in store.pauses().all()
        if as_json and not wait:
            print_json(_entry_json(entry) | {"coalesced": entry.coalesced, "workers_alive": len(alive)})
        elif not as_json:
            said = f"already queued as entry {entry.id}" if entry.coalesced else f"queued as entry {entry.id}"
            console.print(f"{connection}: {said} (revision {revision.number})")
            region = current.region(connection)
            if not alive:
                err_console.print("  note: no worker is running: it waits for `syncline up`")
            elif region not in store.workers().live_regions():
                err_console.print(f"  note: no live worker for region {region}: it waits for "
                                  f"`syncline worker --region {region}`")
            if paused:
                err_console.print("  note: the connection is paused; this manual run still runs")
        if not wait:
            return
        code, record = _wait(store, entry.id, timeout)
    finally:
        store.close()
    if as_json:
        print_json(record)
    raise typer.Exit(code)


def _wait(store: MetadataStore, entry_id: int, timeout: float | None) -> tuple[int, dict[str, Any]]:
    from syncline.monitoring.status import run_data

    deadline = None if timeout is None else time.monotonic() + timeout
    while True:
        entry = store.queue().get(entry_id)
        assert entry is not None
        if entry.state not in ("queued", "claimed"):
            break
        if deadline is not None and time.monotonic() >= deadline:
            err_console.print(f"[red]still {'running' if entry.state == 'claimed' else 'queued'} "
                              f"after {timeout:g}s[/]: the run goes on; see `syncline queue`")
            return 1, _entry_json(entry)
        time.sleep(0.5)
    record = run_data(store, entry.run_id) if entry.run_id else None
    if record is None:
        err_console.print(f"[red]{entry.state}[/]: {escape(entry.note or 'no run was made')}")
        return 1, _entry_json(entry)
    status = record["status"]
    console.print(f"run {record['id']} {status}" + (
        f": {escape(str(record['failure_message']))}" if record["failure_message"] else ""))
    return OUTCOME_CODE.get(status, 1), record


def pause(connection: ConnectionArg, workspace: WorkspaceOpt = None, as_json: JsonOpt = False) -> None:
    """Stop scheduling a connection (runtime state in the store: applying a file never
    resumes it); its queued scheduled runs are cancelled, a run in progress finishes."""
    ws, store = _open(workspace)
    try:
        guarded(lambda: ws.connection(connection))
        paused, created = store.pauses().pause(connection)
        dropped = [store.queue().cancel(e.id, note="cancelled: the connection was paused")
                   for e in store.queue().entries(("queued",), connection) if e.trigger != "manual"]
    finally:
        store.close()
    if as_json:
        print_json({"connection": connection, "paused": True, "paused_at": iso(paused.paused_at),
                    "paused_by": paused.paused_by, "cancelled_entries": [e.id for e in dropped]})
        return
    console.print(f"{connection} paused" if created else
                  f"{connection} was already paused (since {iso(paused.paused_at)}, by {paused.paused_by})")


def resume(connection: ConnectionArg, workspace: WorkspaceOpt = None, as_json: JsonOpt = False) -> None:
    """Schedule a paused connection again; a tick missed while paused gives one run at once."""
    ws, store = _open(workspace)
    try:
        guarded(lambda: ws.connection(connection))
        lifted = store.pauses().resume(connection)
    finally:
        store.close()
    if as_json:
        print_json({"connection": connection, "paused": False, "was_paused": lifted is not None})
        return
    console.print(f"{connection} resumed" if lifted else f"{connection} was not paused")


def cancel(
    run: Annotated[int, typer.Argument(help="A run id (`queue` or `runs list`), or with --entry "
                                       "a queued entry's number.")],
    workspace: WorkspaceOpt = None,
    entry: Annotated[bool, typer.Option("--entry", help="RUN is a queue entry (`queue` shows them).")] = False,
    as_json: JsonOpt = False,
) -> None:
    """Cancel a run: a running one is asked to stop (at its next batch, the open batch rolled
    back; status cancelled), a queued entry never runs."""
    from syncline.store.leases import who

    _ws, store = _open(workspace)
    try:
        if entry:
            found = store.queue().get(run)
            if found is None:
                refuse(f"no queue entry {run}", "see `syncline queue`")
            if found.state == "claimed" and found.run_id is not None:
                run, entry = found.run_id, False
            else:
                done = store.queue().cancel(run)
                result = {"entry": run, "state": done.state}
        if not entry:
            asked = store.queue().request_cancel(run, who())
            record = store.run(run)
            if asked is None:
                state = f" (it is {record.status})" if record else ""
                refuse(f"run {run} is not running{state}", "see `syncline queue` for runs in progress")
            result = {"run_id": run, "entry": asked.id, "cancel_requested": True, "worker": asked.worker}
    finally:
        store.close()
    if as_json:
        print_json(result)
    elif "run_id" in result:
        console.print(f"run {run}: asked {result['worker']} to stop it at its next batch")
    else:
        console.print(f"queue entry {run}: {result['state']}")


def queue(workspace: WorkspaceOpt = None, as_json: JsonOpt = False) -> None:
    """Runs in progress and queued runs, in the order they will start, with why each waits."""
    from syncline.orchestration.limits import resources

    ws, store = _open(workspace)
    try:
        now = guarded(clock.now)
        running = store.queue().entries(("claimed",))
        waiting = store.queue().pending(now, resources(ws), store.workers().live_regions())
    finally:
        store.close()
    if as_json:
        print_json([_entry_json(e, "running") for e in running] +
                   [_entry_json(w.entry, w.reason) for w in waiting])
        return
    t = Table(title="Run queue")
    for col in ("entry", "connection", "trigger", "state", "run", "worker", "since", "why"):
        t.add_column(col, overflow="fold")
    for e in running:
        t.add_row(str(e.id), e.connection, e.trigger, "[cyan]running[/]", str(e.run_id or "—"),
                  e.worker or "", age(e.claimed_at, now),
                  "cancel requested" if e.cancel_requested_by else "")
    for w in waiting:
        t.add_row(str(w.entry.id), w.entry.connection, w.entry.trigger, "queued", "—", "",
                  age(w.entry.queued_at, now), escape(w.reason))
    console.print(t)


def workers(workspace: WorkspaceOpt = None, as_json: JsonOpt = False,
            all_: Annotated[bool, typer.Option("--all", help="Also workers that stopped, crashed "
                                               "or were lost.")] = False) -> None:
    """The worker processes: host, pid, region, queue, current run and last heartbeat."""
    _ws, store = _open(workspace)
    try:
        now = guarded(clock.now)
        found = store.workers().list(include_ended=all_)
    finally:
        store.close()
    if as_json:
        print_json([{"name": w.name, "host": w.host, "pid": w.pid, "region": w.region,
                     "queue": w.queue, "state": w.state, "connection": w.connection,
                     "run_id": w.run_id, "started_at": iso(w.started_at),
                     "heartbeat_at": iso(w.heartbeat_at), "note": w.note} for w in found])
        return
    t = Table(title="Workers")
    for col in ("worker", "host", "pid", "region", "queue", "state", "run", "heartbeat", "note"):
        t.add_column(col, overflow="fold")
    for w in found:
        t.add_row(w.name, w.host, str(w.pid), w.region, w.queue, w.state,
                  f"{w.connection} #{w.run_id}" if w.run_id else "—", age(w.heartbeat_at, now),
                  escape(w.note or ""))
    console.print(t)
