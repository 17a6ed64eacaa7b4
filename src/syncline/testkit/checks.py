"""The connector checks: config, check, discover, and for each stream five reads that prove resumability."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from syncline.config import ConnectionConfig, StreamConfig, Workspace
from syncline.engine.endpoints import open_source
from syncline.engine.plan import SourceAbilities, StreamPlan, plan_connection
from syncline.schema import StreamSchema
from syncline.sources.base import Source
from syncline.testkit.reading import Read, beyond_end, read_stream, show, window_low

SOURCE_CHECKS = ("config", "check", "discover")
STREAM_CHECKS = ("full_read", "second_full_read", "incremental", "future_checkpoint", "kill_and_resume")
NOT_APPLICABLE = "not applicable: "
#: checkpoints a read must yield for a kill at the middle one to land mid-read
KILL_MARKS = 4


@dataclass(frozen=True)
class CheckResult:
    """One check's outcome; ``detail`` says what was seen, and on failure what is wrong and why."""

    name: str
    passed: bool
    detail: str
    stream: str | None = None


class _Failed(Exception):
    """A check's failure with its explanation."""


class _Results(list[CheckResult]):
    """The results so far; a check that raises is recorded as failed, with why."""

    def run(self, name: str, check: Callable[[], str], stream: str | None = None) -> bool:
        try:
            detail = check()
        except _Failed as exc:
            self.append(CheckResult(name, False, str(exc), stream))
            return False
        except Exception as exc:  # the kit reports a crashing connector instead of crashing
            self.append(CheckResult(name, False, f"{type(exc).__name__}: {exc}", stream))
            return False
        self.append(CheckResult(name, True, detail, stream))
        return True

    def not_run(self, after: str, names: tuple[str, ...], stream: str | None = None) -> None:
        self.extend(CheckResult(n, False, f"not run: {after} failed", stream) for n in names)


def run_checks(ws: Workspace, source_name: str, *, stream: str | None = None,
               batch_size: int = 1000) -> list[CheckResult]:
    """Run every check on one source of ``ws``, in order; checks after a failed prerequisite
    are reported as failed with "not run"."""
    results = _Results()
    box: dict[str, Any] = {}

    def config() -> str:
        box["source"] = open_source(ws, source_name)
        return f"source '{source_name}' ({getattr(ws.source(source_name), 'type', '?')}) is configured"

    if not results.run("config", config):
        results.not_run("config", SOURCE_CHECKS[1:] + STREAM_CHECKS)
        return list(results)
    source: Source = box["source"]
    try:
        if not results.run("check", lambda: _check(source)):
            results.not_run("check", SOURCE_CHECKS[2:] + STREAM_CHECKS)
        elif not results.run("discover", lambda: _discover(source, box, stream)):
            results.not_run("discover", STREAM_CHECKS)
        else:
            for schema in box["chosen"]:
                _stream_checks(ws, source_name, source, box["discovered"], schema, batch_size, results)
    finally:
        source.close()
    return list(results)


def _check(source: Source) -> str:
    source.check()
    return "the source answered"


def _discover(source: Source, box: dict[str, Any], only: str | None) -> str:
    streams = source.discover()
    box["discovered"] = streams
    if not streams:
        raise _Failed("the source offers no stream")
    problems = []
    for s in streams:
        if not s.columns:
            problems.append(f"stream '{s.name}' has no columns")
        for kind, names in (("primary key", s.primary_key), ("cursor candidate", s.cursor_candidates)):
            problems += [f"stream '{s.name}': {kind} '{n}' is not a column ({', '.join(s.column_names)})"
                         for n in names if s.column(n) is None]
    if problems:
        raise _Failed("; ".join(problems))
    box["chosen"] = [s for s in streams if only is None or s.name == only]
    if not box["chosen"]:
        raise _Failed(f"no stream named '{only}'; the source offers: {', '.join(s.name for s in streams)}")
    return f"{len(streams)} stream(s): " + ", ".join(
        f"{s.name} ({len(s.columns)} columns, key {', '.join(s.primary_key) or '-'})" for s in streams)


def plan_stream(ws: Workspace, source_name: str, source: Source, discovered: list[StreamSchema],
                schema: StreamSchema) -> StreamPlan:
    """The engine's plan for the stream: as a connection of the workspace sets it, else the defaults."""
    name, settings = "testkit", StreamConfig()
    for conn_name, conn in sorted(ws.connections.items()):
        if conn.source == source_name and conn.streams and schema.name in conn.streams:
            name, settings = conn_name, conn.streams[schema.name].model_copy(update={"selected": True})
            break
    conn = ConnectionConfig(source=source_name, destination="-", streams={schema.name: settings})
    abilities = SourceAbilities.of(source)
    return plan_connection(name, conn, discovered, abilities)[0]


def _stream_checks(ws: Workspace, source_name: str, source: Source, discovered: list[StreamSchema],
                   schema: StreamSchema, batch_size: int, results: _Results) -> None:
    on = schema.name
    box: dict[str, Any] = {}

    def full_read() -> str:
        plan = box["plan"] = plan_stream(ws, source_name, source, discovered, schema)
        # a window the source re-reads on every incremental read (its own, or `lookback:`)
        reread = source.reread(plan.stream) if plan.mode == "incremental" else None
        cursor = plan.cursor or (reread[0] if reread else None)
        box["window"] = (plan.lookback_s if plan.cursor else 0) + (
            reread[1] if reread and reread[0] == cursor else 0.0)
        # the column a checkpoint's position is made of, when the kit can tell
        box["track"] = cursor if plan.mode == "incremental" else (
            plan.primary_key[0] if len(plan.primary_key) == 1 else None)
        full = box["full"] = read_stream(source, plan, checkpoint=None, batch_size=batch_size,
                                         track=box["track"])
        if full.problems:
            raise _Failed("; ".join(dict.fromkeys(full.problems)))
        how = plan.mode + (f", cursor {plan.cursor}" if plan.cursor else "")
        return f"{full.records} records, {full.bad} bad, {len(full.checkpoints)} checkpoint(s) ({how})"

    if not results.run("full_read", full_read, on):
        results.not_run("full_read", STREAM_CHECKS[1:], on)
        return
    plan: StreamPlan = box["plan"]
    full: Read = box["full"]

    def again(checkpoint: dict[str, Any] | None, **kw: Any) -> Read:
        return read_stream(source, plan, checkpoint=checkpoint, **{"batch_size": batch_size, **kw})

    track: str | None = box["track"]
    window: float = box["window"]
    results.run("second_full_read", lambda: _second_read(full, again(None)), on)
    results.run("incremental", lambda: _incremental(plan, full, again, track, window), on)
    results.run("future_checkpoint", lambda: _future(full, track, again), on)
    # the engine's own rule: a full refresh the source cannot resume starts its build over
    resumes = plan.mode != "full_refresh" or source.full_refresh_resumes(plan.stream)
    results.run("kill_and_resume",
                lambda: _kill_and_resume(full, again, resumes, batch_size, track, window), on)


def _second_read(full: Read, second: Read) -> str:
    missing, extra = full.rows - second.rows, second.rows - full.rows
    if missing or extra:
        raise _Failed(
            f"the second full read differs from the first ({full.total} vs {second.total} records): "
            f"{sum(missing.values())} record(s) of the first are missing (e.g. {full.sample(missing)}) and "
            f"{sum(extra.values())} are new (e.g. {second.sample(extra)}); a re-read must yield the same "
            "records, or verification and resumption cannot be trusted")
    return f"the same {second.total} records again"


def _incremental(plan: StreamPlan, full: Read, again: Callable[..., Read], cursor: str | None,
                 window: float) -> str:
    if plan.mode != "incremental":
        return NOT_APPLICABLE + f"the stream is read in {plan.mode} mode"
    if full.total == 0:
        return NOT_APPLICABLE + "the stream is empty"
    if full.final is None:
        raise _Failed(f"the incremental read yielded {full.total} records but no checkpoint, so every "
                      "run would read them all again")
    low = window_low(full.high, window) if cursor else None
    after = again(full.final, track=cursor, below=low)
    lowest = "the largest of the full read" + (
        f", {show(full.high)}, less the {window:g} s lookback window the source documents" if window else "")
    problems = []
    trailing = full.total - full.checkpoints[-1][0]
    if trailing:
        problems.append(f"{trailing} record(s) came after the last checkpoint: they are committed under "
                        "the one before and read again by the next run; end every read with a "
                        "checkpoint (SDK: yield State(...) after the last record)")
    if cursor and after.older:
        problems.append(f"reading from the final checkpoint {_text(full.final)} yielded {after.older} "
                        f"record(s) with {cursor} below {show(low)}, {lowest}, "
                        f"e.g. {after.sample(after.rows)}: a resumed read must not go back")
    if not cursor and after.total:
        problems.append(f"reading from the final checkpoint {_text(full.final)} yielded {after.total} "
                        f"record(s), e.g. {after.sample(after.rows)}; nothing changed, so it must yield none")
    if problems:
        raise _Failed("; ".join(problems))
    bound = ""
    if cursor and after.total:
        bound = (f", none with {cursor} below {show(low)}, {lowest}" if low is not None else
                 f"; a {window:g} s window below {cursor} {show(full.high)} cannot be checked on text")
    return f"reading from the final checkpoint yielded {after.total} record(s){bound}"


def _future(full: Read, track: str | None, again: Callable[..., Read]) -> str:
    if full.final is None:
        return NOT_APPLICABLE + "the full read yielded no checkpoint"
    future = beyond_end(full.final, full.high) if track and full.high is not None else None
    if future is None:
        return NOT_APPLICABLE + (f"the final checkpoint {_text(full.final)} holds no cursor or key value "
                                 "to move past the end")
    after = again(future)
    if after.total:
        raise _Failed(f"a checkpoint beyond the end, {_text(future)}, still yielded {after.total} "
                      f"record(s), e.g. {after.sample(after.rows)}: the source ignores or misreads "
                      "its checkpoint")
    return f"a checkpoint beyond the end, {_text(future)}, yielded nothing"


def _kill_and_resume(full: Read, again: Callable[..., Read], resumes: bool, batch_size: int,
                     track: str | None, window: float) -> str:
    """Stop a read halfway, at a checkpoint, and go on as the engine would: from that checkpoint,
    or, for a full refresh the source says it cannot resume, from the start into a new build.
    A read with too few checkpoints for a kill to land mid-read is read again in smaller
    batches; records re-read in a documented lookback window may arrive twice, none older."""
    marks, size = len(full.checkpoints), batch_size
    if marks < KILL_MARKS and full.total > marks:
        size = max(1, full.total // (KILL_MARKS + 1))
        marks = len(again(None, batch_size=size).checkpoints)
    if marks < 2:
        return NOT_APPLICABLE + (
            f"the read yields {'no checkpoint' if not marks else 'one checkpoint, at its end'}, even "
            f"in batches of {size}: a killed read starts over from the previous run's checkpoint")
    stop = (marks + 1) // 2
    before = again(None, stop_at=stop, batch_size=size, track=track)
    if before.final is None:
        raise _Failed(f"the read yielded no checkpoint this time, where the full read yielded {marks}")
    low = window_low(before.high, window) if track and window else None
    if resumes:
        after = again(before.final, batch_size=size, track=track, below=low)
        union = before.rows + after.rows
        where = (f"stopped at checkpoint {stop} of {marks} after {before.total} records and resumed "
                 f"from {_text(before.final)}")
    else:  # the partial build is dropped: only the new read is published
        after = again(None, batch_size=size)
        union = after.rows
        where = (f"stopped at checkpoint {stop} of {marks} after {before.total} records; the source "
                 "cannot resume a full refresh, so the build restarted from the first record")
    lost, twice = full.rows - union, union - full.rows
    overlap = sum(twice.values()) if window and not after.older else 0
    if lost or (twice and not overlap):
        parts = []
        if lost:
            parts.append(f"{sum(lost.values())} record(s) lost, e.g. {full.sample(lost)}")
        if twice:
            older = f", {after.older} of them below {show(low)}, outside the lookback window" if window else ""
            parts.append(f"{sum(twice.values())} record(s) read twice{older}, e.g. {after.sample(twice)}")
        raise _Failed(f"{where}: " + "; ".join(parts))
    batches = f" (in batches of {size})" if size != batch_size else ""
    which = "the other" if resumes else "all"
    twice_text = (f"none lost, {overlap} re-read in the {window:g} s lookback window" if overlap
                  else "none lost, none twice")
    return f"{where}{batches}: {which} {after.total} arrived, {twice_text}"


def _text(value: Any) -> str:
    text = json.dumps(value, default=str, sort_keys=True)
    return text if len(text) <= 200 else text[:197] + "..."


def format_results(results: list[CheckResult]) -> str:
    """One line per check (details indented below when long), then a summary line."""
    width = max((len(r.stream or "") for r in results), default=0)
    lines = []
    for r in results:
        mark = "PASS" if r.passed else "FAIL"
        lines.append(f"{mark}  {r.name:<18} {r.stream or '':<{width}}  {r.detail}".rstrip())
    failed = sum(not r.passed for r in results)
    lines.append(f"{len(results) - failed} of {len(results)} checks passed"
                 + (f"; {failed} failed" if failed else ""))
    return "\n".join(lines)


def exit_status(results: list[CheckResult]) -> int:
    """The CLI's exit status: 1 when any check failed."""
    return 1 if any(not r.passed for r in results) else 0
