"""What every command shares: the consoles, the workspace and --json options, and the one
place Syncline errors become a message and an exit code (1 failed, 2 usage or configuration)."""

from __future__ import annotations

import contextvars
import datetime as dt
import json
import sys
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, NoReturn, TypeVar

import typer
from rich.console import Console
from rich.markup import escape
from typer.core import TyperGroup

from syncline.config import Workspace
from syncline.errors import ConfigurationError, SynclineError

if TYPE_CHECKING:
    from syncline.store.store import MetadataStore

# Piped output keeps whole lines rather than folding tables at 80 columns.
console = Console(highlight=False, width=None if sys.stdout.isatty() else 150)
err_console = Console(stderr=True, highlight=False, width=None if sys.stderr.isatty() else 150)

WORKSPACE_HELP = "Workspace folder (default: $SYNCLINE_WORKSPACE, else the current folder)."
WorkspaceOpt = Annotated[Path | None, typer.Option("--workspace", "-w", help=WORKSPACE_HELP)]
_JSON_ERRORS = contextvars.ContextVar("json_errors", default=False)


def json_mode(value: bool) -> bool:
    """`--json` also makes errors JSON: set while the command's options are read."""
    _JSON_ERRORS.set(bool(value))
    return value


JsonOpt = Annotated[bool, typer.Option("--json", help="Print machine-readable JSON (errors too).",
                                       callback=json_mode)]
#: -h is --help, on every command
HELP = {"help_option_names": ["-h", "--help"]}


def _no_value_shown(params: Iterable[Any]) -> None:
    """A flag takes no value: its help row shows none (Typer would print `<bool>`)."""
    for param in params:
        if getattr(param, "is_flag", False):
            param.metavar = ""


class Commands(TyperGroup):
    """Every Syncline command group: flags are shown as flags in `-h`, here and below."""

    def get_params(self, ctx: Any) -> list[Any]:
        params: list[Any] = super().get_params(ctx)
        _no_value_shown(params)
        return params

    def get_command(self, ctx: Any, cmd_name: str) -> Any:
        command = super().get_command(ctx, cmd_name)
        if command is not None and not isinstance(command, TyperGroup):
            _no_value_shown(command.get_params(ctx))
        return command

T = TypeVar("T")


class _Given:
    """`-w` given before the command (`syncline -w DIR status`), for this invocation."""

    workspace: Path | None = None


class ListByDefault(Commands):
    """A group whose bare name lists: `runs` and `runs CONNECTION` mean `runs list ...`."""

    def parse_args(self, ctx: Any, args: list[str]) -> list[str]:
        if not args or (args[0] not in self.commands and args[0] not in ("--help", "-h")):
            args = ["list", *args]
        return super().parse_args(ctx, args)


def set_global_workspace(path: Path | None) -> None:
    _Given.workspace = path


def workspace_path(given: Path | None, default: Path | None = None) -> Path | None:
    """`-w` after the command, else `-w` before it, else the command's own default; None
    leaves the choice to SYNCLINE_WORKSPACE, then the current folder."""
    return given or _Given.workspace or default


def guarded(fn: Callable[[], T]) -> T:
    """Turn Syncline errors into a clear message and the documented exit code; under `--json`,
    a JSON object on stdout (`{"error": {...}}`) with the same exit code."""
    try:
        return fn()
    except SynclineError as exc:
        code = 2 if isinstance(exc, ConfigurationError) else 1
        if _JSON_ERRORS.get():
            print_json({"error": {"failure_class": exc.failure_class, "message": exc.message,
                                  "connection": exc.connection, "stream": exc.stream,
                                  "fix": exc.fix, "exit_code": code}})
        elif code == 2:
            err_console.print(f"[red]configuration error:[/] {escape(str(exc))}")
        else:
            err_console.print(f"[red]{exc.failure_class} error:[/] {escape(str(exc))}")
        raise typer.Exit(code) from None


def refuse(message: str, fix: str) -> NoReturn:
    """A command line the workspace cannot honour (no such run, stream, broker): the message
    and its fix, exit 2, as `guarded` reports any configuration error."""
    def fail() -> NoReturn:
        raise ConfigurationError(message, fix=fix)

    guarded(fail)
    raise AssertionError("guarded exits")


def duration_option(option: str, text: str) -> dt.timedelta:
    """An option's `<N>s|m|h|d` value; a bad one is refused naming the option (exit 2)."""
    from syncline.schedule import parse_duration

    try:
        return parse_duration(text)
    except ValueError as exc:
        refuse(f"{option}: {exc}", f"write e.g. {option} 2h")


@contextmanager
def opened(workspace: Path | None) -> Iterator[tuple[Workspace, MetadataStore]]:
    """The workspace (--workspace, else the default) and its metadata store, closed after;
    either failing to open is reported as `guarded` does."""
    from syncline.config import load_workspace

    ws = guarded(lambda: load_workspace(workspace_path(workspace)))
    store = guarded(lambda: store_of(ws))
    try:
        yield ws, store
    finally:
        store.close()


def store_of(ws: Workspace) -> MetadataStore:
    from syncline.store.store import MetadataStore

    return MetadataStore(ws.metadata_url(), spool=ws.state_dir)


def print_json(data: Any) -> None:
    sys.stdout.write(json.dumps(data, indent=2, default=str) + "\n")
