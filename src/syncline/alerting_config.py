"""The alerting part of `syncline.yaml`: `channels:`, where notifications go (webhook, Slack, email).

Pure configuration models: no network, nothing of the store. A channel whose `${env:...}`
is unset is kept as written; delivering to it fails (and is retried) until the variable is set.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator

from syncline.schedule import parse_duration


class _Channel(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    timeout: str = Field("10s", description="<N>s|m: how long one delivery may take before it "
                         "counts as failed (and is retried).")

    @field_validator("timeout")
    @classmethod
    def _timeout(cls, value: str) -> str:
        parse_duration(value)
        return value

    def timeout_s(self) -> float:
        return parse_duration(self.timeout).total_seconds()


def _http_url(value: str) -> str:
    if not value.startswith(("http://", "https://")) and not value.startswith("${env:"):
        raise ValueError("expected an http:// or https:// URL")
    return value


class WebhookChannel(_Channel):
    """A POST of the versioned JSON payload, signed with the channel's secret (docs/alerts.md)."""

    type: Literal["webhook"]
    url: str = Field(description="Where to POST each notification (https:// outside loopback).")
    secret: SecretStr = Field(description="The key of the HMAC-SHA256 `Syncline-Signature` "
                              "header; the receiver checks it with the same secret.")
    headers: dict[str, str] = Field(default_factory=dict,
                                    description="Extra request headers (e.g. an Authorization).")

    _url = field_validator("url")(_http_url)


class SlackChannel(_Channel):
    """A Slack incoming webhook (https://hooks.slack.com/services/...)."""

    type: Literal["slack"]
    url: SecretStr = Field(description="The incoming webhook's URL; it is a secret (it holds the "
                           "token), so write it as ${env:NAME}.")

    @field_validator("url")
    @classmethod
    def _slack_url(cls, value: SecretStr) -> SecretStr:
        _http_url(value.get_secret_value())
        return value


class EmailChannel(_Channel):
    """Mail through an SMTP server, with STARTTLS and login; HTML and plain-text parts."""

    type: Literal["email"]
    host: str = Field(description="The SMTP server.")
    port: int = Field(587, ge=1, le=65535, description="Its port: 587 (STARTTLS), 465 (tls: "
                      "true) or 25.")
    starttls: bool = Field(True, description="Upgrade the connection with STARTTLS before "
                           "logging in (refused if the server cannot).")
    tls: bool = Field(False, description="Connect over TLS from the start (port 465) instead.")
    ca_file: str | None = Field(None, description="A PEM file of the certificate authority the "
                                "server's certificate is checked against (default: the system's).")
    user: str | None = Field(None, description="Login name, if the server wants a login.")
    password: SecretStr | None = Field(None, description="Login password (write ${env:NAME}).")
    sender: str = Field(alias="from", description="The From: address.")
    to: list[str] = Field(min_length=1, description="The recipients.")

    @field_validator("to")
    @classmethod
    def _addresses(cls, value: list[str]) -> list[str]:
        bad = [a for a in value if "@" not in a and not a.startswith("${env:")]
        if bad:
            raise ValueError(f"{bad[0]!r} is not an email address")
        return value


ChannelConfig = WebhookChannel | SlackChannel | EmailChannel
CHANNEL_TYPES: dict[str, type[BaseModel]] = {
    "webhook": WebhookChannel, "slack": SlackChannel, "email": EmailChannel}


def channel_config_model(kind: object) -> type[BaseModel]:
    """The model of a channel `type:`; KeyError naming the known types."""
    if not isinstance(kind, str) or kind not in CHANNEL_TYPES:
        raise KeyError(", ".join(repr(k) for k in CHANNEL_TYPES))
    return CHANNEL_TYPES[kind]
