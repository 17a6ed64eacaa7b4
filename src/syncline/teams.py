"""Teams and on-call: who owns a connection, who is on call in each team, and where a page goes
now — follow the sun: the owner team's on-call within its working hours, else its pair team's
within theirs, else the owner team's anyway; critical pages also reach the managers' on-call.

Pure: configuration models and functions of a moment (every function takes `at`); no store,
no network. `managers` is the reserved team of the managers' rotation.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from syncline.schedule import duration_text, parse_duration, zone, zone_text

MANAGERS = "managers"
DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_HOURS = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)-([01]\d|2[0-4]):([0-5]\d)$")
Reason = Literal["own_hours", "pair_hours", "out_of_hours"]


class OnCall(BaseModel):
    """A rotation: each person on call for `every`, in turn, from `handoff` (local time)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    rotation: list[str] = Field(min_length=1, description="The people, in turn (email addresses).")
    every: str = Field("7d", description="<N>s|m|h|d: how long each one's turn lasts.")
    handoff: str = Field(description="When the first turn began, local time in the team's "
                         "`timezone`: YYYY-MM-DDTHH:MM (turns change at that time of day).")

    _every = field_validator("every")(duration_text)

    @field_validator("handoff")
    @classmethod
    def _handoff(cls, value: str) -> str:
        try:
            moment = dt.datetime.fromisoformat(value)
        except ValueError:
            raise ValueError("expected a local time YYYY-MM-DDTHH:MM, e.g. 2026-01-05T09:00") from None
        if moment.tzinfo is not None:
            raise ValueError("give the local time without a zone: the team's `timezone` says it")
        return value

    def person(self, local: dt.datetime) -> str:
        """Who is on call at the team-local wall-clock time `local` (naive)."""
        start = dt.datetime.fromisoformat(self.handoff)
        turn = (local - start) // parse_duration(self.every)
        return self.rotation[turn % len(self.rotation)]


class Team(BaseModel):
    """One team of `teams:`."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    members: list[str] = Field(default_factory=list, description="Its people (email addresses).")
    timezone: str = Field("UTC", description="The IANA time zone of its hours and rotation.")
    hours: str | None = Field(None, description="Working hours, HH:MM-HH:MM on `days` in its "
                              "time zone (22:00-06:00 runs past midnight). Default: always.")
    days: list[str] = Field(default_factory=lambda: list(DAYS[:5]),
                            description="Its working days (mon...sun). Default: Monday to Friday.")
    pair: str | None = Field(None, description="The follow-the-sun partner team: paged when "
                             "this one is out of its hours and the pair is within its own.")
    on_call: OnCall | None = Field(None, description="Its on-call rotation.")
    notify: list[str] = Field(default_factory=list, description="The channels its pages go to.")

    _zone = field_validator("timezone")(zone_text)

    @field_validator("hours")
    @classmethod
    def _hours(cls, value: str | None) -> str | None:
        if value is not None and (not _HOURS.match(value) or value[:5] == value[6:]):
            raise ValueError("expected HH:MM-HH:MM, e.g. \"09:00-17:00\"")
        return value

    @field_validator("days")
    @classmethod
    def _days(cls, value: list[str]) -> list[str]:
        bad = [d for d in value if d.lower()[:3] not in DAYS]
        if bad:
            raise ValueError(f"{bad[0]!r} is not a day; use mon, tue, wed, thu, fri, sat, sun")
        return [d.lower()[:3] for d in value]

    def local(self, at: dt.datetime) -> dt.datetime:
        return at.astimezone(zone(self.timezone)).replace(tzinfo=None)

    def in_hours(self, at: dt.datetime) -> bool:
        if self.hours is None:
            return True
        local = self.local(at)
        begin, end = self.hours.split("-")
        now = local.strftime("%H:%M")
        today = DAYS[local.weekday()] in self.days
        if begin < end:
            return today and begin <= now < end
        yesterday = DAYS[(local.weekday() - 1) % 7] in self.days
        return (today and now >= begin) or (yesterday and now < end)

    def on_call_person(self, at: dt.datetime) -> str | None:
        return self.on_call.person(self.local(at)) if self.on_call is not None else None


@dataclass(frozen=True)
class Page:
    """Where a page for `team` goes at a moment, and why."""

    team: str
    person: str | None
    via: str  # the team whose on-call takes it (the owner team or its pair)
    reason: Reason
    manager: str | None  # the managers' on-call, told of critical pages

    def to_json(self) -> dict[str, Any]:
        return {"team": self.team, "person": self.person, "via": self.via, "reason": self.reason,
                "manager": self.manager}


def route(teams: dict[str, Team], name: str, at: dt.datetime) -> Page:
    """Follow the sun: the team within its hours, else its pair within theirs, else the team."""
    team = teams[name]
    managers = teams.get(MANAGERS)
    manager = managers.on_call_person(at) if managers is not None else None
    if team.in_hours(at):
        return Page(name, team.on_call_person(at), name, "own_hours", manager)
    pair = teams.get(team.pair) if team.pair else None
    if pair is not None and team.pair is not None and pair.in_hours(at):
        return Page(name, pair.on_call_person(at), team.pair, "pair_hours", manager)
    return Page(name, team.on_call_person(at), name, "out_of_hours", manager)


def check_teams(teams: dict[str, Team], channels: set[str], file: str) -> None:
    """ConfigurationError naming the key: a pair that is no other team, a channel not defined."""
    from syncline.alerting_config import known_channels
    from syncline.errors import ConfigurationError

    for name, team in teams.items():
        if team.pair is not None and (team.pair not in teams or team.pair == name):
            raise ConfigurationError(
                f"{file}: teams.{name}.pair: '{team.pair}' is not another team",
                fix=f"use one of: {', '.join(sorted(t for t in teams if t != name)) or '(none)'}")
        known_channels(team.notify, channels, f"{file}: teams.{name}.notify")


def connection_owners(connections: Mapping[str, Any], source_owners: Mapping[str, str],
                      teams: Mapping[str, Team], file: str) -> dict[str, str]:
    """Connection -> its owner team (its `owner:`, else its source's); ConfigurationError
    naming the key when an owner is no team."""
    from syncline.errors import ConfigurationError

    out: dict[str, str] = {}
    for name, conn in connections.items():
        owner, where = conn.owner, f"connections.{name}.owner"
        if owner is None and conn.source in source_owners:
            owner, where = source_owners[conn.source], f"sources.{conn.source}.owner"
        if owner is None:
            continue
        if owner not in teams:
            raise ConfigurationError(
                f"{file}: {where}: '{owner}' is not a team",
                fix=f"define it under `teams:` or use one of: {', '.join(sorted(teams)) or '(none)'}")
        out[name] = owner
    return out
