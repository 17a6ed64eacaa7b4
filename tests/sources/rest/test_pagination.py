"""Pagination: every style reads every record once, stops where it should and resumes mid-way."""

from __future__ import annotations

import threading
import time
from typing import Any

import httpx
import pyarrow as pa
import pytest

from syncline.errors import SourceError
from syncline.sources.rest.paginate import next_link
from syncline.stream import Notice, ReadRequest

from api_server import ApiServer
from rest_helpers import read, source

STYLES: dict[str, dict[str, Any]] = {
    "page_number": {"path": "/items/pages",
                    "pagination": {"type": "page_number", "size_param": "per_page", "size": 100}},
    "page_number_until_empty": {"path": "/items/pages", "pagination": {"type": "page_number"}},
    "offset": {"path": "/items/offset", "pagination": {"type": "offset", "limit": 100}},
    "cursor": {"path": "/items/cursor", "records": "$.results[*]",
               "pagination": {"type": "cursor", "token_path": "$.meta.next", "param": "cursor"}},
    "link_header": {"path": "/items/link", "params": {"per_page": 100},
                    "pagination": {"type": "link_header"}},
    "next_url": {"path": "/items/next", "pagination": {"type": "next_url", "path": "$.next"}},
    "none": {"path": "/items/all"},
}
# requests a full read makes: 30 pages, plus one empty page where only emptiness says "last"
REQUESTS = {"page_number": 31, "page_number_until_empty": 31, "offset": 31, "cursor": 30,
            "link_header": 30, "next_url": 30, "none": 1}


@pytest.mark.parametrize("style", list(STYLES))
def test_each_style_reads_every_record_once_and_resumes_from_a_page(api: ApiServer, style: str) -> None:
    streams = {"items": {**STYLES[style], "primary_key": ["id"]}}
    src = source(api.url, streams)
    full = read(src, "items", batch_size=100)
    assert full.ids == list(range(1, 3001))
    path = STYLES[style]["path"]
    assert len(api.requests_to(path)) == REQUESTS[style]  # discovery's sample page is page 1
    assert len(full.checkpoints) == REQUESTS[style]  # one per batch of 100: a page each
    assert full.checkpoints[-1]["done"] is True and full.checkpoints[-1]["page"] is None
    if style == "none":
        return
    mid = full.checkpoints[9]  # committed after page 10
    resumed = read(source(api.url, streams), "items", checkpoint=mid)
    assert resumed.ids == list(range(1001, 3001))


@pytest.mark.parametrize(("header", "url"), [
    ('<https://a.test/x?page=2>; rel="next"', "https://a.test/x?page=2"),
    ('<https://a.test/x?page=1>; rel="first", <https://a.test/x?page=3>; rel="next last"',
     "https://a.test/x?page=3"),
    ("</x?page=2>; rel=next; title=\"more, later\"", "/x?page=2"),
    ('<https://a.test/x?page=9>; rel="last"', None),
    ("", None),
], ids=["plain", "several-links-and-rels", "unquoted-relative", "no-next", "empty"])
def test_link_header_next_target(header: str, url: str | None) -> None:
    assert next_link(header) == url


def pages_of(records: list[dict[str, Any]], size: int) -> Any:
    def handler(request: httpx.Request) -> httpx.Response:
        page = int(request.url.params.get("page", 1))
        return httpx.Response(200, json={"data": records[(page - 1) * size: page * size]})
    return handler


def test_a_short_page_is_the_last_one_without_asking_for_another() -> None:
    seen: list[str] = []
    inner = pages_of([{"id": i} for i in range(1, 26)], 10)

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request.url.params["page"])
        return inner(request)  # type: ignore[no-any-return]

    src = source("http://api.test", {"s": {"path": "/s", "pagination": {"type": "page_number", "size": 10}}},
                 handler=handler)
    assert read(src, "s").ids == list(range(1, 26))
    assert seen == ["1", "2", "3"]  # discovery's sample is page 1; then two more and no fourth


def test_one_commit_covers_the_pages_of_a_batch(api: ApiServer) -> None:
    streams = {"items": {**STYLES["cursor"], "primary_key": ["id"]}}
    full = read(source(api.url, streams), "items", batch_size=1000)
    assert len(full.checkpoints) == 3  # 3,000 records in pages of 100: a checkpoint per 10 pages
    resumed = read(source(api.url, streams), "items", checkpoint=full.checkpoints[0], batch_size=1000)
    assert resumed.ids == list(range(1001, 3001))


def test_the_next_page_is_fetched_while_the_last_one_is_loaded() -> None:
    fetched: list[int] = []
    waiting = threading.Event()  # never set: a bounded wait for the thread ahead

    def handler(request: httpx.Request) -> httpx.Response:
        page = int(request.url.params.get("page", 1))
        fetched.append(page)
        return httpx.Response(200, json={"data": [{"id": i} for i in range(page * 10 - 9, page * 10 + 1)]
                                         if page <= 3 else []})

    src = source("http://api.test", {"s": {"path": "/s", "pagination": {"type": "page_number"}}},
                 handler=handler)
    schema = next(s for s in src.discover() if s.name == "s")
    items = src.read(ReadRequest(stream=schema, mode="full_refresh", batch_size=10))
    first = next(i for i in items if isinstance(i, pa.RecordBatch))
    assert first.column("id").to_pylist()[0] == 1
    deadline = time.monotonic() + 5
    while 2 not in fetched and time.monotonic() < deadline:  # while page 1 is still being loaded
        waiting.wait(0.01)
    assert 2 in fetched  # page 2 was asked for before the reader wanted it
    assert [r for i in items if isinstance(i, pa.RecordBatch) for r in i.column("id").to_pylist()] \
        == list(range(11, 31))


def test_a_next_url_on_another_host_is_not_followed() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json={"data": [{"id": 1}], "next": "https://evil.test/steal"})

    src = source("http://api.test", {"s": {"path": "/s", "pagination": {"type": "next_url"}}},
                 handler=handler)
    with pytest.raises(SourceError) as err:
        read(src, "s")
    assert "https://evil.test/steal" in str(err.value) and "outside http://api.test" in str(err.value)


def test_a_cursor_that_does_not_advance_fails_instead_of_looping() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json={"data": [{"id": 1}], "next_cursor": "same"})

    src = source("http://api.test", {"s": {"path": "/s", "pagination": {"type": "cursor"}}},
                 handler=handler)
    with pytest.raises(SourceError, match="did not advance past 'same'"):
        read(src, "s")


@pytest.mark.parametrize(("body", "records"), [
    ([{"id": 1}], None),
    ({"data": [{"id": 1}]}, None),
    ({"items": [{"id": 1}]}, None),
    ({"results": [{"id": 1}], "count": 1}, None),
    ({"payload": {"rows": [{"id": 1}]}}, "$.payload.rows[*]"),
    ({"payload": {"rows": [{"id": 1}]}}, "$.payload.rows"),
], ids=["list-body", "data", "items", "results", "jsonpath-elements", "jsonpath-list"])
def test_records_are_found_in_the_body(body: Any, records: str | None) -> None:
    src = source("http://api.test", {"s": {"path": "/s", "records": records}},
                 handler=lambda r: httpx.Response(200, json=body))
    assert read(src, "s").ids == [1]


def test_records_nowhere_to_be_found_name_the_key_to_set() -> None:
    src = source("http://api.test", {"s": {"path": "/s"}},
                 handler=lambda r: httpx.Response(200, json={"payload": []}))
    with pytest.raises(SourceError) as err:
        src.discover()
    assert "sources.api.streams.s.records" in str(err.value)


@pytest.mark.parametrize(("fmt", "lookback", "sent"), [
    ("iso", 0, "2026-01-01T08:00:05.250000Z"),
    ("epoch", 0, "1767254405"),
    ("raw", 0, "2026-01-01T10:00:05.25+02:00"),
    ("iso", 60, "2026-01-01T07:59:05.250000Z"),
    ("epoch", 60, "1767254345"),
], ids=["iso", "epoch", "raw", "iso-lookback", "epoch-lookback"])
def test_incremental_read_sends_the_last_cursor_in_the_configured_format(fmt: str, lookback: int,
                                                                         sent: str) -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json=[{"id": 1, "updated_at": "2026-01-01T10:00:05.25+02:00"}])

    src = source("http://api.test", {"s": {"path": "/s", "cursor": {
        "field": "updated_at", "param": "since", "format": fmt, "initial": "2020-01-01T00:00:00Z",
        "lookback_s": lookback}}},
        handler=handler)
    first = read(src, "s")
    first_since = {"epoch": 1577836800 - lookback, "iso": "2019-12-31T23:59:00Z" if lookback else
                   "2020-01-01T00:00:00Z", "raw": "2020-01-01T00:00:00Z"}[fmt]
    assert seen[-1].url.params["since"] == str(first_since)
    last = first.checkpoints[-1]
    assert last["cursor"] == "2026-01-01T10:00:05.25+02:00" and last["done"]
    read(src, "s", checkpoint=last)
    assert seen[-1].url.params["since"] == sent


def test_a_resumed_incremental_read_keeps_the_filter_it_started_with(api: ApiServer) -> None:
    streams = {"items": {"path": "/items/pages", "primary_key": ["id"],
                         "cursor": {"field": "updated_at", "param": "updated_since"},
                         "pagination": {"type": "page_number", "size_param": "per_page", "size": 100}}}
    first = read(source(api.url, streams), "items")
    api.update_items(list(range(1, 601)), version=1)
    second = read(source(api.url, streams), "items", checkpoint=first.checkpoints[-1], batch_size=100)
    assert second.ids == [*range(1, 601), 3000]
    crashed_after = second.checkpoints[1]  # two pages committed; the cursor already went past them
    assert crashed_after["cursor"] > crashed_after["since"]
    resumed = read(source(api.url, streams), "items", checkpoint=crashed_after, batch_size=100)
    assert resumed.ids == [*range(201, 601), 3000]  # a moved filter would shift pages and skip some


def test_a_finished_full_read_being_resumed_reads_nothing_more(small_api: ApiServer) -> None:
    src = source(small_api.url, {"items": {"path": "/items/all"}})
    done = read(src, "items", mode="full_refresh").checkpoints[-1]
    before = len(small_api.log)
    assert read(src, "items", checkpoint=done, mode="full_refresh").items == []
    assert len(small_api.log) == before


def test_a_records_path_that_matches_nothing_names_the_path_and_the_body_keys(api: ApiServer) -> None:
    src = source(api.url, {"items": {"path": "/items/pages", "records": "$.dat[*]",
                                     "pagination": {"type": "page_number"}}})
    with pytest.raises(SourceError) as err:
        src.discover()
    message = str(err.value)
    assert "`records: $.dat[*]` matches nothing" in message
    assert "'data', 'page'" in message and "sources.api.streams.items.records" in message
    assert "full-refresh" not in message


def test_an_empty_list_under_the_records_path_is_the_last_page(api: ApiServer) -> None:
    src = source(api.url, {"items": {"path": "/items/pages", "records": "$.data[*]",
                                     "pagination": {"type": "page_number"}}})
    assert read(src, "items").ids == list(range(1, 3001))  # page 31 is {"data": [], ...}


@pytest.mark.parametrize(("path", "pagination", "missing"), [
    ("/items/link", {"type": "link_header"}, 'no Link header with rel="next"'),
    ("/items/next", {"type": "next_url"}, "the next URL at `$.next` is empty"),
], ids=["link_header", "next_url"])
def test_a_full_last_page_of_links_is_reported(small_api: ApiServer, path: str,
                                                pagination: dict[str, Any], missing: str) -> None:
    streams = {"items": {"path": path, "pagination": {**pagination, "size_param": "per_page",
                                                      "size": 100}}}
    got = read(source(small_api.url, streams), "items")
    assert got.ids == list(range(1, 301))
    notices = [i.message for i in got.items if isinstance(i, Notice)]
    assert len(notices) == 1 and missing in notices[0] and "page=3" in notices[0]
