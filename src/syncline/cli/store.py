"""`syncline store`: the metadata store's schema, and a portable backup of it."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from syncline.cli.common import (
    HELP,
    Commands,
    JsonOpt,
    WorkspaceOpt,
    console,
    guarded,
    print_json,
    store_of,
    workspace_path,
)
from syncline.config import load_workspace
from syncline.store.db import mask_url

store_app = typer.Typer(context_settings=HELP, cls=Commands, name="store", help="The metadata store: upgrade its schema, back it up, "
                        "restore it (SQLite or PostgreSQL, either way).", no_args_is_help=True)
FileArg = Annotated[Path, typer.Argument(help="The backup file (JSON lines).")]


@store_app.command("upgrade")
def upgrade(workspace: WorkspaceOpt = None, as_json: JsonOpt = False) -> None:
    """Migrate the metadata store to this Syncline's schema (every command also does on open);
    migrations only add, under the database's lock, so `up` may keep running."""
    from syncline.store.db import upgrade as migrate

    ws = guarded(lambda: load_workspace(workspace_path(workspace)))
    before, after = guarded(lambda: migrate(ws.metadata_url()))
    if as_json:
        print_json({"store": mask_url(ws.metadata_url()), "from": before, "to": after})
    elif before == after:
        console.print(f"the store is at schema {after}: nothing to do")
    else:
        console.print(f"upgraded the store from schema {before or '(empty)'} to {after}")


@store_app.command("backup")
def backup(file: FileArg, workspace: WorkspaceOpt = None, as_json: JsonOpt = False) -> None:
    """Write every table of the metadata store to FILE as JSON lines (portable: restore it into
    SQLite or PostgreSQL)."""
    ws = guarded(lambda: load_workspace(workspace_path(workspace)))
    store = guarded(lambda: store_of(ws))
    try:
        tmp = file.with_name(file.name + ".partial")
        with tmp.open("w", encoding="utf-8") as out:
            counts = store.backup(out)
        tmp.replace(file)  # a backup is whole or absent
    finally:
        store.close()
    _report(counts, f"backed up to {file}", as_json)


@store_app.command("restore")
def restore(file: FileArg, workspace: WorkspaceOpt = None, as_json: JsonOpt = False) -> None:
    """Load a backup into the workspace's metadata store, which must be new and empty."""
    ws = guarded(lambda: load_workspace(workspace_path(workspace)))
    if not file.is_file():
        guarded(lambda: _missing(file))
    store = guarded(lambda: store_of(ws))
    try:
        with file.open(encoding="utf-8") as lines:
            counts = guarded(lambda: store.restore(lines))
    finally:
        store.close()
    _report(counts, f"restored {file} into {store.url}", as_json)


def _missing(file: Path) -> None:
    from syncline.errors import ConfigurationError

    raise ConfigurationError(f"no backup file {file}", fix="give the path `store backup` wrote")


def _report(counts: dict[str, int], done: str, as_json: bool) -> None:
    if as_json:
        print_json({"tables": counts, "rows": sum(counts.values())})
        return
    console.print(f"{done}: {sum(counts.values()):,} rows in {sum(1 for n in counts.values() if n)} "
                  "tables (" + ", ".join(f"{t} {n:,}" for t, n in counts.items() if n) + ")")


@store_app.command("vacuum")
def vacuum(workspace: WorkspaceOpt = None, as_json: JsonOpt = False) -> None:
    """Apply the retention now (`retention:`, default 90d): delete events, runs (with their
    attempts and stream stats) and ended queue entries older than it, keeping each
    connection's newest run and newest successful run. `up` does this every hour."""
    from syncline.schedule import parse_duration

    ws = guarded(lambda: load_workspace(workspace_path(workspace)))
    store = guarded(lambda: store_of(ws))
    try:
        counts = guarded(lambda: store.vacuum(parse_duration(ws.model.retention)))
    finally:
        store.close()
    _report(counts, f"deleted what is older than {ws.model.retention}", as_json)
