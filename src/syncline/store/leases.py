"""Run leases: one holder per connection, fencing tokens, takeover of dead holders."""

from __future__ import annotations

import datetime as dt
import getpass
import os
import socket
from dataclasses import dataclass

from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from syncline import clock
from syncline.errors import ConcurrencyError
from syncline.store.models import Lease


def now_utc() -> dt.datetime:
    """The control plane's time (see clock.py: tests may drive it)."""
    return clock.now()


def who() -> str:
    """This process, as records name whoever did something: user@host pid N."""
    try:
        user = getpass.getuser()
    except (OSError, KeyError):  # no name for this uid (a container)
        user = str(os.getuid())
    return f"{user}@{socket.gethostname()} pid {os.getpid()}"


def pid_alive(pid: int) -> bool:
    """Whether a process of this host still runs (one owned by another user counts)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


@dataclass(frozen=True)
class LeaseGrant:
    connection: str
    token: int
    took_over_from: str | None = None
    #: the destination had seen a newer token than this store held: the store is new or lost
    store_behind: int | None = None


class Leases:
    """Acquire, heartbeat and release the lease of a connection in the metadata store.

    A holder on this host whose process is gone is replaced at once; a holder on
    another host only once its heartbeat is older than ``timeout``.
    """

    def __init__(self, engine: Engine, timeout: dt.timedelta) -> None:
        self._session = sessionmaker(engine, expire_on_commit=False)
        self.timeout = timeout
        self.host = socket.gethostname()

    def acquire(self, connection: str, run_id: int | None = None) -> LeaseGrant:
        now = now_utc()
        with self._session.begin() as s:
            lease = s.get(Lease, connection)
            previous: str | None = None
            if lease is None:
                lease = Lease(connection=connection, token=0)
                s.add(lease)
            elif lease.holder_pid is not None:
                previous = self._check_takeover(lease, now)
            lease.token += 1
            lease.holder_host = self.host
            lease.holder_pid = os.getpid()
            lease.run_id = run_id
            lease.acquired_at = now
            lease.heartbeat_at = now
            return LeaseGrant(connection, lease.token, previous)

    def advance(self, grant: LeaseGrant, at_least: int) -> LeaseGrant:
        """The held lease with a token above `at_least`, the newest the destination has seen:
        a store that knows less (new, lost, replaced) takes over above it."""
        if at_least < grant.token:
            return grant
        with self._session.begin() as s:
            lease = self._mine(s, grant)
            lease.token = at_least + 1
            return LeaseGrant(grant.connection, lease.token, grant.took_over_from, at_least)

    def _check_takeover(self, lease: Lease, now: dt.datetime) -> str:
        holder = f"pid {lease.holder_pid} on {lease.holder_host}"
        assert lease.holder_pid is not None
        if lease.holder_host == self.host:
            if lease.holder_pid != os.getpid() and pid_alive(lease.holder_pid):
                raise self._held(lease, holder)
            return holder
        beat = lease.heartbeat_at or lease.acquired_at
        if beat is not None and now - beat < self.timeout:
            raise self._held(lease, holder)
        return holder

    def _held(self, lease: Lease, holder: str) -> ConcurrencyError:
        since = lease.acquired_at.isoformat(timespec="seconds") if lease.acquired_at else "?"
        return ConcurrencyError(
            f"already being synced by {holder} (run {lease.run_id}, since {since})",
            connection=lease.connection,
            fix="wait for that run to finish (see `syncline status`); a holder on another host "
            f"that stopped heartbeating is taken over after {int(self.timeout.total_seconds())}s",
        )

    def set_run(self, grant: LeaseGrant, run_id: int) -> None:
        with self._session.begin() as s:
            lease = self._mine(s, grant)
            lease.run_id = run_id

    def heartbeat(self, grant: LeaseGrant) -> None:
        with self._session.begin() as s:
            self._mine(s, grant).heartbeat_at = now_utc()

    def release(self, grant: LeaseGrant) -> None:
        with self._session.begin() as s:
            lease = s.get(Lease, grant.connection)
            if lease is not None and lease.token == grant.token:
                lease.holder_pid = None
                lease.holder_host = None
                lease.heartbeat_at = now_utc()

    def _mine(self, s: Session, grant: LeaseGrant) -> Lease:
        lease = s.get(Lease, grant.connection)
        if lease is None or lease.token != grant.token:
            raise ConcurrencyError(
                "this run's lease was taken over by another run",
                connection=grant.connection,
                fix="nothing to do: the other run continues from the last committed checkpoint",
            )
        return lease
