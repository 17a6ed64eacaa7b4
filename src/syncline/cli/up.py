"""`syncline up`: the scheduler, the workers and the HTTP server in one process tree."""

from __future__ import annotations

from typing import Annotated

import typer

from syncline.cli.common import WorkspaceOpt, guarded, workspace_path


def up(
    workspace: WorkspaceOpt = None,
    workers: Annotated[int, typer.Option("--workers", min=1, max=64,
                                         help="Worker processes running syncs (default 2).")] = 2,
    host: Annotated[str, typer.Option("--host", help="Address of the HTTP server; loopback only "
                                      "until authentication exists.")] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", min=1, max=65535,
                                      help="Port of the HTTP server.")] = 8765,
    max_memory: Annotated[str | None, typer.Option(
        "--max-memory", help="A worker whose resident memory is over this after a run (e.g. "
        "512MB, 2GiB) is replaced by a fresh one.")] = None,
) -> None:
    """Run the workspace unattended: apply syncline.yaml (again whenever it changes), queue
    each connection on its schedule, run the queue on N worker processes, and serve /healthz,
    /readyz and /api/v1/status. Ctrl-C or SIGTERM stops cleanly; a second one at once."""
    from syncline.orchestration.service import UpOptions, parse_size
    from syncline.orchestration.service import up as serve

    memory = guarded(lambda: parse_size(max_memory)) if max_memory else None
    code = guarded(lambda: serve(workspace_path(workspace), UpOptions(workers, host, port, memory)))
    raise typer.Exit(code)
