"""From JSON bodies to row values: JSONPath look-ups, flattening, and cursor values."""

from __future__ import annotations

import datetime as dt
import functools
import json
import math
import re
from typing import Any

from jsonpath_ng.ext.parser import parse as parse_jsonpath

from syncline.records import parse_timestamp
from syncline.schema import DataType

DEFAULT_RECORD_KEYS = ("data", "items", "results")
FLATTEN_SEP = "__"


@functools.lru_cache(maxsize=256)
def compile_path(expr: str) -> Any:
    """A compiled JSONPath; raises ValueError naming the expression when it is invalid."""
    try:
        return parse_jsonpath(expr)
    except Exception as exc:  # its lexer and parser raise several unrelated exception types
        raise ValueError(f"invalid JSONPath {expr!r}: {exc}") from None


def find_records(body: Any, expr: str | None) -> list[Any]:
    """The records of a page body; raises ValueError when a non-empty body yields none.

    An empty list (or null) where the path's records would be is an empty page; a filter
    (``?(...)``) may select nothing. Any other miss is a wrong path, not an empty page.
    """
    if expr is None:
        if isinstance(body, list):
            return body
        if isinstance(body, dict):
            for key in DEFAULT_RECORD_KEYS:
                if key in body:
                    found = body[key]
                    return found if isinstance(found, list) else [] if found is None else [found]
        raise ValueError("the body is neither a list nor an object with data, items or results")
    matches = [m.value for m in compile_path(expr).find(body)]
    if len(matches) == 1 and isinstance(matches[0], list):
        return list(matches[0])  # "$.data" names the list itself rather than its elements
    if not matches and body and "?(" not in expr and not _empty_list_at(body, expr):
        # a typo in the path reads as an empty page, which would end the read "successfully"
        raise ValueError(f"`records: {expr}` matches nothing in a body holding {top_level(body)}")
    return matches


_ALL_ELEMENTS = re.compile(r"(\[\*\]|\.\*)$")


def _empty_list_at(body: Any, expr: str) -> bool:
    """Whether ``expr`` (e.g. "$.data[*]") found no records because their list is empty or null."""
    container = _ALL_ELEMENTS.sub("", expr)
    if container == expr or container in ("", "$"):
        return False
    found = [m.value for m in compile_path(container).find(body)]
    return bool(found) and all(v is None or v == [] or v == {} for v in found)


def top_level(body: Any) -> str:
    """What a body holds at its top, for messages: its keys, or the size of its list."""
    if isinstance(body, dict):
        return "the top-level keys " + ", ".join(repr(k) for k in list(body)[:20])
    if isinstance(body, list):
        return f"a list of {len(body)} values"
    return f"a JSON {type(body).__name__}"


def first_value(body: Any, expr: str) -> Any:
    """The first value at ``expr`` in ``body``, or None."""
    for match in compile_path(expr).find(body):
        return match.value
    return None


def flatten(record: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """Nested objects as ``a__b`` fields; arrays and empty objects stay whole values."""
    out: dict[str, Any] = {}
    for key, value in record.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict) and value:
            out.update(flatten(value, name + FLATTEN_SEP))
        else:
            out[name] = value
    return out


def prepare(value: Any, t: DataType) -> Any:
    """A JSON value ready for ``rows_to_batch`` in a column of type ``t``."""
    if value is None:
        return None
    if t.kind == "json" or isinstance(value, (dict, list)):
        return json.dumps(value, ensure_ascii=False, sort_keys=True)
    if t.kind == "string" and isinstance(value, (bool, int, float)):
        return json.dumps(value)  # true, not Python's True
    return value


def cursor_key(value: Any) -> tuple[int, Any]:
    """Sort key of cursor values: numbers, then timestamps (by instant), then other text."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return (0, value)
    text = str(value)
    try:
        return (1, parse_timestamp(text, aware=True))
    except ValueError:
        return (2, text)


def later(a: Any, b: Any) -> Any:
    """The later of two cursor values (either may be None)."""
    if a is None:
        return b
    if b is None:
        return a
    return b if cursor_key(b) > cursor_key(a) else a


def format_cursor(value: Any, fmt: str, lookback_s: float = 0.0) -> Any:
    """A stored cursor value as the API wants it: as received (raw), ISO 8601 UTC, or epoch seconds.

    Raw is the default because only the API's own text is sure to compare as the API
    compares it. Rounding goes down, so a boundary record is fetched again (merged away)
    rather than lost.
    """
    if fmt == "raw":
        return value
    if fmt == "epoch" and isinstance(value, (int, float)) and not isinstance(value, bool):
        return value - lookback_s if lookback_s else value
    ts = parse_timestamp(value, aware=True)
    assert isinstance(ts, dt.datetime)
    ts -= dt.timedelta(seconds=lookback_s)
    if fmt == "epoch":
        return math.floor(ts.timestamp())
    return ts.isoformat().replace("+00:00", "Z")
