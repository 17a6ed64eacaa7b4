"""The control plane's clock: when runs are due, leases and heartbeats expire, runs start.

Real UTC time, unless `SYNCLINE_CLOCK` says otherwise, which tests use to drive schedules
in this process and in the processes they start:

* `SYNCLINE_CLOCK=2026-12-07T12:00:00Z`: time stands still at that moment;
* `SYNCLINE_CLOCK=file:/path/to/clock`: the moment written in that file (ISO 8601 with a
  zone), read again at every look, so a test moves time by rewriting the file.

Data keeps real time: `_syncline_synced_at`, load records and durations never use it.
"""

from __future__ import annotations

import datetime as dt
import os
from pathlib import Path

from syncline.errors import ConfigurationError

ENV = "SYNCLINE_CLOCK"


def now() -> dt.datetime:
    spec = os.environ.get(ENV, "").strip()
    if not spec:
        return dt.datetime.now(dt.UTC)
    text = spec
    if spec.startswith("file:"):
        try:
            text = Path(spec[5:]).read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise ConfigurationError(f"{ENV}: cannot read {spec[5:]} ({exc.strerror})",
                                     fix=f"write an ISO time into that file, or unset {ENV}") from None
    try:
        moment = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        moment = None
    if moment is None or moment.tzinfo is None:
        raise ConfigurationError(
            f"{ENV}: {text!r} is not an ISO time with a zone",
            fix=f"write e.g. 2026-12-07T12:00:00Z, or file:PATH holding one; or unset {ENV}")
    return moment.astimezone(dt.UTC)


def write(path: Path, moment: dt.datetime) -> None:
    """Move a `file:` clock: written whole, then renamed, so no reader sees half a time."""
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(moment.astimezone(dt.UTC).isoformat(), encoding="utf-8")
    tmp.replace(path)
