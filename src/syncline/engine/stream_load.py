"""One stream of one attempt: read from the checkpoint, stage, commit each checkpoint, finish."""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Iterator
from dataclasses import dataclass, replace
from typing import Any

import pyarrow as pa

from syncline.destinations.base import (
    QUARANTINE_TABLE,
    Destination,
    LoadTarget,
    StreamLoader,
)
from syncline.engine import tracing
from syncline.engine.backfill import since_checkpoint
from syncline.engine.observer import RunObserver, StreamProgress
from syncline.engine.plan import StreamPlan
from syncline.engine.reconcile import gone_keys
from syncline.engine.table_shape import check_shape, continues_history
from syncline.engine.watch import StopRequest, watched
from syncline.errors import (
    ConfigurationError,
    DataError,
    IntegrityError,
    InternalError,
    ShrinkRefused,
)
from syncline.failpoints import failpoint
from syncline.schema import StreamSchema
from syncline.sources.base import Source
from syncline.stream import KEYED_WRITES, BadRecord, Checkpoint, Notice, ReadRequest, SchemaChange

STATE_VERSION = 1
DEFAULT_BATCH_ROWS = 50_000


def unreadable(state: dict[str, Any] | None, plan: StreamPlan, connection: str) -> None:
    """A state row this version cannot read stops the stream until the user resets it."""
    if state is not None and ("corrupt" in state or state.get("version") != STATE_VERSION):
        raise ConfigurationError(
            "the checkpoint row in the destination is unreadable",
            connection=connection,
            stream=plan.stream.name,
            fix=f"run `syncline state {connection} --reset {plan.stream.name}` to start this stream over",
        )


def batch_rows(source: Source, destination: Destination, stream: StreamSchema) -> int:
    """Rows per batch when the connection sets no `batch_size`.

    A source that knows its row width asks for about 24 MiB; that is rounded to whole
    row groups of the destination (at least one), which it stores most cheaply.
    """
    wanted = source.batch_rows(stream)
    if wanted is None:
        return DEFAULT_BATCH_ROWS
    group = max(1, destination.row_group_rows)
    return max(1, round(wanted / group)) * group


def state_checkpoint(
    state: dict[str, Any] | None, plan: StreamPlan, full_refresh: bool, connection: str,
    rebuild: bool = False,
) -> tuple[dict[str, Any] | None, bool, bool]:
    """From a committed state row: (source checkpoint to resume from, build beside, restart build).

    ``rebuild``: the table's shape changed; it is built again beside the old one from the start.
    """
    if rebuild:
        return None, True, True
    same_shape = (
        state is not None
        and state.get("mode") == plan.mode
        and state.get("cursor_field") == plan.cursor
        and state.get("table") == plan.table
        and state.get("table_schema") == plan.table_schema
    )
    building = same_shape and state is not None and state.get("phase") == "building"
    if same_shape and state is not None and state.get("phase") == "refused":
        return None, True, True  # a refused refresh is tried again from the start, beside the table
    if plan.mode == "full_refresh":
        # replace, merge and history build beside (merge keeps the rows missing from the
        # snapshot in the build, soft-deleted; history applies the build to its versions at
        # the end); append adds the snapshot to the table
        build_beside = plan.write in ("replace", *KEYED_WRITES)
        if building and state is not None:
            if build_beside and not state.get("beside"):
                return None, True, True  # a refresh that wrote into the table: start over beside
            return state.get("source"), build_beside or bool(state.get("beside")), False
        return None, build_beside, True
    # incremental: a forced full refresh re-reads from the start into a table built beside
    if building and state is not None:
        return state.get("source"), True, False
    if full_refresh:
        return None, True, True
    if same_shape and state is not None:
        return state.get("source"), False, False
    return None, False, False


@dataclass(frozen=True)
class LoadOptions:
    """How one stream is loaded in this run."""

    batch_size: int = DEFAULT_BATCH_ROWS
    full_refresh: bool = False
    fence_token: int | None = None
    source_timeout_s: float = 600.0
    #: zero-row anomaly: "auto" fails a full refresh (keeping the old table), warns otherwise
    zero_rows: str = "auto"
    #: rows read by recent successful runs of this stream, newest first
    recent_rows: tuple[int, ...] = ()
    zero_rows_threshold: int = 1000
    #: a full refresh may not remove more than this share of a table's rows (None: any share)
    max_shrink: float | None = 0.9
    #: incremental: how far past the source's clock a checkpoint may go (`max_cursor_skew`)
    max_skew_s: int = 86400
    #: `sync --since VALUE`: re-read the stream from this cursor value
    since: str | None = None


def load_stream(
    *,
    connection: str,
    schema: str,
    plan: StreamPlan,
    source: Source,
    destination: Destination,
    run_id: int,
    options: LoadOptions,
    observer: RunObserver,
    on_commit: Any = None,
    stop: StopRequest | None = None,
) -> tuple[StreamProgress, float]:
    started = time.monotonic()
    batch_size, full_refresh, fence_token = options.batch_size, options.full_refresh, options.fence_token
    state = destination.read_state(schema, plan.stream.name)
    unreadable(state, plan, connection)
    rebuild = check_shape(state, plan, full_refresh, connection)
    if rebuild is not None:
        observer.warning(f"{plan.stream.name}: {rebuild}, so the table is rebuilt by a full refresh")
    checkpoint, build_beside, restart = state_checkpoint(state, plan, full_refresh, connection,
                                                         rebuild is not None)
    since = None
    if options.since is not None:
        checkpoint, since = _since(plan, source, connection, checkpoint, build_beside, options.since)
    existing = destination.table_columns(plan.table_schema or schema, plan.table)
    upgrades: list[str] = []
    if existing:  # a loaded table keeps its text, and until rebuilt its booleans and older types
        rebuilt = build_beside and plan.write != "history"  # a history table is never rebuilt
        upgrades = plan.stream.upgrades(existing) if rebuilt else []
        plan = replace(plan, stream=plan.stream.keeping_loaded(
            existing, but=tuple(c for c in (plan.cursor,) if c), booleans=not build_beside,
            rebuild=rebuilt))
    checkpoint, backfill = _new_columns(plan, existing, checkpoint, build_beside, source)
    if backfill is not None:
        observer.warning(f"{plan.stream.name}: {backfill}")
    resumes = plan.mode != "full_refresh" or source.full_refresh_resumes(plan.stream)
    over = None
    if not resumes and not restart:  # an interrupted full refresh the source cannot go on with
        checkpoint, restart = None, True
        over = "the source cannot resume a full refresh, so the interrupted build starts over"
        observer.warning(f"{plan.stream.name}: {over}")
    # appended without a build beside: rows committed before an interruption could not be told
    # from the restarted read's, so the whole read commits at once, at the end
    at_end = not resumes and not build_beside and plan.write == "append"
    fingerprint, moved = _fingerprint(source, plan, state, checkpoint is None or restart)
    if moved:
        checkpoint, restart = None, True
        observer.warning(f"{plan.stream.name}: the source changed since this full refresh was "
                         "interrupted; it starts over, so no row read before the change is published")
    keys_once = (checkpoint is None and plan.mode in source.snapshot_modes
                 and bool(plan.primary_key) and tuple(plan.primary_key) == tuple(plan.stream.primary_key))
    target = LoadTarget(
        connection=connection, schema=schema, table=plan.table, table_schema=plan.table_schema,
        stream=_tombstones_fit(plan),
        write=plan.write, primary_key=plan.primary_key, cursor=plan.cursor,
        build_beside=build_beside, run_id=run_id, restart_build=restart, fence_token=fence_token,
        keys_once=keys_once, max_shrink=options.max_shrink,
        source_wins=plan.mode == "incremental" and checkpoint is None,
        built_rows=(state or {}).get("built_rows") if checkpoint is not None else 0,
        history_restart=rebuild is not None and not continues_history(state, plan),
    )
    loader = destination.loader(target)
    progress = StreamProgress(
        stream=plan.stream.name, table=plan.table, mode=plan.mode, write=plan.write,
        expected=source.estimate(plan.stream) if plan.mode == "full_refresh" or checkpoint is None else None,
        schema_changes=[*upgrades, *(c.describe() for c in loader.changes)],
    )
    if rebuild is not None:
        progress.notices.append(f"{rebuild}: the table was rebuilt by a full refresh")
    if over is not None:
        progress.notices.append(over)
    if since is not None:
        progress.remarks.append(since)
    by_hand = (state or {}).get("moved")
    if isinstance(by_hand, dict) and checkpoint is not None:
        progress.remarks.append(f"read from the checkpoint `state --set` moved from "
                                f"{by_hand.get('from')} to {by_hand.get('to')} at {by_hand.get('at')}")
    if backfill is not None:  # under append a gap the user should know of: the run is a warning
        (progress.schema_changes if plan.write in KEYED_WRITES else progress.notices).append(backfill)
    observer.stream_started(plan, progress)

    # runs since the last key reconciliation (`deletes: reconcile`), this one not counted yet
    since_reconcile = int((state or {}).get("since_reconcile") or 0) if checkpoint else 0

    def new_state(source_state: dict[str, Any] | None, phase: str) -> dict[str, Any]:
        return ({"table_schema": plan.table_schema} if plan.table_schema else {}) | (
            {"since_reconcile": since_reconcile} if plan.reconcile_every else {}) | {
            "version": STATE_VERSION, "mode": plan.mode, "write": plan.write,
            "cursor_field": plan.cursor, "primary_key": list(plan.primary_key), "table": plan.table,
            "phase": phase, "beside": build_beside,
            "source": source_state, "run_id": run_id, "fingerprint": fingerprint,
            "updated_at": dt.datetime.now(dt.UTC).isoformat(),
        }

    phase = "building" if build_beside or plan.mode == "full_refresh" else "complete"
    merging = plan.mode == "incremental" and plan.write in KEYED_WRITES
    request = ReadRequest(
        stream=plan.stream, mode=plan.mode, cursor=plan.cursor, primary_key=plan.primary_key,
        checkpoint=checkpoint, batch_size=batch_size, lookback_s=plan.lookback_s,
        inclusive=merging, nulls_every_run=merging, max_skew_s=options.max_skew_s,
        check_key=bool(plan.primary_key) and plan.mode != "cdc"
        and tuple(plan.primary_key) != tuple(plan.stream.primary_key),
    )
    last_source_state = checkpoint
    uncommitted = 0
    items = watched(source.read(request), options.source_timeout_s, stop, source.abandon)
    try:
        for item in (_traced_reads(items) if tracing.enabled() else items):
            if isinstance(item, pa.RecordBatch):
                failpoint("after_read")
                progress.rows_read += item.num_rows
                progress.bytes += item.nbytes
                uncommitted += item.num_rows
                with tracing.span("stage", rows=item.num_rows, bytes=item.nbytes):
                    loader.write(item)
                failpoint("after_staging")
            elif isinstance(item, Checkpoint):
                value = item.value
                if "fingerprint" in value:  # taken in the read's own snapshot
                    fingerprint = value["fingerprint"]
                    value = {k: v for k, v in value.items() if k != "fingerprint"}
                last_source_state = value
                if not at_end:
                    _commit(loader, new_state(value, phase), progress, on_commit)
                    uncommitted = 0
            elif isinstance(item, BadRecord):
                progress.rows_read += 1
                uncommitted += 1
                loader.quarantine(item)
            elif isinstance(item, Notice):
                progress.notices.append(item.message)
                observer.warning(f"{plan.stream.name}: {item.message}")
            elif isinstance(item, SchemaChange):
                loader, target = _follow(item, loader, target, destination, progress, observer,
                                         uncommitted)
            observer.stream_progress(progress)
        if uncommitted:  # the rows after the last checkpoint; or all rows of a read committed at once
            _commit(loader, new_state(None if at_end else last_source_state,
                                      "complete" if at_end else phase), progress, on_commit)
        if not (build_beside or plan.mode == "full_refresh") or checkpoint is None:
            # a resumed refresh may legitimately have nothing left to read
            _zero_rows(plan, progress, options, connection, observer)
        _check_counts(progress, connection)  # before the swap: a mismatch keeps the old table
        final_phase = "complete"
        final_source = last_source_state if plan.mode in ("incremental", "cdc") else None
        if plan.reconcile_every and not build_beside:
            since_reconcile += 1
            if since_reconcile >= plan.reconcile_every:
                since_reconcile = 0
                progress.rows_deleted += _reconcile(
                    loader, target, source, destination, schema, plan, batch_size, connection,
                    new_state(final_source, final_phase))
        loader.finish(new_state(final_source, final_phase))
        progress.rows_deleted += loader.soft_deleted
        if on_commit:
            on_commit(new_state(final_source, final_phase), final=True)
    except BaseException:
        loader.abort()
        raise
    finally:
        items.close()  # left early: the read stops now and lets go of the source
    if progress.rows_quarantined:  # the run says so: a warning, with where to look
        progress.notices.append(
            f"{progress.rows_quarantined:,} row{'s' * (progress.rows_quarantined != 1)} quarantined "
            "(not loaded); see them with: "
            f"SELECT record, error FROM {schema}.{QUARANTINE_TABLE} WHERE run_id = {run_id} "
            f"AND stream = '{plan.stream.name}'")
        observer.warning(f"{plan.stream.name}: {progress.notices[-1]}")
    observer.stream_progress(progress)
    return progress, time.monotonic() - started


def _reconcile(loader: StreamLoader, target: LoadTarget, source: Source, destination: Destination,
               schema: str, plan: StreamPlan, batch_size: int, connection: str,
               state: dict[str, Any]) -> int:
    """`deletes: reconcile`: mark the keys gone from the source, unless that would remove more
    of the table than `max_shrink` allows (a source read wrong is not a mass delete)."""
    with tracing.span("reconcile"):
        gone, live = gone_keys(source, destination, schema, plan, batch_size, connection)
        if not gone.num_rows:
            return 0
        share = gone.num_rows / live
        if target.max_shrink is not None and (share > target.max_shrink or gone.num_rows == live):
            raise ShrinkRefused(
                f"the source no longer has {gone.num_rows:,} of the {live:,} keys the table holds "
                f"({share:.0%}, more than max_shrink {target.max_shrink:.0%}), so none is marked "
                "deleted", connection=connection, stream=plan.stream.name,
                fix="check the source (emptied table, wrong credentials or filter); if it really "
                f"lost those rows, run `syncline sync {connection} --stream {plan.stream.name} "
                "--allow-empty` on a run that reconciles, or raise `max_shrink` of the stream")
        return loader.delete_keys(gone, state)


def _tombstones_fit(plan: StreamPlan) -> StreamSchema:
    """The stream as its table must take it: a cdc delete arrives as its key alone, so every
    other column takes NULL (a destination keeping the source's NOT NULL must not)."""
    if plan.mode != "cdc":
        return plan.stream
    keys = set(plan.primary_key)
    return replace(plan.stream, columns=tuple(
        c if c.name in keys else replace(c, nullable=True) for c in plan.stream.columns))


def _since(plan: StreamPlan, source: Source, connection: str, checkpoint: dict[str, Any] | None,
           build_beside: bool, value: str) -> tuple[dict[str, Any] | None, str]:
    """`sync --since VALUE`: the checkpoint the read starts from, and what to say of it."""
    if build_beside:
        raise ConfigurationError(
            "the stream's table is being rebuilt (an interrupted full refresh), so there is no "
            "checkpoint to re-read from", connection=connection, stream=plan.stream.name,
            fix=f"run `syncline sync {connection} --stream {plan.stream.name}` to finish the "
            "rebuild first")
    column = plan.stream.column(plan.cursor) if plan.cursor else None
    moved = since_checkpoint(
        connection=connection, stream=plan.stream.name, mode=plan.mode, write=plan.write,
        cursor=plan.cursor, cursor_type=column.type if column else None,
        sql_cursor=source.sql_cursor, checkpoint=checkpoint, value=value)
    if moved is None:
        return None, "--since: the stream was never read, so it is read from the start"
    return moved, f"re-read from {plan.cursor} >= {value} (--since)"


def _new_columns(plan: StreamPlan, existing: dict[str, Any] | None, checkpoint: dict[str, Any] | None,
                 build_beside: bool, source: Source) -> tuple[dict[str, Any] | None, str | None]:
    """The checkpoint an incremental read of a database table starts from when the table
    gained columns, and what to say of it.

    A column added with a default (`ADD COLUMN tier text DEFAULT 'bronze'`) fills the rows
    already there without moving their cursor. Under merge, the run that first sees it reads
    the stream again from the start in one snapshot, so the rows loaded before get their value,
    committed with the checkpoints as usual; under append the rows loaded before keep NULL.
    """
    if plan.mode != "incremental" or not existing or checkpoint is None or build_beside \
            or not source.sql_cursor:
        return checkpoint, None
    new = [c.name for c in plan.stream.columns if c.name not in existing]
    if not new:
        return checkpoint, None
    named = ", ".join(new)
    if plan.write in KEYED_WRITES:
        return None, (f"new column(s) {named}: the rows loaded before are read again in this run "
                      "to fill them")
    return checkpoint, (f"new column(s) {named}: the rows loaded before hold NULL there (append "
                        "keeps them as they were; `syncline sync --full-refresh` rebuilds the table)")


def _check_counts(progress: StreamProgress, connection: str) -> None:
    """Every row read was written, skipped by a merge for a newer version, or quarantined."""
    accounted = progress.rows_committed + progress.rows_skipped + progress.rows_quarantined
    if progress.rows_read != accounted:
        raise IntegrityError(
            f"read {progress.rows_read} rows but committed {progress.rows_committed}, skipped "
            f"{progress.rows_skipped} older versions and quarantined {progress.rows_quarantined}",
            connection=connection, stream=progress.stream,
            fix="this is a Syncline bug: keep the run log and report it; rerun to retry",
        )


def _follow(change: SchemaChange, loader: StreamLoader, target: LoadTarget,
            destination: Destination, progress: StreamProgress, observer: RunObserver,
            uncommitted: int) -> tuple[StreamLoader, LoadTarget]:
    """A schema change the source saw mid-read: new columns added now, or a warning."""
    progress.schema_changes.extend(change.changes)
    if change.stream is None:
        for text in change.changes:
            progress.notices.append(text)
            observer.warning(f"{target.stream.name}: {text}")
        return loader, target
    if uncommitted:
        raise InternalError(
            f"the source changed the schema with {uncommitted} rows not yet committed",
            connection=target.connection, stream=target.stream.name,
            fix="this is a Syncline bug: keep the run log and report it; rerun to retry")
    loader.abort()  # nothing is staged: its batches were committed with the last checkpoint
    # the new loader continues the build: the rows committed so far are still counted
    target = replace(target, stream=change.stream, restart_build=False, built_rows=loader.built)
    loader = destination.loader(target)
    progress.schema_changes.extend(c.describe() for c in loader.changes if c.action == "widen")
    return loader, target


def _fingerprint(source: Source, plan: StreamPlan, state: dict[str, Any] | None, fresh: bool
                 ) -> tuple[str | None, bool]:
    """The source's fingerprint for this build, and whether it moved since an interrupted one.

    A resumed full refresh keeps the rows copied before the interruption; they are
    current only if the source is unchanged since the build began (the fingerprint is
    taken before the first read, or by the read in its own snapshot). Appends are
    history and keep what they wrote.
    """
    if plan.mode != "full_refresh" or plan.write == "append":
        return None, False
    moved = False
    if not fresh:
        began = (state or {}).get("fingerprint")
        if began is not None and not source.changed_since(plan.stream, began):
            return began, False
        # it moved, or the source could not tell when the build began (or can since)
        moved = began is not None or source.fingerprint(plan.stream) is not None
        if not moved:
            return None, False
    if source.fingerprint_in_read:
        return None, moved  # the read's first checkpoint carries it
    return source.fingerprint(plan.stream), moved


def _zero_rows(plan: StreamPlan, progress: StreamProgress, options: LoadOptions, connection: str,
               observer: RunObserver) -> None:
    """A stream that usually reads many rows and now reads none is an anomaly, not a success."""
    if progress.rows_read or options.zero_rows == "ignore" or not options.recent_rows:
        return
    if plan.mode == "full_refresh":  # a full read that was large last time is never empty
        typical = options.recent_rows[0]
    elif len(options.recent_rows) >= 3:  # an incremental stream that steadily reads many
        typical = min(options.recent_rows[:3])
    else:  # after one big catch-up run, nothing new is normal
        return
    if typical < options.zero_rows_threshold:
        return
    message = f"read 0 rows where recent runs read about {typical:,}"
    fail = options.zero_rows == "fail" or (options.zero_rows == "auto" and plan.mode == "full_refresh")
    observer.zero_rows(plan.stream.name, typical, fail)
    if fail:
        raise DataError(
            message + ("; the existing table is kept" if plan.write == "replace" else ""),
            connection=connection, stream=plan.stream.name,
            fix="check the source (emptied table, wrong credentials or filter); if the table really "
            f"is empty now, run `syncline sync {connection} --stream {plan.stream.name} --allow-empty`, "
            "which replaces the table with the empty one (`zero_rows: warn` or ignore on the "
            "connection quiets this check, but a full refresh still needs --allow-empty to empty a "
            "table)",
        )
    progress.notices.append(message)
    observer.warning(f"{plan.stream.name}: {message}")


def _traced_reads(items: Iterator[Any]) -> Iterator[Any]:
    """The source's items, each wait for one a `read` span (with its rows and bytes)."""
    items = iter(items)
    while True:
        with tracing.span("read") as traced:
            try:
                item = next(items)
            except StopIteration:
                return
            if isinstance(item, pa.RecordBatch):
                tracing.note(traced, rows=item.num_rows, bytes=item.nbytes)
        yield item


def _commit(loader: Any, state: dict[str, Any], progress: StreamProgress, on_commit: Any) -> None:
    with tracing.span("commit") as traced:
        _commit_now(loader, state, progress, on_commit)
        tracing.note(traced, rows_committed=progress.rows_committed)


def _commit_now(loader: Any, state: dict[str, Any], progress: StreamProgress, on_commit: Any) -> None:
    result = loader.commit(state)
    progress.rows_committed += result.rows
    progress.rows_skipped += result.skipped
    progress.rows_quarantined += result.quarantined
    progress.commits += 1
    if on_commit:
        on_commit(state)
