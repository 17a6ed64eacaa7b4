"""Credentials of REST requests: static keys and tokens, and OAuth 2 client-credentials tokens."""

from __future__ import annotations

import base64
import threading
import time
from collections.abc import Callable
from typing import Any

from syncline.errors import ConfigurationError
from syncline.sources.rest.config import (
    ApiKeyAuth,
    Auth,
    BasicAuth,
    BearerAuth,
    OAuth2ClientCredentials,
)

# A token this close to its expiry is renewed before use rather than sent to fail.
EXPIRY_SKEW_S = 30.0
DEFAULT_TOKEN_LIFETIME_S = 3600.0

TokenFetch = Callable[[str, dict[str, str]], Any]
"""POST a form to a URL and return the parsed JSON body (with the client's retries)."""


class Credentials:
    """Adds the configured credentials to a request's headers and query parameters."""

    def __init__(self, auth: Auth | None, where: str, fetch: TokenFetch,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.auth = auth
        self.where = where  # e.g. "sources.api.auth", named in every credential error
        self._fetch = fetch
        self._clock = clock
        self._token: str | None = None
        self._expires = 0.0
        self._lock = threading.Lock()

    @property
    def refreshable(self) -> bool:
        return isinstance(self.auth, OAuth2ClientCredentials)

    @property
    def secret_params(self) -> set[str]:
        """Query parameters whose values must never appear in messages."""
        if isinstance(self.auth, ApiKeyAuth) and self.auth.location == "query":
            return {self.auth.name}
        return set()

    def apply(self, headers: dict[str, str], params: dict[str, Any]) -> None:
        auth = self.auth
        if auth is None:
            return
        if isinstance(auth, ApiKeyAuth):
            target: dict[str, Any] = headers if auth.location == "header" else params
            target[auth.name] = auth.value.get_secret_value()
        elif isinstance(auth, BearerAuth):
            headers["Authorization"] = f"Bearer {auth.token.get_secret_value()}"
        elif isinstance(auth, BasicAuth):
            pair = f"{auth.username}:{auth.password.get_secret_value()}".encode()
            headers["Authorization"] = "Basic " + base64.b64encode(pair).decode("ascii")
        else:
            headers["Authorization"] = f"Bearer {self._current_token()}"

    def refresh(self) -> None:
        """Forget the OAuth 2 token so the next request fetches a new one (after a 401)."""
        with self._lock:
            self._token = None

    def _current_token(self) -> str:
        with self._lock:
            if self._token is None or self._clock() >= self._expires - EXPIRY_SKEW_S:
                self._token, lifetime = self._new_token()
                self._expires = self._clock() + lifetime
            return self._token

    def _new_token(self) -> tuple[str, float]:
        auth = self.auth
        assert isinstance(auth, OAuth2ClientCredentials)
        form = {"grant_type": "client_credentials", "client_id": auth.client_id,
                "client_secret": auth.client_secret.get_secret_value()}
        if auth.scope:
            form["scope"] = auth.scope
        body = self._fetch(auth.token_url, form)
        token = body.get("access_token") if isinstance(body, dict) else None
        if not isinstance(token, str) or not token:
            raise ConfigurationError(
                f"{self.where}: the token endpoint {auth.token_url} answered without an access_token",
                fix=f"check `token_url` of {self.where}: it must be an OAuth 2 token endpoint")
        lifetime = body.get("expires_in")
        if not isinstance(lifetime, (int, float)) or isinstance(lifetime, bool):
            lifetime = DEFAULT_TOKEN_LIFETIME_S
        return token, float(lifetime)
