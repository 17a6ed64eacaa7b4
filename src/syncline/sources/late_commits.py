"""How far an incremental read of a database may go: never past rows a transaction still open may commit.

A row stamped by the database clock (`now()`, `CURRENT_TIMESTAMP`, a trigger) carries a
time at or after the start of the transaction that writes it. A read that took every
row up to the newest cursor value would skip such a row when its transaction commits
after the read: the checkpoint is already past it. So the read's upper bound is held
back to before the start of the oldest transaction still open when the read began,
and those rows are read by the next run.

The bound is taken just before the read's snapshot: a transaction open then that
commits before the snapshot is read whole anyway; one that begins afterwards stamps
its rows after the bound. The bound also stays `LISTING_MARGIN` below the moment the
transactions were listed, for a transaction that had begun and was not listed yet.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass

from syncline.stream import Notice

#: Cursor kinds a transaction's start time bounds: the database clock stamps them.
TEMPORAL = frozenset({"timestamp", "timestamptz", "date"})
#: A bound held back longer than this makes the run a warning, naming the session.
HELD_BACK_WARNING = dt.timedelta(hours=1)
LISTING_MARGIN = dt.timedelta(milliseconds=100)


def fraction_digits(native_type: str | None, default: int) -> int:
    """Digits after the second a time column keeps, from its native type: `timestamp(3)` → 3."""
    m = re.search(r"\((\d)\)", native_type or "")
    return int(m.group(1)) if m else default


@dataclass(frozen=True)
class OpenTransaction:
    """The oldest transaction still open when the read began, as the server reports it."""

    session: str  # e.g. "pid 4242" (PostgreSQL) or "connection 17" (MariaDB)
    started: dt.datetime  # UTC


@dataclass(frozen=True)
class Horizon:
    """Cursor values at or after `at` (UTC) may still be committed late: the read stops below it."""

    at: dt.datetime
    listed_at: dt.datetime
    oldest: OpenTransaction | None = None

    @classmethod
    def of(cls, listed_at: dt.datetime, oldest: OpenTransaction | None,
           margin: dt.timedelta = LISTING_MARGIN) -> Horizon:
        bound = listed_at - margin
        if oldest is not None and oldest.started < bound:
            return cls(at=oldest.started, listed_at=listed_at, oldest=oldest)
        return cls(at=bound, listed_at=listed_at)

    @property
    def held_back(self) -> dt.timedelta:
        return self.listed_at - self.at

    def notice(self, stream: str) -> Notice | None:
        """A warning when an open transaction holds the bound back longer than an hour."""
        if self.oldest is None or self.held_back <= HELD_BACK_WARNING:
            return None
        hours = self.held_back.total_seconds() / 3600
        return Notice(
            f"{stream}: rows stamped after {self.at.isoformat(timespec='seconds')} wait for a later "
            f"run: {self.oldest.session} has had a transaction open for {hours:.1f} h, and what it "
            "commits may carry a time from its start; end that transaction (or find out why it "
            "stays open) to let the stream move on")

    def floored(self, digits: int) -> dt.datetime:
        """`at` cut to a cursor column's precision (`digits` after the second): a database
        that rounds or truncates a stamp may store a time just before the horizon as one
        below it, so the read stops at the start of the unit that holds the horizon."""
        unit = 10 ** (6 - max(0, min(6, digits)))
        return self.at.replace(microsecond=self.at.microsecond // unit * unit)


def future_notice(stream: str, rows: int, skew_s: int, merge: bool) -> Notice:
    """The warning for rows dated more than `max_cursor_skew` past the source's clock: the
    checkpoint never goes past that, so they cannot freeze the stream."""
    what = ("they are loaded again on every run, and the checkpoint stays below them" if merge
            else "they wait until the source's clock reaches them")
    return Notice(
        f"{stream}: {rows} row{'s' if rows != 1 else ''} with a cursor more than {_span(skew_s)} past "
        f"the source's clock (dated in the future): {what}; correct those values at the source "
        "(after `syncline state <connection> --reset` the source's version of every key wins), or "
        "raise `max_cursor_skew`")


def _span(seconds: int) -> str:
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size and seconds % size == 0:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"
