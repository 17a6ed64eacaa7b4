"""Walking a stream's endpoints page by page, once per parent record for child streams."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from syncline.errors import ConfigurationError, SourceError
from syncline.sources.rest.client import Fetched, RestClient
from syncline.sources.rest.config import RestConfig, RestStream
from syncline.sources.rest.extract import find_records, format_cursor
from syncline.sources.rest.paginate import (
    Position,
    cut_short,
    next_position,
    page_request,
    same_origin,
    start,
)

# A child stream's schema is sampled from the first parents that have any children.
SAMPLE_PARENTS = 5


@dataclass(frozen=True)
class Page:
    """The records of one fetched page and the position of the page after it (None: last)."""

    records: list[Any]
    next: Position
    warning: str | None = None  # why the read may have stopped before the API's last page


class Walker:
    """Fetches pages of the configured streams through one client."""

    def __init__(self, source: str, config: RestConfig, client: RestClient) -> None:
        self.source = source
        self.config = config
        self.client = client
        #: first pages fetched by `sample`, given once more to the read that asks for them
        self._first: dict[tuple[str, str, str], Page] = {}

    def spec(self, stream: str) -> RestStream:
        return self.config.streams[stream]

    def params(self, stream: str, since: Any) -> dict[str, Any]:
        """The query of a stream's first page: source params, stream params, the cursor filter."""
        spec = self.spec(stream)
        query: dict[str, Any] = {**self.config.params, **spec.params}
        if since is not None and spec.cursor is not None and spec.cursor.param:
            try:
                query[spec.cursor.param] = format_cursor(since, spec.cursor.format,
                                                         spec.cursor.lookback_s)
            except ValueError:
                raise ConfigurationError(
                    f"source '{self.source}': cursor value {since!r} is not a timestamp",
                    stream=stream,
                    fix=f"set sources.{self.source}.streams.{stream}.cursor.format to raw (the "
                        "default: the value as the API returned it), or "
                        "point `cursor.field` at a timestamp field") from None
        return query

    def pages(self, stream: str, path: str, position: Position, since: Any) -> Iterator[Page]:
        """The pages of one endpoint from ``position`` on; each record list is a whole page.
        The first page `sample` fetched with the same query is not asked for again."""
        params = self.params(stream, since)
        first = self._first.pop(_query_key(stream, path, params), None) \
            if position == start(self.spec(stream).pagination) else None
        while True:
            page = first if first is not None else self._fetch(stream, path, params, position)
            first = None
            yield page
            if page.next is None:
                return
            position = page.next

    def _fetch(self, stream: str, path: str, params: dict[str, Any], position: Position) -> Page:
        """One page of an endpoint, at ``position``."""
        spec = self.spec(stream)
        req = page_request(spec.pagination, path, params, position)
        url = self.client.url(req.url)
        if not same_origin(url, self.config.base_url):
            raise SourceError(
                f"source '{self.source}': the API sent the next page to {url}, outside "
                f"{self.config.base_url}; not following it with the source's credentials",
                stream=stream, fix="check base_url (scheme, host and port) against the API's links")
        fetched = self.client.get(url, req.params, stream=stream)
        try:
            records = find_records(fetched.body, spec.records)
        except ValueError as exc:
            shown = self.client.safe_url(fetched.url)
            raise SourceError(
                f"source '{self.source}': cannot find the records of {shown}: {exc}",
                stream=stream,
                fix=f"set sources.{self.source}.streams.{stream}.records to the JSONPath of "
                    "the records in that body, e.g. \"$.data[*]\"") from None
        nxt = next_position(spec.pagination, position, fetched, len(records))
        if nxt is not None and nxt == position:
            raise SourceError(
                f"source '{self.source}': pagination did not advance past {nxt!r}",
                stream=stream, fix=f"check `pagination:` of sources.{self.source}.streams.{stream}")
        return Page(records, nxt, self._cut_short(stream, fetched, len(records), nxt))

    def _cut_short(self, stream: str, fetched: Fetched, count: int, nxt: Position) -> str | None:
        why = None if nxt is not None else cut_short(self.spec(stream).pagination, fetched, count)
        if why is None:
            return None
        return (f"the page {self.client.safe_url(fetched.url)} is the last one read, but {why}; if "
                f"the API has more records, fix `pagination:` of sources.{self.source}.streams.{stream}")

    def paths(self, stream: str) -> Iterator[tuple[Any, str]]:
        """(parent key, path) of each endpoint of a stream: one, or one per parent record."""
        spec = self.spec(stream)
        parent = spec.parent
        if parent is None:
            yield None, spec.path
            return
        placeholder = "{" + parent.as_ + "}"
        for record in self.records(parent.stream):
            key = record.get(parent.key)
            if key is None or isinstance(key, (dict, list)):
                raise SourceError(
                    f"source '{self.source}': a record of parent stream '{parent.stream}' has "
                    f"no usable '{parent.key}' ({key!r})", stream=stream,
                    fix=f"set sources.{self.source}.streams.{stream}.parent.key to a field every "
                        f"{parent.stream} record has")
            yield key, spec.path.replace(placeholder, quote(str(key), safe=""))

    def records(self, stream: str) -> Iterator[dict[str, Any]]:
        """Every record of a stream, unfiltered (used to list the parents of a child stream)."""
        spec = self.spec(stream)
        for _, path in self.paths(stream):
            for page in self.pages(stream, path, start(spec.pagination), None):
                yield from (r for r in page.records if isinstance(r, dict))

    def sample(self, stream: str) -> list[tuple[Any, list[Any]]]:
        """The first page of a stream, or of its first parents until one has records."""
        spec = self.spec(stream)
        out: list[tuple[Any, list[Any]]] = []
        for key, path in self.paths(stream):
            params = self.params(stream, None)
            page = self._fetch(stream, path, params, start(spec.pagination))
            self._first[_query_key(stream, path, params)] = page
            out.append((key, page.records))
            if page.records or len(out) >= SAMPLE_PARENTS:
                break
        return out


def _query_key(stream: str, path: str, params: dict[str, Any]) -> tuple[str, str, str]:
    return stream, path, json.dumps(params, sort_keys=True, default=str)
