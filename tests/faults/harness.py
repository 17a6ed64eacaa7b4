"""Harness for fault scenarios: a workspace under test, `syncline sync` processes to kill, and the tally.

Each scenario builds a ``Pipeline`` (an oracle source table, a DuckDB destination and
a workspace file), runs real ``python -m syncline sync`` processes with a clean
environment (every ``SYNCLINE_*`` variable removed but those the scenario sets),
breaks them (failpoints, SIGKILL, SIGTERM, locks, a full disk, a faulty network),
ends with a clean run and asks the oracle. ``Scenario`` counts the runs and prints
one summary line; ``Totals`` adds them up for the session's last line.
"""

from __future__ import annotations

import contextlib
import os
import random
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import duckdb
import pytest
import yaml

from faults.oracle import (
    Counts,
    Expected,
    SourceTable,
    SqliteTable,
    compare,
    destination_rows,
    history_breaks,
)
from services import skip_or_fail

MERGE: dict[str, Any] = {"mode": "incremental", "write": "merge", "cursor": "updated_at"}
APPEND: dict[str, Any] = {"mode": "incremental", "write": "append", "cursor": "updated_at"}
REPLACE: dict[str, Any] = {"mode": "full_refresh", "write": "replace"}
HISTORY: dict[str, Any] = {"mode": "incremental", "write": "history", "cursor": "updated_at"}


@dataclass(frozen=True)
class Size:
    """How big a scenario's source is, and how it is batched."""

    rows: int
    batch: int

    @property
    def batches(self) -> int:
        return -(-self.rows // self.batch)


CI = Size(30_000, 3_000)
FULL = Size(120_000, 6_000)


def matrix(ci_seeds: list[int], full_seeds: list[int], ci: Size = CI, full: Size = FULL) -> list[Any]:
    """(size, seed) parameters: the CI subset, then the `faults_full` ones with readable ids."""
    return [pytest.param(ci, s, id=f"seed{s}") for s in ci_seeds] + [
        pytest.param(full, s, id=f"full-seed{s}", marks=pytest.mark.faults_full) for s in full_seeds
    ]


def clean_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    """This process's environment without any SYNCLINE_* variable, plus ``extra``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("SYNCLINE_")}
    env["SYNCLINE_RETRY_BASE_S"] = "0"
    env.update(extra or {})
    return env


@dataclass(frozen=True)
class Outcome:
    """How one `syncline` process ended."""

    code: int
    stdout: str
    stderr: str
    seconds: float

    @property
    def killed(self) -> bool:
        return self.code == -signal.SIGKILL

    @property
    def output(self) -> str:
        return self.stdout + self.stderr

    def __str__(self) -> str:
        return f"exit {self.code} after {self.seconds:.1f}s\n{self.output[-3000:]}"


@dataclass(frozen=True)
class RunRow:
    """A run as the metadata store recorded it, with the failure class of each attempt."""

    id: int
    status: str
    attempts: int
    rows_read: int
    rows_committed: int
    failure_class: str | None
    failure_message: str | None
    attempt_failures: tuple[tuple[str | None, str | None], ...]


@dataclass
class Totals:
    """The session's tally over every scenario."""

    runs: int = 0
    counts: Counts = field(default_factory=Counts)
    lines: list[str] = field(default_factory=list)
    known_bugs: int = 0
    unfinished: int = 0

    def line(self) -> str:
        extra = []
        if self.unfinished:
            extra.append(f"{self.unfinished} scenario(s) failed before the oracle")
        if self.known_bugs:
            extra.append(f"{self.known_bugs} known-bug scenario(s) not counted")
        tail = f" ({'; '.join(extra)})" if extra else ""
        return f"faults: {self.runs} runs, {self.counts.describe()}{tail}"


class Scenario:
    """One scenario: counts its `sync` processes, holds the final oracle, prints its line."""

    def __init__(self, name: str, totals: Totals, known_bug: str | None = None) -> None:
        self.name = name
        self.totals = totals
        self.known_bug = known_bug  # an xfail reason: its counts stay out of the totals
        self.runs = 0
        self.counts: Counts | None = None
        self.notes: list[str] = []
        self.started = time.monotonic()

    def note(self, text: str) -> None:
        self.notes.append(text)

    def final(self, counts: Counts) -> None:
        """Record the oracle of the final clean run and require it to be all zero."""
        self.counts = counts
        assert counts.clean, f"{self.name}: the oracle found {counts.describe()}"

    def finish(self) -> str:
        seconds = time.monotonic() - self.started
        verdict = self.counts.describe() if self.counts else "no final oracle (failed before it)"
        extra = f" ({'; '.join(self.notes)})" if self.notes else ""
        line = f"fault {self.name}: {self.runs} runs, {verdict}, {seconds:.1f}s{extra}"
        if self.known_bug:
            line = f"{line} [known engine bug, not counted]"
            self.totals.known_bugs += 1
        else:
            self.totals.runs += self.runs
            self.totals.counts = self.totals.counts + (self.counts or Counts())
            self.totals.unfinished += self.counts is None
        self.totals.lines.append(line)
        print(line)
        return line


@dataclass
class Pipeline:
    """A workspace under test: an oracle source, one stream `events`, a DuckDB destination."""

    scenario: Scenario
    root: Path
    source: SourceTable
    source_config: dict[str, Any]
    stream: str
    stream_config: dict[str, Any]
    batch_size: int
    duckdb_path: Path
    connection: dict[str, Any] = field(default_factory=dict)
    schema: str = "dst"
    table: str = "events"

    def __post_init__(self) -> None:
        self.write()

    @property
    def write_mode(self) -> str:
        return str(self.stream_config["write"])

    @property
    def observes_deletes(self) -> bool:
        """Only a full re-read (replace, or history) sees hard deletes; a cursor never does."""
        return self.stream_config["mode"] == "full_refresh" and self.write_mode in ("replace", "history")

    def write(self, **connection: Any) -> None:
        """(Re)write syncline.yaml; ``connection`` adds or overrides connection keys."""
        self.connection.update(connection)
        conn = {"source": "src", "destination": "wh", "destination_schema": self.schema,
                "batch_size": self.batch_size, "max_attempts": 1,
                "streams": {self.stream: self.stream_config}} | self.connection
        doc = {"version": 1, "sources": {"src": self.source_config},
               "destinations": {"wh": {"type": "duckdb", "path": str(self.duckdb_path)}},
               "connections": {"c": conn}}
        (self.root / "syncline.yaml").write_text(yaml.safe_dump(doc), encoding="utf-8")

    # -- processes --------------------------------------------------------------------

    def start(self, *args: str, failpoints: str | None = None,
              env: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
        extra = dict(env or {})
        if failpoints:
            extra["SYNCLINE_FAILPOINTS"] = failpoints
        if args and args[0] == "sync":
            self.scenario.runs += 1
        return subprocess.Popen(
            [sys.executable, "-m", "syncline", *args, "-w", str(self.root)],
            env=clean_env(extra), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        )

    def sync(self, *, failpoints: str | None = None, kill_after_s: float | None = None,
             term_after_s: float | None = None, full_refresh: bool = False,
             env: dict[str, str] | None = None, timeout: float = 300) -> Outcome:
        """One `syncline sync c`; a SIGKILL/SIGTERM lands that long after the run has started."""
        since = self.last_run_id()
        started = time.monotonic()
        proc = self.start("sync", "c", *(["--full-refresh"] if full_refresh else []),
                          failpoints=failpoints, env=env)
        with killed_on_error(proc):
            for sig, delay in ((signal.SIGKILL, kill_after_s), (signal.SIGTERM, term_after_s)):
                if delay is not None and self.wait_until_running(proc, since):
                    time.sleep(delay)
                    if proc.poll() is None:
                        proc.send_signal(sig)
            return finish(proc, started, timeout)

    def clean_sync(self, **kwargs: Any) -> Outcome:
        """A run with no fault injected: it must succeed."""
        out = self.sync(**kwargs)
        assert out.code == 0, f"the clean run failed: {out}"
        return out

    def cli(self, *args: str) -> Outcome:
        started = time.monotonic()
        return finish(self.start(*args), started, 120)

    def wait_until_running(self, proc: subprocess.Popen[bytes], since: int, timeout: float = 60) -> bool:
        """Wait until a run newer than ``since`` is recorded as running; False if ``proc`` ended first."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                return False
            with contextlib.suppress(sqlite3.Error):
                if self._metadata("SELECT 1 FROM runs WHERE id > ? AND status = 'running'", [since]):
                    return True
            time.sleep(0.02)
        raise AssertionError(f"no run started within {timeout}s")

    # -- what the metadata store and the destination hold -----------------------------

    def _metadata(self, sql: str, params: list[Any] | None = None) -> list[tuple[Any, ...]]:
        path = self.root / ".syncline" / "metadata.db"
        if not path.exists():
            return []
        con = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=10)
        try:
            return con.execute(sql, params or []).fetchall()
        finally:
            con.close()

    def last_run_id(self) -> int:
        try:
            rows = self._metadata("SELECT max(id) FROM runs")
        except sqlite3.OperationalError:  # no tables yet
            return 0
        return int(rows[0][0] or 0) if rows else 0

    def runs(self) -> list[RunRow]:
        out = []
        for r in self._metadata("SELECT id, status, attempts, rows_read, rows_committed, failure_class, "
                                "failure_message FROM runs WHERE connection = 'c' ORDER BY id"):
            attempts = self._metadata("SELECT failure_class, failure_message FROM attempts "
                                      "WHERE run_id = ? ORDER BY number", [r[0]])
            out.append(RunRow(*r, attempt_failures=tuple((a[0], a[1]) for a in attempts)))
        return out

    def failed_attempts(self, since: int) -> int:
        """Failed attempts of runs newer than ``since`` so far."""
        with contextlib.suppress(sqlite3.Error):
            rows = self._metadata("SELECT count(*) FROM attempts WHERE run_id > ? AND status = 'failed'",
                                  [since])
            return int(rows[0][0]) if rows else 0
        return 0

    def last_run(self) -> RunRow:
        return self.runs()[-1]

    def dest(self, sql: str, params: list[Any] | None = None) -> list[tuple[Any, ...]]:
        con = duckdb.connect(str(self.duckdb_path), read_only=True)
        try:
            con.execute("SET TimeZone = 'UTC'")
            return con.execute(sql, params or []).fetchall()
        finally:
            con.close()

    def rows(self) -> list[tuple[int, int, bool | None]] | None:
        return destination_rows(self.duckdb_path, self.schema, self.table)

    def check(self, expected: Expected | None = None, *, observe_deletes: bool | None = None) -> Counts:
        """The oracle: the destination now against ``expected`` (default: the source now)."""
        counts = compare(expected or self.source.expected(), self.rows(), write=self.write_mode,
                         observe_deletes=self.observes_deletes if observe_deletes is None
                         else observe_deletes)
        if self.write_mode == "history":
            counts = counts + Counts(broken=history_breaks(self.duckdb_path, self.schema, self.table))
        return counts

    def duplicates_now(self) -> int:
        """Duplicate keys (merge/replace) or duplicate (key, version)s (append) right now."""
        rows = self.rows() or []
        keys = [(k, v) if self.write_mode == "append" else k for k, v, deleted in rows if not deleted]
        return len(keys) - len(set(keys))

    def snapshot(self) -> list[tuple[Any, ...]]:
        """Every column of the live table, in key order: to prove it did not change."""
        return self.dest(f'SELECT * EXCLUDE (_syncline_synced_at) FROM "{self.schema}"."{self.table}" '
                         "ORDER BY id, version")

    def finish(self) -> None:
        """The scenario's last word: a clean run, then the oracle must count zero everywhere."""
        self.clean_sync()
        self.scenario.final(self.check())


@contextlib.contextmanager
def killed_on_error(*procs: subprocess.Popen[bytes]) -> Iterator[None]:
    """A failing scenario leaves no `syncline` process behind (a hung one would hold its locks)."""
    try:
        yield
    except BaseException:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        raise


def finish(proc: subprocess.Popen[bytes], started: float, timeout: float) -> Outcome:
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, err = proc.communicate()
        raise AssertionError(f"syncline did not finish within {timeout}s: {err.decode()[-2000:]}") from None
    return Outcome(proc.returncode, out.decode(errors="replace"), err.decode(errors="replace"),
                   time.monotonic() - started)


def sqlite_pipeline(scenario: Scenario, root: Path, stream: dict[str, Any], size: Size,
                    rng: random.Random, *, payload_bytes: int = 8, duckdb_path: Path | None = None,
                    **connection: Any) -> Pipeline:
    """A SQLite source of ``size.rows`` oracle rows, synced into ``root/wh.duckdb``."""
    source = SqliteTable(root / "src.db")
    source.create(size.rows, rng, payload_bytes)
    return Pipeline(
        scenario=scenario, root=root, source=source,
        source_config={"type": "sqlite", "path": "src.db", "tables": ["events"]},
        stream="events", stream_config=dict(stream), batch_size=size.batch,
        duckdb_path=duckdb_path or root / "wh.duckdb", connection=dict(connection),
    )


@contextlib.contextmanager
def tmpfs(path: Path, size: str) -> Iterator[Path]:
    """A tmpfs of ``size`` mounted at ``path`` (root only); skips the test (fails it in CI) if mounting is not allowed."""
    path.mkdir(parents=True, exist_ok=True)
    if shutil.which("mount") is None:
        skip_or_fail("no `mount` command: the disk-full scenario needs a tmpfs")
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)],
                          capture_output=True, text=True)
    if done.returncode != 0:
        skip_or_fail(f"cannot mount a tmpfs for the disk-full scenario: {done.stderr.strip()}")
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], check=False)


def remount(path: Path, size: str) -> None:
    subprocess.run(["mount", "-o", f"remount,size={size}", str(path)], check=True)
