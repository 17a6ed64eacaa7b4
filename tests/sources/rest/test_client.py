"""The REST client: retries and Retry-After, credential errors, OAuth 2 tokens, the rate budget."""

from __future__ import annotations

import datetime as dt
import email.utils
import time
from typing import Any

import httpx
import pytest

from syncline.errors import ConfigurationError, SourceError, TransientError
from syncline.sources.rest import RestClient, parse_retry_after
from syncline.sources.rest.budget import TokenBucket

from api_server import FAULTS, ApiServer
from rest_helpers import FAST_RETRY, config, read, source

NOW = dt.datetime(2026, 3, 1, 12, 0, 0, tzinfo=dt.UTC)
PAGE = {"pages": {"path": "/items/pages", "primary_key": ["id"],
                  "pagination": {"type": "page_number", "size_param": "per_page", "size": 20}}}


def http_date(ts: dt.datetime) -> str:
    return email.utils.format_datetime(ts, usegmt=True)


@pytest.mark.parametrize(("header", "seconds"), [
    ("3", 3.0),
    ("0.3", 0.3),
    (http_date(NOW + dt.timedelta(seconds=2)), 2.0),
    (http_date(NOW - dt.timedelta(seconds=30)), 0.0),
    ("soon", None),
    ("", None),
], ids=["seconds", "fraction", "http-date", "date-in-the-past", "garbage", "empty"])
def test_retry_after_header_forms(header: str, seconds: float | None) -> None:
    assert parse_retry_after(header, now=NOW) == seconds


def scripted(responses: list[httpx.Response]) -> tuple[Any, list[httpx.Request]]:
    """A MockTransport handler answering with ``responses`` in turn, and its request log."""
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return responses[min(len(seen), len(responses)) - 1]

    return handler, seen


@pytest.mark.parametrize(("max_retry_after", "expected"), [(120.0, [7.0, 4.0]), (2.0, [2.0, 2.0])],
                         ids=["honoured", "clamped"])
def test_wait_before_a_retry_is_the_servers_retry_after(max_retry_after: float,
                                                        expected: list[float]) -> None:
    date = http_date(dt.datetime.now(dt.UTC) + dt.timedelta(seconds=4))  # HTTP-dates have 1 s steps
    handler, seen = scripted([httpx.Response(429, headers={"Retry-After": "7"}),
                              httpx.Response(503, headers={"Retry-After": date}),
                              httpx.Response(200, json=[{"id": 1}])])
    slept: list[float] = []
    cfg = config("http://api.test", {"all": {"path": "/all"}},
                 retry={**FAST_RETRY, "max_retry_after_s": max_retry_after})
    client = RestClient("api", cfg, transport=httpx.MockTransport(handler), sleep=slept.append)
    assert client.get("/all").body == [{"id": 1}]
    assert len(seen) == 3
    assert slept[0] == expected[0]
    assert expected[1] - 1.1 <= slept[1] <= expected[1]


def test_retry_after_is_waited_for_on_a_real_socket(small_api: ApiServer) -> None:
    small_api.retry_after = "0.3"
    small_api.inject("429s", path="/items/all")
    cfg = config(small_api.url, {"all": {"path": "/items/all"}},
                 retry={**FAST_RETRY, "max_retry_after_s": 5.0})
    client = RestClient("api", cfg)
    started = time.monotonic()
    body = client.get("/items/all").body
    elapsed = time.monotonic() - started
    assert len(body) == 300
    assert 0.3 <= elapsed < 2.0


@pytest.mark.parametrize("fault", FAULTS)
def test_each_transient_fault_is_retried_and_the_page_arrives_whole(small_api: ApiServer,
                                                                    fault: str) -> None:
    small_api.slow_s = 0.6
    small_api.inject(fault, path="/items/pages", times=2)
    src = source(small_api.url, PAGE, timeout_s=0.3)
    got = read(src, "pages")
    assert got.ids == list(range(1, 301))
    assert not got.bad
    assert src.client.requests >= 15 + 2


def test_exhausted_retries_raise_a_transient_error_without_leaking_the_key() -> None:
    handler, seen = scripted([httpx.Response(503)])
    cfg = config("http://api.test", {"all": {"path": "/all"}},
                 retry={**FAST_RETRY, "max_attempts": 3},
                 auth={"type": "api_key", "in": "query", "name": "key", "value": "s3cret"})
    client = RestClient("api", cfg, transport=httpx.MockTransport(handler), sleep=lambda s: None)
    with pytest.raises(TransientError) as err:
        client.get("/all", {"page": 2})
    assert len(seen) == 3
    assert seen[0].url.params["key"] == "s3cret"
    message = str(err.value)
    assert "failed 3 times" in message and "HTTP 503" in message and "page=2" in message
    assert "s3cret" not in message and "key=%2A%2A%2A" in message


@pytest.mark.parametrize(("status", "error", "names"), [
    (400, SourceError, "streams"),
    (404, SourceError, "streams"),
    (401, ConfigurationError, "sources.api.auth"),
    (403, ConfigurationError, "sources.api.auth"),
], ids=["400", "404", "401", "403"])
def test_client_errors_fail_at_once_with_the_right_error(status: int, error: type[Exception],
                                                         names: str) -> None:
    handler, seen = scripted([httpx.Response(status, json={"message": "nope"})])
    client = RestClient("api", config("http://api.test", {"all": {"path": "/all"}},
                                      auth={"type": "bearer", "token": "t0k"}),
                        transport=httpx.MockTransport(handler), sleep=lambda s: None)
    with pytest.raises(error) as err:
        client.get("/all")
    assert len(seen) == 1
    assert names in str(err.value) and f"HTTP {status}" in str(err.value)
    assert "nope" in str(err.value)


@pytest.mark.parametrize("auth", [
    {"type": "api_key", "in": "header", "name": "X-Api-Key", "value": "k1"},
    {"type": "api_key", "in": "query", "name": "api_key", "value": "k1"},
    {"type": "bearer", "token": "k1"},
    {"type": "basic", "username": "ann", "password": "k1"},
], ids=["api-key-header", "api-key-query", "bearer", "basic"])
def test_static_credentials_are_sent_and_a_wrong_one_names_the_auth_key(
        small_api: ApiServer, auth: dict[str, str]) -> None:
    if auth["type"] == "api_key":
        small_api.auth = (auth["in"], auth["name"], "k1")
    else:
        small_api.auth = {"bearer": ("bearer", "k1"), "basic": ("basic", "ann", "k1")}[auth["type"]]
    assert len(read(source(small_api.url, PAGE, auth=auth), "pages").ids) == 300
    wrong = {k: ("wrong" if v == "k1" else v) for k, v in auth.items()}
    with pytest.raises(ConfigurationError) as err:
        read(source(small_api.url, PAGE, auth=wrong), "pages")
    assert "sources.api.auth" in str(err.value) and "401" in str(err.value)
    assert "wrong" not in str(err.value)


def oauth(api: ApiServer, secret: str = "cs") -> dict[str, str]:
    api.auth = ("oauth2", "cid", "cs")
    return {"type": "oauth2_client_credentials", "token_url": f"{api.url}/oauth/token",
            "client_id": "cid", "client_secret": secret}


def test_oauth2_token_is_reused_and_renewed_once_when_revoked(small_api: ApiServer) -> None:
    src = source(small_api.url, PAGE, auth=oauth(small_api))
    schema = src.discover()[0]
    from syncline.stream import ReadRequest

    pages = src.read(ReadRequest(stream=schema, mode="full_refresh"))
    first = [next(pages) for _ in range(4)]  # two pages and their checkpoints
    small_api.tokens.clear()  # the provider revokes the token mid-read
    rest = list(pages)
    rows = [r for i in first + rest if hasattr(i, "num_rows") for r in i.to_pylist()]
    assert [r["id"] for r in rows] == list(range(1, 301))
    assert small_api.tokens_issued == 2


def test_oauth2_token_that_expires_is_fetched_again(small_api: ApiServer) -> None:
    auth = oauth(small_api)
    small_api.token_lifetime = 0
    src = source(small_api.url, PAGE, auth=auth)
    assert len(read(src, "pages").ids) == 300
    assert small_api.tokens_issued == len(small_api.requests_to("/items"))


def test_oauth2_refused_client_secret_is_a_configuration_error(small_api: ApiServer) -> None:
    src = source(small_api.url, PAGE, auth=oauth(small_api, secret="bad"))
    with pytest.raises(ConfigurationError) as err:
        src.check()
    assert "token endpoint refused" in str(err.value) and "sources.api.auth" in str(err.value)
    assert len(small_api.requests_to("/items")) == 0


def test_token_bucket_spaces_requests_beyond_the_burst() -> None:
    now = [0.0]
    slept: list[float] = []

    def sleep(s: float) -> None:
        slept.append(s)
        now[0] += s

    bucket = TokenBucket(3, 1.0, clock=lambda: now[0], sleep=sleep)
    waits = [bucket.take() for _ in range(6)]
    assert waits[:3] == [0, 0, 0]
    assert waits[3:] == pytest.approx([1 / 3] * 3)
    now[0] += 10  # an idle bucket refills only up to its burst
    assert [bucket.take() for _ in range(4)][-1] == pytest.approx(1 / 3)


def test_rate_budget_is_shared_by_all_streams_of_a_source(small_api: ApiServer) -> None:
    paged = {"type": "page_number", "size_param": "per_page", "size": 50}
    streams = {"a": {"path": "/items/pages", "pagination": paged},
               "b": {"path": "/items/link", "pagination": {"type": "link_header"},
                     "params": {"per_page": 50}}}
    src = source(small_api.url, streams, rate_limit={"requests": 4, "per_seconds": 0.4})
    started = time.monotonic()
    assert len(read(src, "a").ids) == len(read(src, "b").ids) == 300
    elapsed = time.monotonic() - started
    sent = len(small_api.requests_to("/items"))
    assert sent >= 13  # 7 pages of a (the last empty), 6 of b; page 1 of each sampled once
    # one budget of 4 requests per 0.4 s for both streams: all but the first 4 wait 0.1 s each
    assert elapsed >= (sent - 4) * 0.1 * 0.9
