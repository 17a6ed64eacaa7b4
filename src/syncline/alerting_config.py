"""The alerting part of `syncline.yaml`: `channels:`, where notifications go (webhook, Slack,
email), and `alerts:`, the rules that decide what is told: a condition over a signal (the
catalogue below, documented in docs/alerts.md) or an event kind.

Pure configuration models: no network, nothing of the store. A channel whose `${env:...}`
is unset is kept as written; delivering to it fails (and is retried) until the variable is set.
"""

from __future__ import annotations

import datetime as dt
import difflib
import operator
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator

from syncline.event_kinds import KINDS, SEVERITIES, Severity
from syncline.schedule import duration_text, parse_duration, zone, zone_text


class _Channel(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    timeout: str = Field("10s", description="<N>s|m: how long one delivery may take before it "
                         "counts as failed (and is retried).")

    _timeout = field_validator("timeout")(duration_text)

    def timeout_s(self) -> float:
        return parse_duration(self.timeout).total_seconds()


def _http_url(value: str) -> str:
    if not value.startswith(("http://", "https://")):
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
        bad = [a for a in value if "@" not in a]
        if bad:
            raise ValueError(f"{bad[0]!r} is not an email address")
        return value


class GithubIssuesChannel(_Channel):
    """A ticket tracker: GitHub issues of one repository. Named by a rule forwarding
    `incident.opened`, it follows each such incident: an issue opened, a comment for each
    change, closed on resolution (reopened with it)."""

    type: Literal["github_issues"]
    repo: str = Field(description="owner/name of the repository the issues go to.")
    token: SecretStr = Field(description="A token allowed to write its issues (${env:NAME}).")
    url: str = Field("https://api.github.com", description="The API's base URL (GitHub "
                     "Enterprise: https://HOST/api/v3).")

    _url = field_validator("url")(_http_url)

    @field_validator("repo")
    @classmethod
    def _repo(cls, value: str) -> str:
        if value.count("/") != 1 or not all(value.split("/")):
            raise ValueError("expected owner/name, e.g. acme/data-incidents")
        return value


class JiraChannel(_Channel):
    """A ticket tracker: Jira issues of one project, following incidents as GitHub issues do;
    resolution moves the issue through the transition named `done`."""

    type: Literal["jira"]
    url: str = Field(description="The Jira site, e.g. https://acme.atlassian.net.")
    project: str = Field(description="The project key, e.g. DATA.")
    user: str = Field(description="The account the token belongs to.")
    token: SecretStr = Field(description="Its API token (${env:NAME}).")
    issue_type: str = Field("Bug", description="The type of the issues it opens.")
    done: str = Field("Done", description="The name of the transition that resolves an issue.")

    _url = field_validator("url")(_http_url)


ChannelConfig = WebhookChannel | SlackChannel | EmailChannel | GithubIssuesChannel | JiraChannel
TRACKERS = (GithubIssuesChannel, JiraChannel)
CHANNEL_TYPES: dict[str, type[BaseModel]] = {
    "webhook": WebhookChannel, "slack": SlackChannel, "email": EmailChannel,
    "github_issues": GithubIssuesChannel, "jira": JiraChannel}


def channel_config_model(kind: object) -> type[BaseModel]:
    """The model of a channel `type:`; KeyError naming the known types."""
    if not isinstance(kind, str) or kind not in CHANNEL_TYPES:
        raise KeyError(", ".join(repr(k) for k in CHANNEL_TYPES))
    return CHANNEL_TYPES[kind]


# -- alert rules ------------------------------------------------------------------------

Scope = Literal["workspace", "connection", "failure_group"]
Unit = Literal["count", "seconds", "percent", "bytes"]


@dataclass(frozen=True)
class Signal:
    name: str
    scope: Scope
    unit: Unit
    meaning: str


SIGNALS: dict[str, Signal] = {s.name: s for s in (
    Signal("failing_connections", "workspace", "count",
           "Connections whose last run failed (paused ones are not counted)."),
    Signal("queue_size", "workspace", "count", "Runs waiting in the run queue."),
    Signal("queue_wait", "workspace", "seconds",
           "How long the run that has waited longest past its due time has waited."),
    Signal("connection_down", "connection", "seconds",
           "Time since the first failed run after the connection's last successful one."),
    Signal("freshness_breach", "connection", "seconds",
           "How far the connection's data (or a stream's with its own SLA) is past its "
           "freshness SLA; 0 within it."),
    Signal("quarantined_rows", "connection", "percent",
           "The share of the rows its last run read that were set aside in quarantine."),
    Signal("slot_lag", "connection", "bytes",
           "How far a CDC stream's replication slot is behind the source's log, at its last "
           "checkpoint (the largest of the connection's CDC streams)."),
    Signal("failure_group_connections", "failure_group", "count",
           "Connections a failure group (`syncline failures`) affected in the last 24 hours."),
    Signal("freshness_projected", "connection", "seconds",
           "How far past its freshness SLA its data will be when its next run is due to have "
           "ended (its due time plus its typical run); 0 when within, or already breached."),
    Signal("slot_lag_growth", "connection", "bytes",
           "How much a CDC stream's replication lag grew over the last 6 hours when it grew at "
           "each of at least 6 runs in a row; 0 otherwise."),
    Signal("rate_limit_left", "connection", "percent",
           "The lowest share of an API's own rate limit left (X-RateLimit-Remaining of "
           "X-RateLimit-Limit) its newest run saw."),
)}

OPS: dict[str, Callable[[Any, Any], bool]] = {
    ">": operator.gt, ">=": operator.ge, "<": operator.lt, "<=": operator.le,
    "==": operator.eq, "!=": operator.ne}
_CONDITION = re.compile(r"^\s*([a-z_][a-z0-9_]*)\s*(>=|<=|==|!=|>|<)\s*(\S+)\s*$")
_NUMBER = re.compile(r"^(\d+(?:\.\d+)?)\s*([a-z%]*)$", re.IGNORECASE)
_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
_BYTES = {"": 1, "b": 1, "kb": 1000, "mb": 1000**2, "gb": 1000**3, "tb": 1000**4,
          "kib": 1024, "mib": 1024**2, "gib": 1024**3, "tib": 1024**4}
_EXAMPLE: dict[Unit, str] = {"count": "5", "seconds": "48h", "percent": "5%", "bytes": "1GB"}


@dataclass(frozen=True)
class Condition:
    """`<signal> <op> <threshold>`, the threshold in the signal's unit (seconds, percent...)."""

    signal: str
    op: str
    threshold: float
    text: str

    def holds(self, value: float) -> bool:
        return bool(OPS[self.op](value, self.threshold))


def _threshold(signal: Signal, text: str) -> float:
    m = _NUMBER.match(text)
    unit = m.group(2).lower() if m else None
    value = float(m.group(1)) if m else 0.0
    if m is not None:
        if signal.unit == "count" and unit == "":
            return value
        if signal.unit == "seconds" and unit in _SECONDS:
            return value * _SECONDS[unit]
        if signal.unit == "percent" and unit == "%":
            return value
        if signal.unit == "bytes" and unit in _BYTES:
            return value * _BYTES[unit]
    what = {"count": "a count", "seconds": "a duration", "percent": "a percentage",
            "bytes": "a size"}[signal.unit]
    raise ValueError(f"{signal.name} is {what}: compare it with e.g. {_EXAMPLE[signal.unit]}, "
                     f"not {text!r}")


def seconds(text: str) -> float:
    """A `<N>s|m|h|d` wait that may also be `0s` (no wait)."""
    if text.strip().lower() in ("0", "0s", "0m", "0h", "0d"):
        return 0.0
    return parse_duration(text).total_seconds()


def parse_condition(text: str) -> Condition | str:
    """A condition over a signal, or the event kind a rule forwards; ValueError saying why not."""
    stripped = text.strip()
    if stripped in KINDS:
        return stripped
    m = _CONDITION.match(stripped)
    if m is None:
        close = difflib.get_close_matches(stripped, list(KINDS), n=1)
        raise ValueError("expected `<signal> <op> <value>` (e.g. \"failing_connections > 5\") or an "
                         "event kind (e.g. run.failed)" + (f"; did you mean {close[0]!r}?" if close else ""))
    name, op, value = m.groups()
    if name not in SIGNALS:
        close = difflib.get_close_matches(name, list(SIGNALS), n=1)
        hint = f"did you mean {close[0]!r}? " if close else ""
        raise ValueError(f"unknown signal {name!r}; {hint}the signals are: {', '.join(SIGNALS)}")
    return Condition(name, op, _threshold(SIGNALS[name], value), stripped)


class AlertRule(BaseModel):
    """One rule of `alerts:`. A rule named like a built-in one changes only what it sets."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    when: str | None = Field(None, description="`<signal> <op> <value>` over a signal of "
                             "docs/alerts.md, or an event kind to forward (e.g. run.failed). "
                             "Required unless the rule changes a built-in one.")
    for_: str | None = Field(None, alias="for", description="<N>s|m|h|d: how long the condition "
                             "must hold before the rule fires (pending until then). Default: at once.")
    severity: Severity = Field("warning", description="info, warning, error or critical.")
    notify: list[str] = Field(default_factory=list, description="The channels told when it fires "
                              "and when it resolves.")
    labels: dict[str, str] = Field(default_factory=dict, description="Free labels carried in "
                                   "its notifications (team, service...).")
    repeat_every: str = Field("4h", description="<N>s|m|h|d: while it keeps firing, tell again "
                              "this often.")
    group_wait: str = Field("30s", description="<N>s|m|h|d: how long a subject that starts firing "
                            "waits for others of its group (a connection down: those failing the "
                            "same way), so that they are told in one message; 0s: at once.")
    runbook: str | None = Field(None, description="A URL of your own runbook for it (default: "
                                "the page of its signal in docs/runbooks/).")
    enabled: bool = Field(True, description="false turns the rule (a built-in one too) off.")
    action: Literal["notify", "incident"] = Field(
        "notify", description="incident: also open an incident for each connection it fires for "
        "(one per connection and failure group, or rule, while unresolved; docs/incidents.md).")
    match: dict[str, str] = Field(default_factory=dict, description="An event rule forwards only "
                                  "events whose body has these values, e.g. {failure_class: contract}.")

    @field_validator("when")
    @classmethod
    def _when(cls, value: str | None) -> str | None:
        if value is not None:
            parse_condition(value)
        return value

    _repeat = field_validator("repeat_every")(duration_text)

    @field_validator("for_", "group_wait")
    @classmethod
    def _waits(cls, value: str | None) -> str | None:
        if value is not None:
            seconds(value)
        return value

    @field_validator("severity", mode="before")
    @classmethod
    def _severity(cls, value: object) -> object:
        if isinstance(value, str) and value not in SEVERITIES:
            raise ValueError(f"expected one of {', '.join(SEVERITIES)}")
        return value


#: Rules that apply unless `alerts:` changes them (same name) or sets `enabled: false`.
BUILTIN_RULES: dict[str, AlertRule] = {
    "connection-down": AlertRule(when="connection_down >= 0s", severity="error"),
    "bugbot": AlertRule(when="connection_down > 48h", severity="error", action="incident",
                        notify=["owner"]),
    "freshness-breach": AlertRule(when="freshness_breach > 0s", severity="error", action="incident"),
    "contract-change": AlertRule(when="stream.failed", severity="error", action="incident",
                                 match={"failure_class": "contract"}),
    "freshness-projected": AlertRule(when="freshness_projected > 0s", severity="warning"),
    "slot-lag-trend": AlertRule(when="slot_lag_growth > 10MB", severity="warning"),
    "rate-limit-low": AlertRule(when="rate_limit_left < 10%", severity="warning"),
}


@dataclass(frozen=True)
class Rule:
    """A rule as it applies: a built-in one with the user's changes, or the user's own."""

    name: str
    when: Condition | str
    for_s: float
    severity: Severity
    notify: tuple[str, ...]
    labels: dict[str, str]
    repeat_s: float
    group_wait_s: float
    runbook: str | None
    builtin: bool
    enabled: bool
    action: str = "notify"
    match: tuple[tuple[str, str], ...] = ()

    @property
    def event_kind(self) -> str | None:
        return self.when if isinstance(self.when, str) else None


def known_channels(names: list[str], channels: set[str], where: str) -> None:
    """ConfigurationError naming `where` when a name is not a defined channel."""
    from syncline.errors import ConfigurationError

    unknown = [c for c in names if c not in channels]
    if unknown:
        raise ConfigurationError(
            f"{where}: '{unknown[0]}' is not a channel",
            fix=f"define it under `channels:` or use one of: {', '.join(sorted(channels)) or '(none)'}")


#: in a rule's `notify:`, the owner team of each connection it holds for (followed the sun)
OWNER = "owner"


def effective_rules(alerts: dict[str, AlertRule], channels: set[str], file: str,
                    has_teams: bool = False) -> dict[str, Rule]:
    """Built-in rules merged with `alerts:`; ConfigurationError naming the key when a rule has
    no `when:` or names a channel that is not defined."""
    from syncline.errors import ConfigurationError

    out: dict[str, Rule] = {}
    for name in [*BUILTIN_RULES, *(n for n in alerts if n not in BUILTIN_RULES)]:
        own = alerts.get(name)
        base = BUILTIN_RULES.get(name)
        merged: AlertRule | None
        if own is not None and base is not None:
            merged = base.model_copy(update={k: getattr(own, k) for k in own.model_fields_set})
        else:
            merged = own or base
        if merged is None or merged.when is None:
            raise ConfigurationError(f"{file}: alerts.{name}.when: required key is missing",
                                     fix="add e.g. when: \"failing_connections > 5\" (the "
                                     "signals are listed in docs/alerts.md) or an event kind")
        if OWNER in merged.notify and not has_teams and base is not None and \
                (own is None or "notify" not in own.model_fields_set):
            merged = merged.model_copy(update={"notify": [c for c in merged.notify if c != OWNER]})
        if OWNER in merged.notify and not has_teams:
            raise ConfigurationError(
                f"{file}: alerts.{name}.notify: 'owner' pages a connection's owner team, but "
                "there is no `teams:`", fix="define teams (docs/incidents.md) and each "
                "connection's `owner:`, or name channels instead")
        known_channels([c for c in merged.notify if c != OWNER], channels,
                       f"{file}: alerts.{name}.notify")
        when = merged.when or ""
        out[name] = Rule(name=name, when=parse_condition(when),
                         for_s=seconds(merged.for_) if merged.for_ else 0.0,
                         severity=merged.severity, notify=tuple(merged.notify),
                         labels=dict(merged.labels),
                         repeat_s=parse_duration(merged.repeat_every).total_seconds(),
                         group_wait_s=seconds(merged.group_wait),
                         runbook=merged.runbook, builtin=base is not None, enabled=merged.enabled,
                         action=merged.action, match=tuple(sorted(merged.match.items())))
    return out


class MaintenanceWindow(BaseModel):
    """A recurring time when a connection is expected to fail (its source's maintenance): no
    notification of it then, as under a silence."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    cron: str = Field(description="When each window starts: a cron expression, e.g. "
                      "\"0 2 * * SUN\" (02:00 every Sunday).")
    for_: str = Field(alias="for", description="<N>s|m|h|d: how long each window lasts.")
    timezone: str = Field("UTC", description="The IANA time zone of `cron`.")

    @field_validator("cron")
    @classmethod
    def _cron(cls, value: str) -> str:
        from croniter import croniter

        if not croniter.is_valid(value):
            raise ValueError("expected a cron expression of five fields, e.g. \"0 2 * * SUN\"")
        return value

    _for = field_validator("for_")(duration_text)
    _zone = field_validator("timezone")(zone_text)

    def active(self, now: dt.datetime) -> bool:
        from croniter import croniter

        local = now.astimezone(zone(self.timezone))
        start: dt.datetime = croniter(self.cron, local + dt.timedelta(seconds=1)).get_prev(dt.datetime)
        return local < start + parse_duration(self.for_)


_HHMM = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)$")


class DigestConfig(BaseModel):
    """`digest:`: the Wall of Shame, the failing connections told at fixed times of day."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    at: list[str] = Field(default_factory=lambda: ["08:00", "20:00"], min_length=1,
                          description="Times of day (HH:MM) to send it.")
    timezone: str = Field("UTC", description="The IANA time zone of `at`.")
    notify: list[str] = Field(min_length=1, description="The channels it goes to.")

    @field_validator("at")
    @classmethod
    def _times(cls, value: list[str]) -> list[str]:
        bad = [t for t in value if not _HHMM.match(str(t))]
        if bad:
            raise ValueError(f"{bad[0]!r} is not a time of day; write HH:MM, e.g. \"08:00\"")
        return sorted(set(value))

    _zone = field_validator("timezone")(zone_text)

    def last_slot(self, now: dt.datetime) -> dt.datetime:
        """The latest time it was due at or before `now` (UTC)."""
        tz = zone(self.timezone)
        local = now.astimezone(tz)
        for days_back in range(0, 3):
            day = (local - dt.timedelta(days=days_back)).date()
            for hhmm in sorted(self.at, reverse=True):
                h, m = (int(x) for x in hhmm.split(":"))
                slot = dt.datetime(day.year, day.month, day.day, h, m, tzinfo=tz)
                if slot <= local:
                    return slot.astimezone(dt.UTC)
        raise AssertionError("a time of day recurs within a day")


class IncidentsConfig(BaseModel):
    """`incidents:`: when an incident is due, and when its condition counts as cleared."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    due: str = Field("21d", description="<N>s|m|h|d: an incident is due this long after it "
                     "opened (the zero-incident policy: every incident addressed within it).")
    mitigate_after: int = Field(3, ge=1, description="Successful runs of its connection after "
                                "which an incident opened by a rule counts as mitigated.")

    _due = field_validator("due")(duration_text)
