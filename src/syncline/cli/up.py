"""`syncline up`: the scheduler, the workers and the HTTP server in one process tree."""

from __future__ import annotations

import os
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer

from syncline import regions
from syncline.cli.common import WorkspaceOpt, err_console, guarded, refuse, workspace_path


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
    region: Annotated[str, typer.Option("--region", help="The workers take runs of connections "
                                        "in this region only.")] = "default",
    broker: Annotated[str | None, typer.Option(
        "--broker", envvar="SYNCLINE_BROKER_URL", show_envvar=True,
        help="Distributed mode (or `broker:` in syncline.yaml): send runs to Celery workers on "
        "this broker and start no local workers.")] = None,
) -> None:
    """Run the workspace unattended: apply syncline.yaml (again whenever it changes), queue
    each connection on its schedule, run the queue on N worker processes, and serve /healthz,
    /readyz and /api/v1/status. Ctrl-C or SIGTERM stops cleanly; a second one at once."""
    from syncline.orchestration.service import UpOptions, parse_size
    from syncline.orchestration.service import up as serve

    memory = guarded(lambda: parse_size(max_memory)) if max_memory else None
    guarded(lambda: regions.check(region, "--region"))
    from syncline.config import load_workspace

    broker = broker or guarded(lambda: load_workspace(workspace_path(workspace))).model.broker
    options = (UpOptions(0, host, port, memory, broker=broker) if broker
               else UpOptions(workers, host, port, memory, region=region))
    code = guarded(lambda: serve(workspace_path(workspace), options))
    raise typer.Exit(code)


BrokerOpt = Annotated[str | None, typer.Option(
    "--broker", envvar="SYNCLINE_BROKER_URL", show_envvar=True,
    help="Celery broker: redis://HOST:6379/0 or amqp://USER:PASSWORD@HOST:5672//.")]


class LogLevel(StrEnum):
    warning = "warning"
    info = "info"
    debug = "debug"


def _broker(broker: str | None, workspace: Path | None) -> str:
    """--broker, else SYNCLINE_BROKER_URL, else the workspace's `broker:`."""
    from syncline.config import load_workspace

    broker = broker or guarded(lambda: load_workspace(workspace_path(workspace))).model.broker
    if not broker:
        refuse("no broker given", "pass --broker redis://HOST:6379/0, set SYNCLINE_BROKER_URL, or "
               "set `broker:` in syncline.yaml")
    return broker


def scheduler(workspace: WorkspaceOpt = None, broker: BrokerOpt = None) -> None:
    """Distributed mode: apply syncline.yaml to the metadata store (again whenever it changes),
    queue each connection on its schedule and wake Celery workers for every queued run. The
    store (`metadata:`, on PostgreSQL) is shared with the workers; several schedulers may run:
    one leads at a time. Ctrl-C or SIGTERM stops it."""
    from syncline.orchestration.service import UpOptions
    from syncline.orchestration.service import up as serve

    options = UpOptions(workers=0, broker=_broker(broker, workspace), http=False)
    raise typer.Exit(guarded(lambda: serve(workspace_path(workspace), options)))


def worker(
    workspace: WorkspaceOpt = None,
    broker: BrokerOpt = None,
    workers: Annotated[int, typer.Option("--workers", min=1, max=64,
                                         help="Worker processes on this machine (default 2).")] = 2,
    log_level: Annotated[LogLevel, typer.Option(
        "--log-level", envvar="SYNCLINE_WORKER_LOG_LEVEL", show_envvar=True,
        help="info: also each wake received and what it did.")] = LogLevel.warning,
    region: Annotated[str | None, typer.Option(
        "--region", help="Take the runs of connections in this region (default: default).")] = None,
    queues: Annotated[str | None, typer.Option(
        "--queues", help="Region queues to consume, comma-separated (syncline.eu,syncline.us): "
        "the runs of those regions, with --region's.")] = None,
) -> None:
    """Distributed mode: run Celery worker processes that take runs woken for by `syncline
    scheduler`, reading each connection's config from the metadata store
    (SYNCLINE_METADATA_URL, else the workspace's `metadata:`). SIGTERM lets the running runs
    finish and stops; a second signal stops at once, and those runs are delivered again."""
    from syncline.config import load_workspace
    from syncline.orchestration.celery_queue import serve

    url = _broker(broker, workspace)
    serves = guarded(lambda: served(region, queues))
    ws = guarded(lambda: load_workspace(workspace_path(workspace)))
    os.environ.setdefault("SYNCLINE_METADATA_URL", ws.metadata_url())
    guarded(lambda: _say_unserved(ws.metadata_url(), serves))
    raise typer.Exit(guarded(lambda: serve(url, ws.root, workers, loglevel=log_level.value.upper(),
                                           serves=serves)))


def _say_unserved(store_url: str, serves: tuple[str, ...]) -> None:
    """A note when no connection of the newest revision is in a region this worker serves
    (a typo in --region?); it serves it anyway, for connections yet to come."""
    from syncline.store.store import MetadataStore

    with MetadataStore(store_url) as store:
        revision = store.revisions().latest()
    if revision is None:
        return
    known = set(regions.connection_regions(revision.document).values())
    idle = [r for r in serves if r not in known]
    if idle:
        err_console.print(f"note: no connection of config revision {revision.number} is in region "
                          f"{', '.join(idle)} (its regions: {', '.join(sorted(known)) or 'none'}); "
                          "this worker waits for runs of one")


def served(region: str | None, queues: str | None) -> tuple[str, ...]:
    """The regions a worker serves: --region's and those of --queues (default: `default`)."""
    named = [regions.of_queue(q.strip()) for q in (queues or "").split(",") if q.strip()]
    if region is not None:
        named.insert(0, regions.check(region, "--region"))
    return tuple(dict.fromkeys(named)) or (regions.DEFAULT,)
