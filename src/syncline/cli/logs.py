"""`syncline logs RUN`: every line a run logged, from the metadata store (any machine's run)."""

from __future__ import annotations

import json
import time
from typing import Annotated

import typer
from rich.markup import escape

from syncline.cli.common import (
    JsonOpt,
    WorkspaceOpt,
    console,
    guarded,
    refuse,
    store_of,
    workspace_path,
)
from syncline.config import load_workspace
from syncline.store.run_logs import LEVELS, LogLine

FOLLOW_POLL_S = 0.5
_COLOURS = {"debug": "dim", "info": "", "warning": "yellow", "error": "red"}


def logs(
    run: Annotated[int, typer.Argument(help="The run's id (see `syncline runs`).")],
    workspace: WorkspaceOpt = None,
    level: Annotated[str, typer.Option("--level", "-l", help="Lines at this level or above: debug, "
                                       "info, warning or error.")] = "info",
    follow: Annotated[bool, typer.Option("--follow", "-f", help="Then print new lines as they come, "
                                         "until the run ends (or Ctrl-C).")] = False,
    as_json: JsonOpt = False,
) -> None:
    """Every line run RUN logged: the engine (attempts, streams, warnings), each HTTP request of a
    REST source (method, path, status, duration, try) and a Singer tap's stderr, with the attempt
    and stream it belongs to. No secret and no row value is ever kept."""
    if level not in LEVELS:
        refuse(f"no log level {level!r}", f"use one of: {', '.join(LEVELS)}")
    ws = guarded(lambda: load_workspace(workspace_path(workspace)))
    store = guarded(lambda: store_of(ws))
    try:
        record = guarded(lambda: store.run(run))
        if record is None:
            refuse(f"no run {run}", "see `syncline runs` for the runs kept")
        lines = guarded(lambda: store.run_logs().read(run, level=level))
        if as_json and not follow:
            print(json.dumps([line.to_json() for line in lines], indent=2))
            return
        last = _show(lines, as_json)
        while follow:
            current = store.run(run)
            time.sleep(FOLLOW_POLL_S)
            fresh = store.run_logs().read(run, after=last, level=level)
            last = max(last, _show(fresh, as_json))
            if current is not None and current.status != "running" and not fresh:
                break
    except KeyboardInterrupt:
        raise typer.Exit(0) from None
    finally:
        store.close()


def _show(lines: list[LogLine], as_json: bool) -> int:
    for line in lines:
        if as_json:
            print(json.dumps(line.to_json(), sort_keys=True), flush=True)
            continue
        colour = _COLOURS.get(line.level, "")
        where = " ".join(p for p in (f"attempt {line.attempt}" if line.attempt else "",
                                     f"stream {line.stream}" if line.stream else "") if p)
        text = f"{line.time:%H:%M:%S} {line.level.upper():<7} {f'[{where}] ' if where else ''}{line.message}"
        console.print(f"[{colour}]{escape(text)}[/]" if colour else escape(text), soft_wrap=True)
    return lines[-1].id if lines else 0
