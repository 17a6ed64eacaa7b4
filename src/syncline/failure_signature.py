"""A failure's signature: what stays the same when one root cause fails many runs and
connections (monitoring/failure_groups.py groups failures by it).

A failure's **signature** is its failure class, its origin (source, destination, platform,
configuration), its error type (an HTTP status, an exception's name, a tap's exit code) and
its message with what differs from run to run taken out: the connection, stream, source and
destination names, numbers, ids, quoted values, paths, URLs' hosts and queries, hosts and
addresses. What tells causes apart stays: HTTP statuses, errno and exit codes, SQLSTATEs,
and the words of the message. `signature` is a pure function of the class and the text.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass

ORIGINS = ("source", "destination", "platform", "configuration")
_PLATFORM = {"internal", "interrupted", "concurrency", "integrity"}

_WHERE = re.compile(r"^(?:connection '[^']*'(?:, stream '[^']*')?: )+")
_ENDPOINT = re.compile(r"^(source|destination) '[^']*'(?: \([^)]*\))?: ")
_KEEP = re.compile(r"\b(HTTP \d{3}|Errno \d+|SQLSTATE \w+|code -?\d+|signal \d+)\b|\(\d{4}(?=, [\"'])")
_URL = re.compile(r"\b[a-z][a-z0-9+.-]*://[^\s/'\"]+(/[^\s?'\"]*)?(\?[^\s'\"]*)?")
_QUOTED = re.compile(r"'[^'\n]*'|\"[^\"\n]*\"|`[^`\n]*`|\([^()\n]*@[^()\n]*\)")
_PATH = re.compile(r"(?<![\w.])(?:~|\.{1,2})?(?:/[\w.@%+-]+){2,}/?")
_IP = re.compile(r"\b\d{1,3}(?:\.\d{1,3}){3}(?::\d+)?\b|\[[0-9a-fA-F:]+\](?::\d+)?")
_HOST = re.compile(r"\b(?:[a-z0-9-]+\.)+(?:com|net|org|io|dev|cloud|internal|local|[a-z]{2})(?::\d+)?\b",
                   re.I)
_ID = re.compile(r"\b(?:[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}|[0-9a-f]{12,})\b", re.I)
_NUMBER = re.compile(r"(?<![A-Za-z_])-?\d[\d,_]*(?:\.\d+)?(?:e[+-]?\d+)?")
_SPACE = re.compile(r"\s+")
#: a database object's name after its kind: `permission denied for table orders`
_OBJECT = re.compile(r"\b(table|relation|schema|column|view|sequence|database|role|user|slot) "
                     r"(?!\?|N\b|is\b|was\b|has\b|does\b|of\b|in\b)[\w.$]+")
_LIST = re.compile(r"\((?:[\w.]+, )*[\w.]+\)")  # a list of names: `primary key (tenant, email)`
_TYPE = re.compile(r"\b([A-Z][A-Za-z]*(?:Error|Exception|Timeout|Refused|Violation))\b")


@dataclass(frozen=True)
class Signature:
    failure_class: str
    origin: str
    error_type: str
    pattern: str

    @property
    def key(self) -> str:
        text = "\x1f".join((self.failure_class, self.origin, self.error_type, self.pattern))
        return hashlib.sha1(text.encode("utf-8")).hexdigest()[:12]


def origin_of(failure_class: str, message: str) -> str:
    """Where it failed: the source or destination the message names, else the platform (a
    crash, a signal, a lost lease) or the configuration."""
    if failure_class in _PLATFORM:
        return "platform"
    body = _WHERE.sub("", message)
    if body.startswith("destination '") or failure_class == "destination":
        return "destination"
    if body.startswith("source '") or failure_class in ("source", "transient", "data", "contract"):
        return "source"
    return "configuration"


def error_type(failure_class: str, message: str) -> str:
    head = message.split("\n", 1)[0]
    if m := re.search(r"HTTP (\d{3})", head):
        return f"HTTP {m.group(1)}"
    if m := re.search(r"exited with code (-?\d+)|killed by (SIG[A-Z]+)", head):
        return f"exit {m.group(1)}" if m.group(1) else m.group(2)
    if m := _TYPE.search(head):
        return m.group(1)
    return failure_class


def pattern_of(message: str) -> str:
    """The message's first line with what differs from run to run taken out."""
    text = _WHERE.sub("", message.split("\n  fix:", 1)[0].split("\n", 1)[0])
    text = _ENDPOINT.sub(lambda m: f"{m.group(1)}: ", text)
    kept: list[str] = []

    def keep(m: re.Match[str]) -> str:
        kept.append(m.group(0))
        return f"\x00{_letters(len(kept) - 1)}\x00"

    text = _KEEP.sub(keep, text)
    text = _URL.sub(lambda m: "<url>" + _NUMBER.sub("N", m.group(1) or ""), text)
    text = _quoted(text)
    text = _OBJECT.sub(lambda m: f"{m.group(1)} ?", text)
    text = _LIST.sub("(?)", text)
    text = _PATH.sub("<path>", text)
    text = _IP.sub("<host>", text)
    text = _HOST.sub("<host>", text)
    text = _ID.sub("<id>", text)
    text = _NUMBER.sub("N", text)
    text = re.sub(r"\x00([a-z]+)\x00", lambda m: kept[_index(m.group(1))], text)
    return _SPACE.sub(" ", text).strip()


def _quoted(text: str) -> str:
    """Quoted values become `?`; a quoted message (a driver's, four words or more) stays, its
    own quoted values taken out."""
    def one(m: re.Match[str]) -> str:
        whole = m.group(0)
        if len(whole.split()) < 4:
            return "?"
        return whole[0] + _quoted(whole[1:-1]) + whole[-1]

    return _QUOTED.sub(one, text)


def _letters(n: int) -> str:
    return "".join(chr(97 + int(d)) for d in str(n))


def _index(letters: str) -> int:
    return int("".join(str(ord(c) - 97) for c in letters))


def signature(failure_class: str, message: str) -> Signature:
    return Signature(failure_class, origin_of(failure_class, message),
                     error_type(failure_class, message), pattern_of(message))


def fix_of(message: str) -> str | None:
    """The fix an error's text carries (its `  fix:` line), if any."""
    _, found, fix = message.partition("\n  fix: ")
    return fix.strip() if found else None


_DIGIT = re.compile(r"\d")
_SEEN: dict[tuple[str, str, tuple[str, ...]], Signature] = {}


def remembered(failure_class: str, message: str) -> Signature:
    """`signature`, remembered by a key that decides it: the message with each digit a 0 (the
    signature replaces numbers, addresses and ids whatever their digits) and the codes it keeps
    (HTTP statuses, errno and exit codes). Failures of one cause differ in their numbers."""
    key = (failure_class, _DIGIT.sub("0", message),
           tuple(m.group(0) for m in _KEEP.finditer(message)))
    found = _SEEN.get(key)
    if found is None:
        if len(_SEEN) > 100_000:
            _SEEN.clear()
        found = _SEEN[key] = signature(failure_class, message)
    return found
