"""Live progress of a sync in the terminal: one bar per stream with rows and rows/s."""

from __future__ import annotations

from rich.console import Console
from rich.markup import escape
from rich.progress import (
    BarColumn,
    Progress,
    ProgressColumn,
    SpinnerColumn,
    Task,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
)
from rich.text import Text

from syncline.engine.observer import RunObserver, StreamProgress
from syncline.engine.plan import StreamPlan
from syncline.errors import SynclineError


class RowsColumn(ProgressColumn):
    def render(self, task: Task) -> Text:
        total = f"/{int(task.total):,}" if task.total else ""
        return Text(f"{int(task.completed):,}{total} rows", style="cyan")


class RateColumn(ProgressColumn):
    def render(self, task: Task) -> Text:
        elapsed = task.finished_time if task.finished else task.elapsed
        rate = task.completed / elapsed if elapsed else 0.0
        return Text(f"{rate:,.0f} rows/s", style="green")


class RichObserver(RunObserver):
    """Draws the bars; prints retries and warnings above them."""

    def __init__(self, console: Console) -> None:
        self.console = console
        self.progress = Progress(
            SpinnerColumn(), TextColumn("[bold]{task.description}"), BarColumn(), RowsColumn(),
            RateColumn(), TimeElapsedColumn(), TextColumn("{task.fields[note]}"),
            console=console, transient=False,
        )
        self.tasks: dict[str, TaskID] = {}

    def __enter__(self) -> RichObserver:
        self.progress.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.progress.stop()

    def run_started(self, connection: str, run_id: int) -> None:
        self.console.print(f"[bold]sync[/] {connection} · run {run_id}")

    def stream_started(self, plan: StreamPlan, progress: StreamProgress) -> None:
        label = f"{plan.stream.name} → {plan.qualified_table} ({plan.mode}, {plan.write})"
        self.tasks[plan.stream.name] = self.progress.add_task(label, total=progress.expected, note="")
        for change in progress.schema_changes:
            self.console.print(f"  [yellow]schema[/] {plan.stream.name}: {change}")

    def stream_progress(self, progress: StreamProgress) -> None:
        task = self.tasks.get(progress.stream)
        if task is not None:
            note = f"[red]{progress.rows_quarantined} quarantined" if progress.rows_quarantined else ""
            self.progress.update(task, completed=progress.rows_read, note=note)

    def stream_finished(self, progress: StreamProgress, duration_s: float) -> None:
        task = self.tasks.get(progress.stream)
        if task is not None:
            self.progress.update(task, total=progress.rows_read, completed=progress.rows_read)
            self.progress.stop_task(task)

    def stream_failed(self, stream: str, error: SynclineError) -> None:
        if not error.retryable:  # a transient one is retried, as attempt_failed says
            self.console.print(f"[red]stream {escape(stream)} failed ({error.failure_class}); the "
                               f"others go on:[/] {escape(error.message)}")

    def attempt_failed(self, number: int, error: SynclineError, retry_in_s: float | None) -> None:
        if retry_in_s is not None:
            self.console.print(
                f"[yellow]attempt {number} failed ({error.failure_class}); retrying in "
                f"{retry_in_s:.1f}s:[/] {error.message}"
            )

    def warning(self, message: str) -> None:
        self.console.print(f"[yellow]warning:[/] {message}")
