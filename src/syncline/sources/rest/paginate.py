"""Pagination: which request fetches a page, and where a fetched page says the next one is.

A position is what a checkpoint stores to resume at a page: a page number, an offset,
a cursor token or a next URL (None: the first page). Every style stops on an empty
page, on a missing token or link, and on a page shorter than its known size; a full
page that names no next page is suspicious (a wrong token path reads as one page).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

import httpx

from syncline.sources.rest.client import Fetched
from syncline.sources.rest.config import (
    CursorPages,
    LinkHeader,
    NextUrl,
    NoPages,
    Offset,
    PageNumber,
    Pagination,
)
from syncline.sources.rest.extract import compile_path, first_value, top_level

Position = int | str | None


@dataclass(frozen=True)
class PageRequest:
    """One page's request: a path (or a server-given absolute URL) and its query."""

    url: str
    params: dict[str, Any] = field(default_factory=dict)


def start(p: Pagination) -> Position:
    """The position of the first page."""
    if isinstance(p, PageNumber):
        return p.start
    if isinstance(p, Offset):
        return 0
    return None


def page_request(p: Pagination, path: str, params: dict[str, Any], position: Position) -> PageRequest:
    """The request for the page at ``position`` of an endpoint queried with ``params``."""
    query = dict(params)
    if isinstance(p, PageNumber):
        query[p.param] = position
        if p.size_param and p.size:
            query[p.size_param] = p.size
    elif isinstance(p, Offset):
        query[p.offset_param] = position
        query[p.limit_param] = p.limit
    elif isinstance(p, CursorPages):
        if position is not None:
            query[p.param] = position
    elif isinstance(p, (LinkHeader, NextUrl)) and position is not None:
        # The server's next URL carries the whole query (filters included) itself.
        return PageRequest(str(position))
    if isinstance(p, (CursorPages, LinkHeader, NextUrl)) and p.size_param and p.size:
        query[p.size_param] = p.size
    return PageRequest(path, query)


def next_position(p: Pagination, position: Position, page: Fetched, count: int) -> Position:
    """Where the page after ``page`` (holding ``count`` records) is; None when it was the last."""
    if count == 0 or isinstance(p, NoPages):
        return None
    if isinstance(p, PageNumber):
        if p.size and count < p.size:
            return None
        assert isinstance(position, int)
        return position + 1
    if isinstance(p, Offset):
        if count < p.limit:
            return None
        assert isinstance(position, int)
        return position + p.limit
    if isinstance(p, CursorPages):
        token = first_value(page.body, p.token_path)
        return None if token is None or token == "" else str(token)
    link = next_link(page.headers.get("Link")) if isinstance(p, LinkHeader) else None
    if isinstance(p, NextUrl):
        value = first_value(page.body, p.path)
        link = str(value) if isinstance(value, str) and value else None
    return None if link is None else str(page.url.join(link))


def cut_short(p: Pagination, page: Fetched, count: int) -> str | None:
    """Why a page that named no next page may not be the last: it is full. None if not full."""
    size = p.size if isinstance(p, (CursorPages, LinkHeader, NextUrl)) else None
    if size is None or count < size:
        return None
    if isinstance(p, CursorPages):
        missing = _absent(page.body, p.token_path, "token")
    elif isinstance(p, NextUrl):
        missing = _absent(page.body, p.path, "URL")
    else:
        missing = 'no Link header with rel="next"'
    return f"it is full ({count} records, `size: {size}`) and names no next page ({missing})"


def _absent(body: Any, path: str, what: str) -> str:
    if any(True for _ in compile_path(path).find(body)):
        return f"the next {what} at `{path}` is empty"
    return f"nothing at `{path}` in a body holding {top_level(body)}"


_LINK = re.compile(r"<([^>]*)>((?:\s*;\s*[^;,]+)*)")
_PARAM = re.compile(r";\s*([^=\s;,]+)\s*=\s*(\"[^\"]*\"|[^;,\s]+)")


def next_link(header: str | None) -> str | None:
    """The rel="next" target of an RFC 8288 (formerly 5988) Link header, if any."""
    for match in _LINK.finditer(header or ""):
        for name, value in _PARAM.findall(match.group(2)):
            if name.lower() == "rel" and "next" in value.strip('"').lower().split():
                return match.group(1).strip()
    return None


def same_origin(a: str, b: str) -> bool:
    """Whether two URLs share scheme, host and port: credentials never go elsewhere."""
    ua, ub = httpx.URL(a), httpx.URL(b)
    return (ua.scheme, ua.host, ua.port) == (ub.scheme, ub.host, ub.port)
