"""`syncline state`: a connection's checkpoints as the destination holds them; reset or move one."""

from __future__ import annotations

import json
from typing import Annotated

import typer
from rich.markup import escape
from rich.table import Table

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
from syncline.config import Workspace, load_workspace
from syncline.destinations.base import Destination
from syncline.event_kinds import Event


def state(
    connection: Annotated[str, typer.Argument(help="Name of a connection in the workspace.")],
    workspace: WorkspaceOpt = None,
    reset: Annotated[str | None, typer.Option("--reset", help="Forget this stream's checkpoint.")] = None,
    set_to: Annotated[str | None, typer.Option(
        "--set", metavar="STREAM=VALUE", help="Move an incremental stream's checkpoint to this "
        "cursor value: the next sync reads from there (back to re-read, forward to skip).")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Show the checkpoints of a connection (as committed in the destination), reset one, or
    move one to a cursor value."""
    from syncline.engine.endpoints import open_destination
    from syncline.engine.plan import destination_schema

    ws = guarded(lambda: load_workspace(workspace_path(workspace)))
    conn = guarded(lambda: ws.connection(connection))
    dest = guarded(lambda: open_destination(ws, conn.destination))
    try:
        schema = guarded(lambda: destination_schema(connection, conn, dest))
        if set_to is not None:
            _set_checkpoint(ws, connection, dest, schema, set_to, as_json)
            return
        if reset is not None:
            existed = guarded(lambda: dest.reset_state(schema, reset))
            if not existed:
                known = ", ".join(sorted(guarded(lambda: dest.all_states(schema)))) or "(none yet)"
                refuse(f"no checkpoint for stream '{reset}' of {connection}", f"reset one of: {known}")
            store = store_of(ws)
            store.mirror_checkpoint(connection, reset, None)
            store.emitter.emit(Event("checkpoint.moved", {"action": "reset", "from": None, "to": None},
                                     connection=connection, stream=reset))
            store.close()
            if as_json:
                print_json({"connection": connection, "stream": reset, "reset": True})
            else:
                console.print(f"[green]reset[/] {connection}/{reset}: the next sync reads it from the start")
            return
        states = guarded(lambda: dest.all_states(schema))
    finally:
        dest.close()
    if as_json:
        print_json(states)
        return
    t = Table(title=f"checkpoints of {connection} (in {conn.destination}.{schema})")
    for col in ("stream", "mode", "phase", "position", "updated"):
        t.add_column(col, overflow="fold")  # a position is shown whole, never cut
    for stream_name, st in sorted(states.items()):
        position = escape(json.dumps(st.get("source"), default=str))
        moved = st.get("moved")
        if isinstance(moved, dict):  # until the next run reads from it
            position += f" (moved by state --set from {escape(str(moved.get('from')))} at {moved.get('at')})"
        t.add_row(stream_name, str(st.get("mode", "?")), str(st.get("phase", "corrupt")),
                  position, str(st.get("updated_at", ""))[:19])
    console.print(t)


def _set_checkpoint(ws: Workspace, connection: str, dest: Destination, schema: str, text: str,
                    as_json: bool) -> None:
    """`state --set STREAM=VALUE`: the checkpoint moved in the destination, said in an event."""
    from syncline.engine.backfill import moved_state

    stream, sep, value = text.partition("=")
    if not sep or not stream or not value:
        refuse(f"--set {text!r} names no stream and value", "write it as --set STREAM=VALUE, e.g. "
               "--set public.orders=2026-03-01")
    states = guarded(lambda: dest.all_states(schema))
    state = guarded(lambda: moved_state(states.get(stream), connection=connection, stream=stream,
                                        value=value, known=sorted(states)))
    guarded(lambda: dest.put_state(schema, stream, state))
    store = store_of(ws)
    try:
        store.mirror_checkpoint(connection, stream, state)
        store.emitter.emit(Event("checkpoint.moved", {"action": "set", **state["moved"]},
                                 connection=connection, stream=stream))
    finally:
        store.close()
    if as_json:
        print_json({"connection": connection, "stream": stream, **state["moved"]})
    else:
        console.print(f"[green]moved[/] {connection}/{stream}: from {state['moved']['from']} to "
                      f"{value}; the next sync reads from there")
