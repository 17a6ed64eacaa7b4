"""`syncline events`: the event log, filtered, once or followed."""

from __future__ import annotations

import datetime as dt
import json
import time
from functools import partial
from typing import Annotated

import typer
from rich.markup import escape

from syncline import clock
from syncline.cli.common import (
    JsonOpt,
    WorkspaceOpt,
    console,
    duration_option,
    guarded,
    print_json,
    refuse,
    store_of,
    workspace_path,
)
from syncline.config import load_workspace
from syncline.event_kinds import KINDS
from syncline.store.events import StoredEvent

FOLLOW_POLL_S = 0.5
_COLOURS = {"info": "", "warning": "yellow", "error": "red", "critical": "bold red"}


def kinds_of(kind: str | None) -> list[str]:
    """`run.failed` is one kind; `run` (or `run.*`) all kinds of runs."""
    if not kind:
        return []
    if kind in KINDS:
        return [kind]
    prefix = kind.removesuffix("*").removesuffix(".") + "."
    if not any(k.startswith(prefix) for k in KINDS):
        refuse(f"no event kind {kind!r}", "use one of: " + ", ".join(sorted(KINDS)) +
               " (or a prefix: run, stream, worker, config...)")
    return [prefix]


def events(
    workspace: WorkspaceOpt = None,
    connection: Annotated[str | None, typer.Option("--connection", "-c",
                                                   help="Only this connection's events.")] = None,
    kind: Annotated[str | None, typer.Option("--kind", "-k", help="One kind (run.failed) or all "
                                             "kinds of a subject (run, stream, worker...).")] = None,
    since: Annotated[str, typer.Option("--since", help="How far back: <N>s|m|h|d.")] = "24h",
    follow: Annotated[bool, typer.Option("--follow", "-f", help="Then print new events as they "
                                         "come, until Ctrl-C.")] = False,
    as_json: JsonOpt = False,
) -> None:
    """The event log: everything that happened (runs queued, started and ended, attempts that
    failed, streams finished, schema changes, quarantined rows, workers lost, config applied),
    oldest first. `docs/events.md` lists the kinds and the body of each."""
    wanted = kinds_of(kind)
    window = duration_option("--since", since)
    ws = guarded(lambda: load_workspace(workspace_path(workspace)))
    store = guarded(lambda: store_of(ws))
    log = store.events()
    start = clock.now() - window

    def fetch(after: int = 0) -> list[StoredEvent]:
        return log.read(connection=connection, kinds=wanted, since=start, after=after, limit=10_000)

    try:
        shown = guarded(fetch)
        if as_json and not follow:
            print_json([e.to_json() for e in shown])
            return
        last = _show(shown, as_json)
        while follow:
            time.sleep(FOLLOW_POLL_S)
            last = max(last, _show(guarded(partial(fetch, last)), as_json))
    except KeyboardInterrupt:
        raise typer.Exit(0) from None
    finally:
        store.close()


def _show(found: list[StoredEvent], as_json: bool) -> int:
    """Print events (JSON lines with --json); the newest id printed, or 0."""
    for e in found:
        if as_json:
            print(json.dumps(e.to_json(), sort_keys=True), flush=True)
            continue
        colour = _COLOURS.get(e.severity, "")
        where = " ".join(p for p in (e.connection or "", f"run {e.run}" if e.run else "",
                                     f"stream {e.stream}" if e.stream else "") if p)
        line = (f"{e.time.astimezone(dt.UTC):%Y-%m-%d %H:%M:%S} "
                f"{f'[{colour}]' if colour else ''}{e.kind:<16}{f'[/{colour}]' if colour else ''} "
                f"{escape(where)}  {escape(summary(e))}")
        console.print(line, soft_wrap=True)
    return found[-1].id if found else 0


def summary(e: StoredEvent) -> str:
    """The body in a few words."""
    b = e.body
    if e.kind.startswith("run.") and e.kind not in ("run.queued", "run.started"):
        text = f"{b.get('rows_committed', 0):,} rows committed"
        return f"{text}; {b['message'].splitlines()[0]}" if b.get("message") else text
    if e.kind == "run.queued":
        return f"entry {b['entry']} ({b['trigger']}), due {b['due_at']}"
    if e.kind == "stream.finished":
        return (f"{b['rows_read']:,} read, {b['rows_committed']:,} committed, "
                f"{b['rows_quarantined']:,} quarantined in {b['seconds']:.1f}s into {b['table']}")
    if "message" in b:
        return str(b["message"]).splitlines()[0]
    return ", ".join(f"{k}={v}" for k, v in b.items() if not isinstance(v, (dict, list)))
