"""Failpoints: named places in the engine where a test can kill, fail or hang a run.

``SYNCLINE_FAILPOINTS="after_commit:3=kill,after_read:1=raise"`` fires the action
the N-th time the point is reached in this process: ``kill`` (SIGKILL self), ``term``
(SIGTERM self: the graceful stop, at an exact place), ``int`` (SIGINT self: Ctrl-C there),
``raise`` (a transient error) or ``hang``. Unset, ``failpoint`` returns at once.
"""

from __future__ import annotations

import os
import signal
import time

from syncline.errors import TransientError

_SPEC: dict[str, tuple[int, str]] = {}
_HITS: dict[str, int] = {}


def configure(spec: str | None) -> None:
    """(Re)read the failpoint spec; called at import with the environment's value."""
    _SPEC.clear()
    _HITS.clear()
    for part in (spec or "").split(","):
        part = part.strip()
        if not part:
            continue
        name, _, rest = part.partition(":")
        count, _, action = rest.partition("=")
        if action not in ("kill", "term", "int", "raise", "hang") or not count.isdigit():
            raise ValueError(f"bad failpoint {part!r}; expected name:N=kill|term|int|raise|hang")
        _SPEC[name] = (int(count), action)


def failpoint(name: str) -> None:
    if not _SPEC:
        return
    rule = _SPEC.get(name)
    if rule is None:
        return
    _HITS[name] = _HITS.get(name, 0) + 1
    if _HITS[name] != rule[0]:
        return
    action = rule[1]
    if action == "kill":
        os.kill(os.getpid(), signal.SIGKILL)
    elif action in ("term", "int"):  # the handler runs before this returns
        os.kill(os.getpid(), signal.SIGTERM if action == "term" else signal.SIGINT)
    elif action == "raise":
        raise TransientError(f"failpoint {name} raised (hit {rule[0]})")
    else:
        while True:
            time.sleep(3600)


configure(os.environ.get("SYNCLINE_FAILPOINTS"))
