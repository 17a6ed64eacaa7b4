"""Singer source: any Singer tap run as a subprocess, its STATE committed with the rows before it."""

from __future__ import annotations

import json
import os
import select
import shlex
import shutil
import signal
import subprocess
import tempfile
import threading
from collections import deque
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from syncline.errors import ConfigurationError, SourceError, TransientError
from syncline.schema import StreamSchema
from syncline.sources.base import Source, SourceContext
from syncline.sources.singer_schema import (
    Batcher,
    catalog_schema,
    read_messages,
    select_stream,
    stream_id,
)
from syncline.stream import ReadRequest, StreamItem

_TAIL_LINES = 12  # stderr lines quoted in an error message
_MAX_LINE = 64 << 20  # one Singer message; beyond this the tap is surely broken
_IDLE_S = 1.0  # a quiet tap gets what it already covered by a STATE committed after this
_GRACE_S = 5.0  # between SIGTERM and SIGKILL when a tap is stopped
_TRANSIENT_EXIT = {75}  # EX_TEMPFAIL


class SingerConfig(BaseModel):
    """A Singer tap executable, run once for discovery and once per stream read."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    type: Literal["singer"] = Field(description="Source type.")
    command: str | list[str] = Field(
        description="The tap executable and fixed arguments (a string is split like a shell "
        "would); a path with a slash starts at the workspace folder, a bare name is looked up "
        "in PATH.")
    config: dict[str, Any] = Field(
        default_factory=dict, description="The tap's settings, written to a private temporary "
        "file passed as --config.")
    catalog: str | None = Field(
        None, description="Catalog JSON file (relative to the workspace folder); default: the "
        "output of `TAP --discover`.")
    streams: list[str] | None = Field(
        None, description="Only these streams (tap_stream_id or stream name); default: all.")
    env: dict[str, str] = Field(
        default_factory=dict, description="Extra environment variables for the tap, which "
        "otherwise inherits Syncline's environment without its SYNCLINE_* variables.")
    discover_timeout_s: float = Field(
        120, gt=0, description="Discovery running longer than this fails the attempt as transient.")
    catalog_flag: Literal["--catalog", "--properties"] = Field(
        "--catalog", description="How the tap takes its catalog; older taps use --properties.")

    @field_validator("command")
    @classmethod
    def _not_empty(cls, value: str | list[str]) -> str | list[str]:
        if not (shlex.split(value) if isinstance(value, str) else value):
            raise ValueError("name the tap executable")
        return value


class _Tap:
    """One running tap: stdout as lines (None after a quiet second), the tail of stderr kept."""

    def __init__(self, argv: list[str], env: dict[str, str], cwd: str) -> None:
        self.proc = _popen(argv, env, cwd)
        self.tail: deque[str] = deque(maxlen=_TAIL_LINES)
        self._drain = threading.Thread(target=self._read_stderr, name="singer-stderr", daemon=True)
        self._drain.start()

    def _read_stderr(self) -> None:
        assert self.proc.stderr is not None
        try:
            while raw := self.proc.stderr.readline(1 << 16):  # bounded: a long line is cut
                text = raw.decode("utf-8", "replace").rstrip()
                if text:
                    self.tail.append(text[:1000])
        except (OSError, ValueError):
            pass  # closed by stop() while a grandchild of the tap still held it open

    def lines(self) -> Iterator[bytes | None]:
        assert self.proc.stdout is not None
        fd, partial = self.proc.stdout.fileno(), bytearray()
        while True:
            if not select.select([fd], [], [], _IDLE_S)[0]:
                yield None
                continue
            chunk = os.read(fd, 1 << 16)
            if not chunk:
                break
            if b"\n" not in chunk:
                partial += chunk
                if len(partial) > _MAX_LINE:
                    raise SourceError(f"the tap printed a line longer than {_MAX_LINE >> 20} MiB",
                                      fix="check the tap: a Singer message is one JSON line")
                continue
            parts = chunk.split(b"\n")
            yield bytes(partial + parts[0])
            yield from parts[1:-1]
            partial = bytearray(parts[-1])
        if partial:
            yield bytes(partial)

    def stderr_text(self) -> str:
        self._drain.join(timeout=2.0)
        lines = list(self.tail)
        return ("; its last messages:\n    " + "\n    ".join(lines)) if lines else " and printed nothing"

    def kill(self) -> None:
        """Stop the tap's process group if it still runs, and reap it."""
        if self.proc.poll() is None:
            _kill_group(self.proc, signal.SIGTERM)
            try:
                self.proc.wait(timeout=_GRACE_S)
            except subprocess.TimeoutExpired:
                _kill_group(self.proc, signal.SIGKILL)
                self.proc.wait()

    def stop(self) -> None:
        """Kill the tap if needed and close its pipes (only by the thread that reads them)."""
        self.kill()
        self._drain.join(timeout=1.0)
        for pipe in (self.proc.stdout, self.proc.stderr):
            if pipe is not None:
                pipe.close()


def _popen(argv: list[str], env: dict[str, str], cwd: str) -> subprocess.Popen[bytes]:
    try:
        # A session of its own, so the whole group (wrapper scripts and all) can be stopped.
        return subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, env=env, cwd=cwd, start_new_session=True)
    except OSError as exc:
        raise ConfigurationError(f"cannot start the tap {argv[0]}: {exc}",
                                 fix="check `command:` names an executable tap (a script needs "
                                 "a #! line)") from None


def _kill_group(proc: subprocess.Popen[bytes], sig: signal.Signals) -> None:
    try:
        os.killpg(proc.pid, sig)
    except (ProcessLookupError, PermissionError):
        pass


def _signal_name(number: int) -> str:
    try:
        return signal.Signals(number).name
    except ValueError:
        return f"signal {number}"


class SingerSource(Source):
    config: SingerConfig
    incremental_needs_cursor = False  # the tap tracks its own position in its STATE

    def __init__(self, name: str, config: BaseModel, context: SourceContext) -> None:
        super().__init__(name, config, context)
        self._catalog: dict[str, Any] | None = None
        self._taps: set[_Tap] = set()

    # -- running the tap -------------------------------------------------------------------

    def _command(self) -> list[str]:
        cmd = self.config.command
        parts = shlex.split(cmd) if isinstance(cmd, str) else list(cmd)
        exe = os.path.expanduser(parts[0])
        if "/" in exe:
            path = Path(self.context.root) / exe  # an absolute path replaces the root
            if not (path.is_file() and os.access(path, os.X_OK)):
                raise ConfigurationError(
                    f"source '{self.name}': tap executable {path} does not exist or is not executable",
                    fix="correct `command:` (relative paths start at the workspace folder) or chmod +x it")
            return [str(path), *parts[1:]]
        found = shutil.which(exe, path=self._env().get("PATH"))
        if found is None:
            raise ConfigurationError(
                f"source '{self.name}': tap executable '{exe}' is not in PATH",
                fix=f"install the tap (e.g. `pipx install {exe}`) or give its path in `command:`")
        return [found, *parts[1:]]

    def _env(self) -> dict[str, str]:
        # Syncline's own settings (the metadata store URL among them) are none of the tap's business.
        inherited = {k: v for k, v in os.environ.items() if not k.startswith("SYNCLINE_")}
        return {**inherited, **self.config.env}

    def _tap_failed(self, what: str, rc: int, tail: str) -> SourceError | TransientError:
        how = f"exited with code {rc}"
        if rc < 0:
            how = f"was killed by {_signal_name(-rc)}"
        message = f"source '{self.name}': the tap {how} during {what}{tail}"
        if rc < 0 or rc in _TRANSIENT_EXIT:
            return TransientError(message, fix="the attempt is retried from the last committed STATE")
        return SourceError(message, fix="read the tap's messages above and fix its config; rows up "
                           "to its last STATE are committed and the next run resumes from there")

    @staticmethod
    def _write(folder: str, name: str, value: Any) -> str:
        path = os.path.join(folder, name)
        with os.fdopen(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), "w") as f:
            json.dump(value, f, default=str)  # the tap config may hold secrets: owner only
        return path

    # -- discovery -------------------------------------------------------------------------

    def _load_catalog(self) -> dict[str, Any]:
        if self._catalog is None:
            self._catalog = self._read_catalog() if self.config.catalog else self._run_discovery()
        return self._catalog

    def _read_catalog(self) -> dict[str, Any]:
        assert self.config.catalog is not None
        path = Path(self.context.root) / os.path.expanduser(self.config.catalog)
        try:
            doc = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise ConfigurationError(f"source '{self.name}': cannot read catalog {path}: {exc}",
                                     fix="point `catalog:` at a Singer catalog JSON file, or remove "
                                     "it to run the tap's discovery") from None
        return self._valid_catalog(doc, f"catalog file {path}")

    def _run_discovery(self) -> dict[str, Any]:
        argv = self._command()
        folder = tempfile.mkdtemp(prefix="syncline-singer-")
        try:
            argv += ["--config", self._write(folder, "config.json", self.config.config), "--discover"]
            proc = _popen(argv, self._env(), self.context.root)
            try:
                out, err = proc.communicate(timeout=self.config.discover_timeout_s)
            except subprocess.TimeoutExpired:
                _kill_group(proc, signal.SIGKILL)
                proc.communicate()
                raise TransientError(
                    f"source '{self.name}': the tap's discovery did not finish within "
                    f"{self.config.discover_timeout_s:g}s",
                    fix="raise `discover_timeout_s`, or give a `catalog:` file") from None
        finally:
            shutil.rmtree(folder, ignore_errors=True)
        if proc.returncode != 0:
            lines = [ln for ln in err.decode("utf-8", "replace").splitlines() if ln.strip()]
            tail = "; its last messages:\n    " + "\n    ".join(ln[:1000] for ln in lines[-_TAIL_LINES:])
            raise self._tap_failed("discovery (--discover)", proc.returncode,
                                   tail if lines else " and printed nothing")
        try:
            doc = json.loads(out)
        except ValueError as exc:
            raise SourceError(f"source '{self.name}': the tap's --discover output is not JSON ({exc})",
                              fix="check the tap prints its catalog on stdout and logs on stderr, "
                              "or give a `catalog:` file") from None
        return self._valid_catalog(doc, "the tap's --discover output")

    def _valid_catalog(self, doc: Any, what: str) -> dict[str, Any]:
        entries = doc.get("streams") if isinstance(doc, dict) else None
        if not isinstance(entries, list) or not all(isinstance(e, dict) and stream_id(e)
                                                    for e in entries):
            raise SourceError(f"source '{self.name}': {what} is not a Singer catalog "
                              "(a `streams` list of entries with a tap_stream_id)",
                              fix="check the tap's version and its discovery output")
        assert isinstance(doc, dict)
        return doc

    def _entries(self) -> dict[str, dict[str, Any]]:
        entries = {stream_id(e): e for e in self._load_catalog()["streams"]}
        wanted = self.config.streams
        if wanted is None:
            return entries
        aliases = {**{str(e.get("stream")): k for k, e in entries.items()}, **{k: k for k in entries}}
        unknown = [w for w in wanted if w not in aliases]
        if unknown:
            raise ConfigurationError(f"source '{self.name}': the tap has no stream {', '.join(unknown)}",
                                     fix=f"use some of: {', '.join(sorted(entries))}")
        return {aliases[w]: entries[aliases[w]] for w in wanted}

    def check(self) -> None:
        self._command()
        if self.config.catalog:
            self._load_catalog()

    def discover(self) -> list[StreamSchema]:
        return [catalog_schema(e) for e in self._entries().values()]

    # -- reading ---------------------------------------------------------------------------

    def read(self, request: ReadRequest) -> Iterator[StreamItem]:
        name = request.stream.name
        entry = self._entries().get(name)
        if entry is None:
            raise ConfigurationError(f"source '{self.name}' has no stream '{name}'",
                                     fix=f"use one of: {', '.join(sorted(self._entries()))}")
        catalog = select_stream(self._load_catalog(), name, incremental=request.mode != "full_refresh",
                                cursor=request.cursor)
        # A fresh full refresh has no checkpoint; a resumed one continues from its own STATE.
        state = (request.checkpoint or {}).get("singer_state")
        folder = tempfile.mkdtemp(prefix="syncline-singer-")
        tap: _Tap | None = None
        try:
            argv = [*self._command(), "--config", self._write(folder, "config.json", self.config.config),
                    self.config.catalog_flag, self._write(folder, "catalog.json", catalog)]
            if state is not None:
                argv += ["--state", self._write(folder, "state.json", state)]
            tap = _Tap(argv, self._env(), self.context.root)
            self._taps.add(tap)
            yield from self._messages(tap, request, {name, str(entry.get("stream") or name)})
        finally:
            if tap is not None:
                tap.stop()
                self._taps.discard(tap)
            shutil.rmtree(folder, ignore_errors=True)

    def _messages(self, tap: _Tap, request: ReadRequest, names: set[str]) -> Iterator[StreamItem]:
        batch = Batcher(request.stream, request.batch_size)
        try:
            yield from read_messages(tap.lines(), batch, names, self.name)
        except SourceError:
            yield from batch.commit()  # what a STATE covered is safe before failing
            raise
        rc = tap.proc.wait()
        yield from batch.commit()
        if rc != 0:
            raise self._tap_failed(f"the read of stream '{request.stream.name}'", rc,
                                   tap.stderr_text())
        yield from batch.flush()

    def full_refresh_resumes(self, stream: StreamSchema) -> bool:
        # A tap in full-table mode emits STATE without a position (a version, the stream
        # it is on) and reads from its first row again when given it.
        return False

    def close(self) -> None:
        # A read abandoned by the engine (a watchdog, a failed commit) may still wait on its
        # tap; killing it ends that read, whose own thread then closes the pipes.
        for tap in list(self._taps):
            tap.kill()

