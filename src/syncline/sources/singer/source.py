"""Singer source: any Singer tap run as a subprocess, its STATE committed with the rows before it."""

from __future__ import annotations

import json
import os
import shlex
import shutil
import signal
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from syncline.errors import ConfigurationError, SourceError, TransientError
from syncline.schema import StreamSchema
from syncline.sources.base import Source, SourceContext
from syncline.sources.singer.process import (
    Tap,
    TapFolder,
    kill_group,
    popen,
    signal_name,
    stderr_lines,
    told,
)
from syncline.sources.singer.schema import (
    Batcher,
    catalog_schema,
    metadata_map,
    read_messages,
    select_stream,
    stream_id,
)
from syncline.sources.singer.tap_errors import own_error
from syncline.stream import ReadRequest, StreamItem

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
        default_factory=dict, description="The tap's settings, written to a file readable by "
        "the owner only in the workspace's `.syncline/tmp/` (removed when the tap ends, or at "
        "the next start after a kill) and passed as --config.")
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


class SingerSource(Source):
    config: SingerConfig
    incremental_needs_cursor = False  # the tap tracks its own position in its STATE

    def __init__(self, name: str, config: BaseModel, context: SourceContext) -> None:
        super().__init__(name, config, context)
        self._catalog: dict[str, Any] | None = None
        self._taps: set[Tap] = set()

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

    def _tap_failed(self, what: str, rc: int, lines: list[str], *,
                    committed: bool = False) -> SourceError | TransientError:
        """A failed tap, its own error first (see `tap_errors`), the setting it names, the fix."""
        how = f"exited with code {rc}"
        if rc < 0:
            how = f"was killed by {signal_name(-rc)}"
        resumes = ("; rows up to its last STATE are committed and the next run resumes from there"
                   if committed else "")
        error = own_error(lines, self.config.config) if rc > 0 else None
        if error is None:
            message = f"source '{self.name}': the tap {how} during {what}{told(lines)}"
            fix = "read the tap's messages above and fix its config"
        else:
            message = f"source '{self.name}': the tap {how} during {what}: {error.text}"
            if error.at:
                message += f" (raised at {error.at})"
            fix = f"check the tap's settings under `sources.{self.name}.config`"
            if error.setting is not None:
                key, value = error.setting
                message += f"; the error quotes setting `{key}` ({value!r})"
                fix += f", starting with `{key}`"
        if rc < 0 or rc in _TRANSIENT_EXIT:
            return TransientError(message, fix="the attempt is retried from the last committed STATE")
        return SourceError(message, fix=fix + resumes)

    def _folder(self) -> TapFolder:
        return TapFolder(self.context.private_dir() / "tmp")

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
        with self._folder() as folder:
            argv += ["--config", folder.write("config.json", self.config.config), "--discover"]
            proc = popen(argv, self._env(), self.context.root)
            try:
                out, err = proc.communicate(timeout=self.config.discover_timeout_s)
            except subprocess.TimeoutExpired:
                kill_group(proc, signal.SIGKILL)
                proc.communicate()
                raise TransientError(
                    f"source '{self.name}': the tap's discovery did not finish within "
                    f"{self.config.discover_timeout_s:g}s",
                    fix="raise `discover_timeout_s`, or give a `catalog:` file") from None
        if proc.returncode != 0:
            raise self._tap_failed("discovery (--discover)", proc.returncode, stderr_lines(err))
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
        """The tap runs: its catalog file is read, or its `--discover` run (a tap that cannot
        reach its own source fails here, not at the first sync), and `streams:` are its own."""
        self._command()
        self._entries()

    def discover(self) -> list[StreamSchema]:
        return [catalog_schema(e) for e in self._entries().values()]

    def incremental_without_cursor(self, stream: StreamSchema) -> bool:
        """A tap reads only what changed when the stream has a replication key to follow, or
        reads a change log (LOG_BASED); otherwise its "incremental" is the whole table again."""
        entry = self._entries().get(stream.name)
        meta = metadata_map(entry).get((), {}) if entry is not None else {}
        method = meta.get("forced-replication-method") or meta.get("replication-method")
        return bool(stream.cursor_candidates) or method == "LOG_BASED"

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
        folder = self._folder()
        tap: Tap | None = None
        try:
            argv = [*self._command(), "--config", folder.write("config.json", self.config.config),
                    self.config.catalog_flag, folder.write("catalog.json", catalog)]
            if state is not None:
                argv += ["--state", folder.write("state.json", state)]
            tap = Tap(argv, self._env(), self.context.root)
            self._taps.add(tap)
            yield from self._messages(tap, request, {name, str(entry.get("stream") or name)})
        finally:
            if tap is not None:
                tap.stop()
                self._taps.discard(tap)
            folder.close()

    def _messages(self, tap: Tap, request: ReadRequest, names: set[str]) -> Iterator[StreamItem]:
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
                                   tap.stderr_lines(), committed=True)
        yield from batch.flush()

    def full_refresh_resumes(self, stream: StreamSchema) -> bool:
        # A tap in full-table mode emits STATE without a position (a version, the stream
        # it is on) and reads from its first row again when given it.
        return False

    def abandon(self) -> None:
        # A read abandoned by the engine (a watchdog, a failed commit) may still wait on its
        # tap; killing it ends that read, whose own thread then closes the pipes.
        for tap in list(self._taps):
            tap.kill()

    def close(self) -> None:
        self.abandon()

