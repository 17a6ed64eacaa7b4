"""The alerting half of the metadata store's door: rule states, the facts signals read,
incidents and tickets, silences and the outbox (MetadataStore inherits these accessors)."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import Engine

from syncline.store.alerts import AlertStates
from syncline.store.health import DownCache, Health, lag_history, read_health
from syncline.store.incidents import Incidents
from syncline.store.outbox import Outbox
from syncline.store.silences import Silences
from syncline.store.tickets import Tickets


class AlertingParts:
    _engine: Engine

    def alert_states(self) -> AlertStates:
        """Alert rules' states and cursors (see store/alerts.py)."""
        return AlertStates(self._engine)

    def health(self, now: dt.datetime, cache: DownCache | None = None) -> Health:
        """What alert signals are computed from (see store/health.py)."""
        return read_health(self._engine, now, cache)

    def lag_history(self, since: dt.datetime) -> dict[tuple[str, str], list[tuple[dt.datetime, int]]]:
        """Each CDC stream's replication lag at its runs' ends since `since` (store/health.py)."""
        return lag_history(self._engine, since)

    def incidents(self) -> Incidents:
        """Incidents and their timelines (see store/incidents.py)."""
        return Incidents(self._engine)

    def tickets(self) -> Tickets:
        """Tracker channels following incidents, and their tickets (see store/tickets.py)."""
        return Tickets(self._engine)

    def silences(self) -> Silences:
        """Silences of notifications (see store/silences.py)."""
        return Silences(self._engine)

    def outbox(self) -> Outbox:
        """Notifications written before they are sent (see store/outbox.py)."""
        return Outbox(self._engine)
