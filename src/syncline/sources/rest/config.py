"""Configuration of the declarative REST source: auth, retries, rate budget, streams, pagination."""

from __future__ import annotations

import re
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator, model_validator

from syncline.schema import declared_types
from syncline.sources.rest.extract import compile_path


def _jsonpath(value: str | None) -> str | None:
    if value is not None:
        compile_path(value)  # a typo fails when the file is loaded, not mid-run
    return value


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


# -- auth ------------------------------------------------------------------------------


class ApiKeyAuth(_Model):
    """A static key sent in a header or a query parameter."""

    type: Literal["api_key"] = Field(description="Auth type.")
    location: Literal["header", "query"] = Field(
        "header", alias="in", description="Where the key goes: header or query.")
    name: str = Field(description="Header or query parameter name, e.g. X-Api-Key.")
    value: SecretStr = Field(description="The key; use ${env:NAME} to keep it out of the file.")


class BearerAuth(_Model):
    """A static bearer token in the Authorization header."""

    type: Literal["bearer"] = Field(description="Auth type.")
    token: SecretStr = Field(description="The token; use ${env:NAME} to keep it out of the file.")


class BasicAuth(_Model):
    """HTTP basic authentication."""

    type: Literal["basic"] = Field(description="Auth type.")
    username: str = Field(description="User name.")
    password: SecretStr = Field(description="Password; use ${env:NAME} to keep it out of the file.")


class OAuth2ClientCredentials(_Model):
    """OAuth 2 client credentials grant; the token is refreshed when it expires or on a 401."""

    type: Literal["oauth2_client_credentials"] = Field(description="Auth type.")
    token_url: str = Field(description="Token endpoint (absolute URL).")
    client_id: str = Field(description="Client id.")
    client_secret: SecretStr = Field(description="Client secret; use ${env:NAME}.")
    scope: str | None = Field(None, description="Space-separated scopes to request.")


Auth = Annotated[ApiKeyAuth | BearerAuth | BasicAuth | OAuth2ClientCredentials,
                 Field(discriminator="type")]


# -- transport policy ------------------------------------------------------------------


class RetryConfig(_Model):
    """Retries of one HTTP request on connection errors, timeouts, 5xx, 429 and broken bodies."""

    max_attempts: int = Field(6, ge=1, le=100, description="Attempts per request, the first included.")
    backoff_base_s: float = Field(0.5, ge=0, description="First backoff ceiling; doubles each retry.")
    max_backoff_s: float = Field(30.0, ge=0, description="Largest backoff ceiling.")
    # 6 attempts x 30 s timeouts + 5 waits x 60 s stays under the engine's default
    # source_timeout_s (600 s), so the client gives up before the engine calls it silent.
    max_retry_after_s: float = Field(
        60.0, ge=0, description="Longest Retry-After wait honoured; longer values are clamped.")


class RateLimit(_Model):
    """A request budget shared by every stream of the source."""

    requests: int = Field(ge=1, description="Requests allowed per window.")
    per_seconds: float = Field(gt=0, description="Window length in seconds.")


# -- pagination ------------------------------------------------------------------------


class PageNumber(_Model):
    """?page=1, 2, 3 ..."""

    type: Literal["page_number"] = Field(description="Pagination type.")
    param: str = Field("page", description="Query parameter holding the page number.")
    start: int = Field(1, ge=0, description="Number of the first page.")
    size_param: str | None = Field(None, description="Query parameter holding the page size.")
    size: int | None = Field(None, ge=1, description="Page size; a shorter page is the last one.")


class Offset(_Model):
    """?offset=0&limit=100, ?offset=100&limit=100 ..."""

    type: Literal["offset"] = Field(description="Pagination type.")
    offset_param: str = Field("offset", description="Query parameter holding the offset.")
    limit_param: str = Field("limit", description="Query parameter holding the page size.")
    limit: int = Field(100, ge=1, description="Page size; a shorter page is the last one.")


class CursorPages(_Model):
    """A token in each body names the next page: ?cursor=<token>."""

    type: Literal["cursor"] = Field(description="Pagination type.")
    token_path: str = Field("$.next_cursor", description="JSONPath of the next token in the body.")
    param: str = Field("cursor", description="Query parameter carrying the token.")
    size_param: str | None = Field(None, description="Query parameter holding the page size.")
    size: int | None = Field(
        None, ge=1, description="Page size; a full page without a next token is reported.")

    _token_path = field_validator("token_path")(_jsonpath)


class LinkHeader(_Model):
    """RFC 5988 `Link: <url>; rel="next"` headers."""

    type: Literal["link_header"] = Field(description="Pagination type.")
    size_param: str | None = Field(
        None, description="Query parameter holding the page size (first request; links carry it).")
    size: int | None = Field(
        None, ge=1, description="Page size; a full page without a next link is reported.")


class NextUrl(_Model):
    """The body holds the full URL of the next page."""

    type: Literal["next_url"] = Field(description="Pagination type.")
    path: str = Field("$.next", description="JSONPath of the next page's URL in the body.")
    size_param: str | None = Field(
        None, description="Query parameter holding the page size (first request; URLs carry it).")
    size: int | None = Field(
        None, ge=1, description="Page size; a full page without a next URL is reported.")

    _path = field_validator("path")(_jsonpath)


class NoPages(_Model):
    """One request returns everything."""

    type: Literal["none"] = Field(description="Pagination type.")


Pagination = Annotated[PageNumber | Offset | CursorPages | LinkHeader | NextUrl | NoPages,
                       Field(discriminator="type")]


# -- streams ---------------------------------------------------------------------------


class CursorConfig(_Model):
    """A record field that grows on every change, and how to ask the API for newer records."""

    field: str = Field(description="Record field holding the cursor value, e.g. updated_at.")
    param: str | None = Field(
        None, description="Query parameter the last cursor value is sent in, e.g. updated_since.")
    format: Literal["raw", "iso", "epoch"] = Field(
        "raw", description="How the value is sent back: raw (exactly as the API returned it), "
        "or reformatted as ISO 8601 UTC with Z (iso) or epoch seconds (epoch). Reformatting "
        "changes the text (offset, fractional digits): an API comparing text may then skip "
        "records at the boundary.")
    initial: str | int | None = Field(None, description="Value sent on the very first read.")
    lookback_s: float = Field(
        0.0, ge=0, description="Ask for this many seconds before the last cursor value (iso and "
        "epoch formats only; raw values are sent untouched): catches records changed on already-read pages while a read was paging "
        "an API not sorted by the cursor. The overlap is merged away by the primary key.")


class ParentConfig(_Model):
    """Request this stream once per record of another stream."""

    stream: str = Field(description="The parent stream's name.")
    key: str = Field("id", description="Field of each parent record to substitute into the path.")
    as_: str = Field(alias="as", description="Placeholder name in this stream's path, e.g. org_id.")


class RestStream(_Model):
    """One endpoint read as one stream."""

    path: str = Field(description="Path after base_url, e.g. /users or /orgs/{org_id}/repos.")
    params: dict[str, str | int | float | bool] = Field(
        default_factory=dict, description="Query parameters of this stream's requests.")
    records: str | None = Field(
        None, description="JSONPath of the records in a body (default: the body if it is a "
        "list, else $.data, $.items or $.results).")
    primary_key: list[str] = Field(default_factory=list, description="Fields identifying a record.")
    cursor: CursorConfig | None = Field(None, description="Incremental reads by this cursor.")
    pagination: Pagination = Field(
        default_factory=lambda: NoPages(type="none"), description="How pages follow each other.")
    parent: ParentConfig | None = Field(None, description="Request the path once per parent record.")
    flatten: bool = Field(False, description="Nested objects become a__b columns instead of JSON.")
    fields: dict[str, str] = Field(
        default_factory=dict, description="Canonical types by field, overriding the inferred ones "
        "(e.g. {amount: decimal(12,2)}).")

    _records = field_validator("records")(_jsonpath)

    _types = field_validator("fields")(declared_types)


_PLACEHOLDER = re.compile(r"\{([^{}]+)\}")


class RestConfig(_Model):
    """A JSON HTTP API described declaratively: one stream per endpoint."""

    type: Literal["rest"] = Field(description="Source type.")
    base_url: str = Field(description="Scheme, host and base path, e.g. https://api.example.com/v1.")
    auth: Auth | None = Field(None, description="How every request is authenticated.")
    headers: dict[str, str] = Field(default_factory=dict, description="Headers of every request.")
    params: dict[str, str | int | float | bool] = Field(
        default_factory=dict, description="Query parameters of every request.")
    retry: RetryConfig = Field(default_factory=lambda: RetryConfig(), description="Retry policy.")
    rate_limit: RateLimit | None = Field(None, description="Request budget shared by all streams.")
    timeout_s: float = Field(30.0, gt=0, description="Timeout of each request, in seconds.")
    streams: dict[str, RestStream] = Field(min_length=1, description="Endpoints by stream name.")

    @field_validator("base_url")
    @classmethod
    def _http(cls, value: str) -> str:
        if not value.startswith(("http://", "https://")):
            raise ValueError("expected an http:// or https:// URL")
        return value.rstrip("/")

    @model_validator(mode="after")
    def _parents(self) -> RestConfig:
        for name, stream in self.streams.items():
            wanted = set(_PLACEHOLDER.findall(stream.path))
            given = {stream.parent.as_} if stream.parent else set()
            if wanted != given:
                raise ValueError(
                    f"stream {name}: path {stream.path!r} has placeholders {sorted(wanted)} "
                    f"but `parent.as` provides {sorted(given)}")
            seen = [name]
            while stream.parent is not None:
                if stream.parent.stream not in self.streams:
                    raise ValueError(f"stream {seen[-1]}: parent stream "
                                     f"{stream.parent.stream!r} is not defined")
                if stream.parent.stream in seen:
                    raise ValueError(f"streams {' -> '.join([*seen, stream.parent.stream])} "
                                     "form a cycle of parents")
                seen.append(stream.parent.stream)
                stream = self.streams[stream.parent.stream]
        return self


__all__ = [
    "ApiKeyAuth", "Auth", "BasicAuth", "BearerAuth", "CursorConfig", "CursorPages", "LinkHeader",
    "NextUrl", "NoPages", "OAuth2ClientCredentials", "Offset", "PageNumber", "Pagination",
    "ParentConfig", "RateLimit", "RestConfig", "RestStream", "RetryConfig",
]
