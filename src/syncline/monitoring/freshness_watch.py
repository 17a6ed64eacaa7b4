"""Freshness SLAs watched: an event when a connection's data grows older than its SLA
(`freshness.breached`), and one when it is within it again (`freshness.restored`).

`up`'s leading scheduler checks every connection every `EVERY_S`; what it last said of each
is read back from the event log, so a restart neither repeats nor loses a transition.
"""

from __future__ import annotations

import datetime as dt

from syncline.config import Workspace
from syncline.event_kinds import Event
from syncline.monitoring.status import connection_status
from syncline.store.store import MetadataStore

EVERY_S = 30.0


class FreshnessWatch:
    def __init__(self, store: MetadataStore) -> None:
        self.store = store
        self._said: dict[str, bool] | None = None  # connection -> breached, as last said

    def _last_said(self) -> dict[str, bool]:
        said: dict[str, bool] = {}
        for e in self.store.events().read(kinds=["freshness."], limit=100_000):
            if e.connection is not None:
                said[e.connection] = e.kind == "freshness.breached"
        return said

    def check(self, ws: Workspace, now: dt.datetime) -> list[Event]:
        """Emit (and return) the transitions since the last check."""
        if self._said is None:
            self._said = self._last_said()
        told: list[Event] = []
        for row in connection_status(ws, self.store, now):
            name, age, sla = row["connection"], row["freshness_seconds"], row["freshness_sla_seconds"]
            late_streams = [s["stream"] for s in row["streams_freshness"] if s["late"]]
            if age is None or sla is None or row["paused_at"]:
                continue
            breached = age > sla or bool(late_streams)
            if breached == self._said.get(name, False):
                continue
            self._said[name] = breached
            told.append(Event("freshness.breached" if breached else "freshness.restored",
                              {"freshness_s": round(age, 1), "sla_s": sla, "streams": late_streams},
                              connection=name, region=ws.region(name), time=now))
        if told:
            self.store.emitter.emit_many(told)
        return told
