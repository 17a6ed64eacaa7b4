"""A Singer tap as a child process: its private files, its pipes, and its death with ours.

A tap's config holds its secrets, so its files live in the workspace's private state folder
(`.syncline/tmp/singer-<pid>-<random>/`, owner only), never in the system temp folder. Each
folder holds `owner.lock`, locked while its process lives: a folder whose lock is free was left
by a killed process and is removed when the next one starts. A tap is started so that the
kernel kills it when the thread that started it dies (Linux's parent-death signal), and in a
session of its own, so the whole group can be stopped on an ordinary exit.
"""

from __future__ import annotations

import contextlib
import contextvars
import fcntl
import json
import logging
import os
import secrets
import select
import shutil
import signal
import subprocess
import threading
from collections import deque
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from syncline.children import die_with_parent
from syncline.errors import ConfigurationError, SourceError

log = logging.getLogger(__name__)
_TAIL_LINES = 12  # stderr lines quoted in an error message
_MAX_LINE = 64 << 20  # one Singer message; beyond this the tap is surely broken
_IDLE_S = 1.0  # a quiet tap gets what it already covered by a STATE committed after this
_GRACE_S = 5.0  # between SIGTERM and SIGKILL when a tap is stopped
_PREFIX = "singer-"
_LOCK = "owner.lock"


class TapFolder:
    """A private folder for one tap's files, removed on close; a kill leaves it for `sweep`."""

    def __init__(self, parent: Path) -> None:
        parent.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        parent.mkdir(mode=0o700, exist_ok=True)
        os.chmod(parent, 0o700)  # tap configs hold secrets: nobody else may even list them
        sweep(parent)
        self.path = parent / f"{_PREFIX}{os.getpid()}-{secrets.token_hex(6)}"
        self.path.mkdir(mode=0o700)
        # Locked before it is named owner.lock, so a sweeper never finds it free while we live.
        staging = self.path / f".{_LOCK}"
        self._lock = os.open(staging, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o600)
        fcntl.flock(self._lock, fcntl.LOCK_EX)
        os.rename(staging, self.path / _LOCK)

    def write(self, name: str, value: Any) -> str:
        """Write ``value`` as JSON, readable by the owner only (a tap config holds secrets)."""
        path = self.path / name
        with os.fdopen(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), "w") as f:
            json.dump(value, f, default=str)
        return str(path)

    def close(self) -> None:
        shutil.rmtree(self.path, ignore_errors=True)
        os.close(self._lock)

    def __enter__(self) -> TapFolder:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def sweep(parent: Path) -> list[Path]:
    """Remove the tap folders in ``parent`` whose process is gone; the removed paths."""
    removed = []
    for folder in parent.glob(f"{_PREFIX}*"):
        if folder.is_dir() and _abandoned(folder):
            shutil.rmtree(folder, ignore_errors=True)
            removed.append(folder)
    return removed


def _abandoned(folder: Path) -> bool:
    try:
        fd = os.open(folder / _LOCK, os.O_RDWR)
    except FileNotFoundError:  # not locked yet: abandoned only if its creator is gone
        return not _alive(_creator(folder))
    except OSError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        return True
    except OSError:
        return False  # its owner still runs
    finally:
        os.close(fd)


def _creator(folder: Path) -> int:
    try:
        return int(folder.name[len(_PREFIX):].split("-")[0])
    except ValueError:
        return 0


def _alive(pid: int) -> bool:
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def popen(argv: list[str], env: dict[str, str], cwd: str) -> subprocess.Popen[bytes]:
    try:
        # A session of its own, so the whole group (wrapper scripts and all) can be stopped.
        return subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, env=env, cwd=cwd, start_new_session=True,
                                preexec_fn=die_with_parent())
    except OSError as exc:
        raise ConfigurationError(f"cannot start the tap {argv[0]}: {exc}",
                                 fix="check `command:` names an executable tap (a script needs "
                                 "a #! line)") from None


def kill_group(proc: subprocess.Popen[bytes], sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, sig)


def signal_name(number: int) -> str:
    try:
        return signal.Signals(number).name
    except ValueError:
        return f"signal {number}"


class Tap:
    """One running tap: stdout as lines (None after a quiet second), the tail of stderr kept."""

    def __init__(self, argv: list[str], env: dict[str, str], cwd: str) -> None:
        self.proc = popen(argv, env, cwd)
        self.tail: deque[str] = deque(maxlen=_TAIL_LINES)
        self._drain = threading.Thread(target=contextvars.copy_context().run, args=(self._read_stderr,),
                                       name="singer-stderr", daemon=True)  # its lines: the run's
        self._drain.start()

    def _read_stderr(self) -> None:
        assert self.proc.stderr is not None
        try:
            while raw := self.proc.stderr.readline(1 << 16):  # bounded: a long line is cut
                text = raw.decode("utf-8", "replace").rstrip()
                if text:
                    self.tail.append(text[:1000])
                    log.info("tap: %s", text[:1000])
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

    def stderr_lines(self) -> list[str]:
        """The last lines the tap printed on stderr (once it has ended)."""
        self._drain.join(timeout=2.0)
        return list(self.tail)

    def kill(self) -> None:
        """Stop the tap's process group if it still runs, and reap it."""
        if self.proc.poll() is None:
            kill_group(self.proc, signal.SIGTERM)
            try:
                self.proc.wait(timeout=_GRACE_S)
            except subprocess.TimeoutExpired:
                kill_group(self.proc, signal.SIGKILL)
                self.proc.wait()

    def stop(self) -> None:
        """Kill the tap if needed and close its pipes (only by the thread that reads them)."""
        self.kill()
        self._drain.join(timeout=1.0)
        for pipe in (self.proc.stdout, self.proc.stderr):
            if pipe is not None:
                pipe.close()


def stderr_lines(err: bytes) -> list[str]:
    """The last lines a finished tap printed on stderr."""
    lines = [ln.rstrip()[:1000] for ln in err.decode("utf-8", "replace").splitlines() if ln.strip()]
    return lines[-_TAIL_LINES:]


def told(lines: list[str]) -> str:
    """The lines for an error message."""
    return ("; its last messages:\n    " + "\n    ".join(lines)) if lines else " and printed nothing"
