"""`syncline metrics serve`: the Prometheus metrics of a metadata store, without `up`."""

from __future__ import annotations

import signal
import threading
from typing import Annotated

import typer

from syncline.cli.common import (
    HELP,
    Commands,
    WorkspaceOpt,
    console,
    guarded,
    refuse,
    store_of,
    workspace_path,
)
from syncline.config import load_workspace

metrics_app = typer.Typer(context_settings=HELP, cls=Commands, name="metrics",
                          help="Prometheus metrics of every connection, from the metadata store.",
                          no_args_is_help=True)


@metrics_app.command("serve")
def serve(
    workspace: WorkspaceOpt = None,
    port: Annotated[int, typer.Option("--port", min=1, max=65535, help="Port to serve /metrics on.")] = 9464,
    host: Annotated[str, typer.Option("--host", help="Address to listen on; loopback only until "
                                      "authentication exists.")] = "127.0.0.1",
) -> None:
    """Serve GET /metrics (the same as `up`'s) for a store whose runs happen elsewhere: the
    figures come from the store, so they are right for runs of any process or machine.
    Ctrl-C or SIGTERM stops it."""
    from prometheus_client import start_http_server

    from syncline.monitoring.metrics import registry
    from syncline.orchestration.service import loopback_only

    guarded(lambda: loopback_only(host))
    ws = guarded(lambda: load_workspace(workspace_path(workspace)))
    store = guarded(lambda: store_of(ws))
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    try:
        server, thread = start_http_server(port, addr=host, registry=registry(store))
    except OSError as exc:
        store.close()
        refuse(f"cannot listen on {host}:{port} ({exc.strerror or exc})",
               "pass --port with a free port")
    console.print(f"syncline metrics: http://{host}:{port}/metrics; Ctrl-C stops")
    try:
        stop.wait()
    finally:
        server.shutdown()
        thread.join(5)
        store.close()
