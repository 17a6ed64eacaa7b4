"""Leader leases: one holder of a singleton role (the scheduler) at a time, by the store's clock.

A holder renews its lease on every tick; another candidate takes the role only once the
lease has expired (the holder died or lost the store). Each new holder starts a new `term`,
so a holder that was paused past its lease learns on its next renewal that it lost the role.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sqlalchemy import Engine, text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import sessionmaker

from syncline.store.leases import now_utc
from syncline.store.models import Leader


@dataclass(frozen=True)
class Leadership:
    role: str
    holder: str  # who holds it now (maybe another candidate)
    term: int
    expires_at: dt.datetime
    mine: bool


class LeaderLease:
    def __init__(self, engine: Engine, role: str, holder: str, ttl: dt.timedelta) -> None:
        self._session = sessionmaker(engine, expire_on_commit=False)
        self.role, self.holder, self.ttl = role, holder, ttl

    def hold(self, now: dt.datetime | None = None) -> Leadership:
        """Take or renew the role if it is free, expired or already ours; say who holds it."""
        now = now or now_utc()
        try:
            with self._session.begin() as s:
                if s.get_bind().dialect.name == "postgresql":
                    s.execute(text("SELECT 1 FROM leaders WHERE role = :r FOR UPDATE"), {"r": self.role})
                row = s.get(Leader, self.role)
                if row is None:
                    row = Leader(role=self.role, holder=self.holder, term=1, expires_at=now + self.ttl)
                    s.add(row)
                elif row.holder == self.holder or row.expires_at <= now:
                    if row.holder != self.holder:
                        row.holder, row.term = self.holder, row.term + 1
                    row.expires_at = now + self.ttl
                return Leadership(self.role, row.holder, row.term, row.expires_at,
                                  row.holder == self.holder)
        except IntegrityError:  # another candidate created the row first: it leads
            return self.hold(now)

    def release(self) -> None:
        """Step down at once (a clean stop), so another candidate need not wait for expiry."""
        with self._session.begin() as s:
            row = s.get(Leader, self.role)
            if row is not None and row.holder == self.holder:
                row.expires_at = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
