"""What a failed tap said, told first: its own error line out of its stderr, and the setting it names.

A tap that fails on a wrong setting (a database that does not exist, a path that is not
text) prints a Python traceback or a CRITICAL log line. The error line is what the user
needs; the frames above it are what the tap's authors need.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

#: an unindented exception line, as a Python traceback ends: ``psycopg2.OperationalError: ...``
_EXCEPTION = re.compile(r"^[A-Za-z_][\w.]*(?:Error|Exception|Exit|Failure|Fault)\b:?(?:\s.*)?$")
#: a log line at error level: ``2026-01-01 ... | CRITICAL | tap-x | message`` or ``CRITICAL message``
_LOGGED = re.compile(r"\b(?:CRITICAL|FATAL|ERROR)\b[\s|:]*(?:[\w.-]+\s*\|\s*)?(?P<text>\S.*)$")
_FRAME = re.compile(r'^\s+File "(?P<file>[^"]+)", line (?P<line>\d+), in (?P<func>\S+)')
#: settings whose values are never repeated in a message
_SECRET = re.compile(r"pass|secret|token|key|credential|auth", re.IGNORECASE)
_SHORTEST = 3  # a value shorter than this names no setting: too many false matches


@dataclass(frozen=True)
class TapError:
    """The tap's own error, where it was raised, and the setting whose value it quotes."""

    text: str
    at: str | None = None
    setting: tuple[str, Any] | None = None


def own_error(lines: list[str], config: Mapping[str, Any]) -> TapError | None:
    """The error a tap printed among its last stderr ``lines``: the exception ending a traceback,
    else its last error-level log line; None when neither is there."""
    text = _last_exception(lines)
    if text is None:
        logged = [m["text"].strip() for ln in lines if (m := _LOGGED.search(ln))]
        text = logged[-1] if logged else None
    if text is None:
        return None
    frames = [m for ln in lines if (m := _FRAME.match(ln))]
    at = f"{frames[-1]['file']}, line {frames[-1]['line']}, in {frames[-1]['func']}" if frames else None
    return TapError(text, at, _quoted_setting(text, config))


def _last_exception(lines: list[str]) -> str | None:
    found = [ln.strip() for ln in lines if ln and not ln[0].isspace() and _EXCEPTION.match(ln)]
    return found[-1] if found else None


def _quoted_setting(text: str, config: Mapping[str, Any]) -> tuple[str, Any] | None:
    """The top-level setting whose value the error quotes (a database name, a host, a path)."""
    for key, value in config.items():
        if _SECRET.search(key) or isinstance(value, bool) or not isinstance(value, (str, int, float)):
            continue
        shown = str(value)
        if len(shown) >= _SHORTEST and re.search(rf"(?<![\w.-]){re.escape(shown)}(?![\w-])", text):
            return key, value
    return None
