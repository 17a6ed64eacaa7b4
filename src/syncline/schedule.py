"""Connection schedules: ``manual``, ``every <N>s|m|h|d`` or a cron expression."""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from croniter import croniter

_EVERY = re.compile(r"^every\s+(\d+)\s*([smhd])$")
_DURATION = re.compile(r"^(\d+)\s*([smhd])$")
_UNIT = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_duration(text: str) -> dt.timedelta:
    """`90s`, `30m`, `6h` or `2d`."""
    m = _DURATION.match(text.strip().lower())
    if not m or int(m.group(1)) <= 0:
        raise ValueError(f"{text!r} is not a duration; use <N>s|m|h|d, e.g. '2h'")
    return dt.timedelta(seconds=int(m.group(1)) * _UNIT[m.group(2)])


def duration_text(value: str | None) -> str | None:
    """A `<N>s|m|h|d` setting, checked and kept as written (a pydantic validator)."""
    if value is not None:
        parse_duration(value)
    return value


def zone_text(value: str) -> str:
    """An IANA time zone setting, checked and kept as written (a pydantic validator)."""
    zone(value)
    return value


def zone(name: str) -> ZoneInfo:
    """The IANA time zone `name`, e.g. Europe/Paris; ValueError naming it when unknown."""
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"{name!r} is not an IANA time zone; use a name such as 'UTC', "
                         "'Europe/Paris' or 'America/New_York'") from None


@dataclass(frozen=True)
class Schedule:
    text: str
    interval: dt.timedelta | None = None
    cron: str | None = None

    @staticmethod
    def parse(text: str) -> Schedule:
        t = text.strip().lower()
        if t == "manual":
            return Schedule(t)
        m = _EVERY.match(t)
        if m:
            seconds = int(m.group(1)) * _UNIT[m.group(2)]
            if seconds <= 0:
                raise ValueError("an interval must be positive, e.g. 'every 15m'")
            return Schedule(t, interval=dt.timedelta(seconds=seconds))
        if croniter.is_valid(text.strip()):
            return Schedule(text.strip(), cron=text.strip())
        raise ValueError(
            f"{text!r} is not a schedule; use 'manual', 'every <N>s|m|h|d' or a cron expression "
            "such as '0 */6 * * *'"
        )

    def next_after(self, moment: dt.datetime, tz: str = "UTC") -> dt.datetime | None:
        """When the connection is next due after ``moment`` (None for manual); a cron
        expression is read in the time zone `tz`. Returned in ``moment``'s zone."""
        if self.interval is not None:
            return moment + self.interval
        if self.cron is not None:
            local = moment.astimezone(zone(tz))
            nxt: dt.datetime = croniter(self.cron, local).get_next(dt.datetime)
            return nxt.astimezone(moment.tzinfo)
        return None

    def default_sla(self, now: dt.datetime) -> dt.timedelta | None:
        """How stale a scheduled connection may get before it is late: two intervals; for cron,
        twice the gap between the last two expected ticks; none for manual."""
        if self.interval is not None:
            return 2 * self.interval
        if self.cron is not None:
            ticks = croniter(self.cron, now)
            last: dt.datetime = ticks.get_prev(dt.datetime)
            before: dt.datetime = ticks.get_prev(dt.datetime)
            return 2 * (last - before)
        return None
