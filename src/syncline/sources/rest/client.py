"""The HTTP client of the REST source: credentials, rate budget, retries, whole JSON bodies only."""

from __future__ import annotations

import datetime as dt
import email.utils
import json
import logging
import time
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import httpx

from syncline.backoff import full_jitter
from syncline.errors import ConfigurationError, RetriesSpent, SourceError
from syncline.sources.rest.auth import Credentials
from syncline.sources.rest.budget import Bucket, shared_bucket
from syncline.sources.rest.config import RestConfig, RetryConfig

Sleep = Callable[[float], None]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Fetched:
    """A 2xx response whose body parsed completely as JSON."""

    body: Any
    headers: httpx.Headers
    url: httpx.URL


def parse_retry_after(value: str | None, now: dt.datetime | None = None) -> float | None:
    """Seconds a ``Retry-After`` header asks for (delta-seconds or HTTP-date), None if unreadable."""
    if value is None or not value.strip():
        return None
    text = value.strip()
    try:
        seconds = float(text)
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(text)
        except (TypeError, ValueError, IndexError):
            return None
        if when.tzinfo is None:  # RFC 9110 dates are GMT
            when = when.replace(tzinfo=dt.UTC)
        seconds = (when - (now or dt.datetime.now(dt.UTC))).total_seconds()
    if seconds != seconds:  # NaN
        return None
    return max(0.0, seconds)


def backoff_delay(attempt: int, policy: RetryConfig) -> float:
    """The wait before retry number ``attempt`` (1-based), by the source's `retry:` policy."""
    return full_jitter(attempt, policy.backoff_base_s, policy.max_backoff_s)


@dataclass
class RequestFigures:
    """What one stream's requests did: sent, retried, answered, and waited."""

    requests: int = 0
    retries: int = 0
    statuses: Counter[str] = field(default_factory=Counter)  # HTTP status, or the transport error
    retry_wait_s: float = 0.0  # slept before retries (Retry-After or backoff)
    rate_limit_wait_s: float = 0.0  # waited for the rate limit's tokens
    #: the lowest share of the API's own rate limit left, in percent, from its answers'
    #: X-RateLimit-Remaining / X-RateLimit-Limit (or RateLimit-*) headers; None: never said
    rate_limit_left: float | None = None

    def saw(self, headers: httpx.Headers) -> None:
        """Note what an answer says of the API's rate limit."""
        for prefix in ("x-ratelimit-", "ratelimit-"):
            left, limit = headers.get(prefix + "remaining"), headers.get(prefix + "limit")
            try:
                share = 100.0 * float(left or "") / float((limit or "").split(",")[0].split(";")[0])
            except ValueError:
                continue
            except ZeroDivisionError:
                continue
            if self.rate_limit_left is None or share < self.rate_limit_left:
                self.rate_limit_left = round(share, 2)
            return

    def to_json(self) -> dict[str, Any]:
        out = {"requests": self.requests, "retries": self.retries,
               "statuses": dict(sorted(self.statuses.items())),
               "retry_wait_s": round(self.retry_wait_s, 3),
               "rate_limit_wait_s": round(self.rate_limit_wait_s, 3)}
        if self.rate_limit_left is not None:
            out["rate_limit_left"] = self.rate_limit_left
        return out


class RestClient:
    """Sends the requests of one source; every failure leaves as a SynclineError."""

    def __init__(self, source: str, config: RestConfig, *,
                 transport: httpx.BaseTransport | None = None, sleep: Sleep = time.sleep,
                 bucket: Bucket | None = None) -> None:
        self.source = source
        self.config = config
        self.policy = config.retry
        self._sleep = sleep
        self.http = httpx.Client(transport=transport, headers=config.headers, follow_redirects=True,
                                 timeout=httpx.Timeout(config.timeout_s))
        self.credentials = Credentials(config.auth, f"sources.{source}.auth", self._token_request)
        limit = config.rate_limit
        if bucket is None and limit is not None:
            bucket = shared_bucket(source, config.base_url, limit.requests, limit.per_seconds)
        self.bucket = bucket
        self.requests = 0  # requests sent, retries included
        self.waited_s = 0.0  # time slept between retries
        self.figures: dict[str | None, RequestFigures] = {}  # per stream (None: a token request)

    def url(self, path: str) -> str:
        """The absolute URL of a path below base_url (absolute URLs pass unchanged)."""
        if path.startswith(("http://", "https://")):
            return path
        return f"{self.config.base_url}/{path.lstrip('/')}"

    def get(self, url: str, params: Mapping[str, Any] | None = None, *,
            stream: str | None = None) -> Fetched:
        return self._send("GET", self.url(url), params=params, stream=stream, authed=True)

    def close(self) -> None:
        self.http.close()

    def _token_request(self, url: str, form: dict[str, str]) -> Any:
        return self._send("POST", url, form=form, stream=None, authed=False).body

    def safe_url(self, url: httpx.URL | str) -> str:
        """The URL with secret query parameters masked, fit for messages and logs."""
        u = httpx.URL(url)
        for name in self.credentials.secret_params:
            if name in u.params:
                u = u.copy_set_param(name, "***")
        return str(u)

    def _send(self, method: str, url: str, *, params: Mapping[str, Any] | None = None,
              form: dict[str, str] | None = None, stream: str | None, authed: bool) -> Fetched:
        attempt, refreshed = 0, False
        while True:
            attempt += 1
            headers: dict[str, str] = {}
            query: dict[str, Any] = dict(params or {})
            if authed:
                self.credentials.apply(headers, query)
            figures = self.figures.setdefault(stream, RequestFigures())
            if self.bucket is not None:
                figures.rate_limit_wait_s += self.bucket.take()
            self.requests += 1
            figures.requests += 1
            figures.retries += attempt > 1
            wait: float | None = None
            began = time.monotonic()
            try:
                resp = self.http.request(method, url, params=query or None, data=form, headers=headers)
            except httpx.TransportError as exc:  # connection refused/reset, timeouts, cut bodies
                problem = f"{type(exc).__name__}: {exc}"
                shown = self.safe_url(url)
                _said(method, shown, None, began, attempt, stream, problem)
                figures.statuses[type(exc).__name__] += 1
            else:
                shown = self.safe_url(resp.request.url)
                status = resp.status_code
                _said(method, shown, status, began, attempt, stream, None)
                figures.statuses[str(status)] += 1
                figures.saw(resp.headers)
                if 200 <= status < 300:
                    try:
                        # The whole body parses or the page is fetched again: never half a page.
                        return Fetched(json.loads(resp.content), resp.headers, resp.url)
                    except ValueError as exc:
                        problem = f"incomplete or invalid JSON body ({len(resp.content)} bytes): {exc}"
                elif status == 401 and authed and self.credentials.refreshable and not refreshed:
                    refreshed = True  # the token may have been revoked early: renew it once
                    self.credentials.refresh()
                    attempt -= 1
                    continue
                elif status == 429 or status >= 500:
                    problem = f"HTTP {status} {resp.reason_phrase}".strip()
                    wait = parse_retry_after(resp.headers.get("Retry-After"))
                    if wait is not None:
                        wait = min(wait, self.policy.max_retry_after_s)
                else:
                    raise self._refused(method, shown, resp, stream, authed)
            if attempt >= self.policy.max_attempts:
                raise RetriesSpent(
                    f"source '{self.source}': {method} {shown} failed {attempt} times; last: {problem}",
                    stream=stream,
                    fix="the next run resumes from the last committed page; if it keeps failing, "
                        "check the API's status, or raise "
                        f"`retry.max_attempts` / `timeout_s` of sources.{self.source}")
            delay = wait if wait is not None else backoff_delay(attempt, self.policy)
            self.waited_s += delay
            figures.retry_wait_s += delay
            self._sleep(delay)

    def _refused(self, method: str, shown: str, resp: httpx.Response, stream: str | None,
                 authed: bool) -> ConfigurationError | SourceError:
        status = resp.status_code
        what = f"{method} {shown} answered HTTP {status} {resp.reason_phrase}".rstrip()
        detail = resp.text[:200].strip()
        if detail:
            what += f": {detail}"
        where = self.credentials.where
        if not authed:
            return ConfigurationError(
                f"source '{self.source}': the token endpoint refused the client credentials: {what}",
                stream=stream, fix=f"check client_id, client_secret and scope of {where}")
        if status in (401, 403):
            if self.config.auth is None:
                fix = f"the API wants credentials: set {where}"
            elif status == 401:
                fix = f"check the credentials of {where} (and the ${{env:...}} they reference)"
            else:
                fix = f"the credentials of {where} lack access to this endpoint: grant it, or " \
                      "deselect the stream"
            return ConfigurationError(f"source '{self.source}': {what}", stream=stream, fix=fix)
        return SourceError(
            f"source '{self.source}': {what}", stream=stream,
            fix=f"check the stream's path and params under sources.{self.source}.streams")


def _said(method: str, shown: str, status: int | None, began: float, attempt: int,
          stream: str | None, problem: str | None) -> None:
    """One line of the run's log per request: method, path, status, duration and try."""
    ms = round((time.monotonic() - began) * 1000)
    path = httpx.URL(shown).raw_path.decode("ascii", "replace")
    outcome = str(status) if status is not None else problem
    log.log(logging.INFO if status is not None and status < 400 else logging.WARNING,
            "%s %s -> %s in %d ms%s", method, path, outcome, ms, f" (try {attempt})" if attempt > 1 else "",
            extra={"stream": stream, "fields": {"method": method, "path": path, "status": status,
                                                "duration_ms": ms, "try": attempt}})
