"""The values of the signals rules compare (alerting_config.SIGNALS says what each means): for
each, subject -> value, the subject a connection, a failure group's key, or '' for the
workspace. Read once per evaluation from a few aggregate queries of the store."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass, field

from syncline.config import Workspace
from syncline.schedule import Schedule, parse_duration
from syncline.store.health import DownCache, Health
from syncline.store.store import MetadataStore

GROUP_WINDOW = dt.timedelta(hours=24)


#: signals read from a wide window of history: computed again only after a run ended, or
#: after this many seconds (their window slides)
SLOW = {"failure_group_connections": 60.0, "slot_lag_growth": 60.0}
#: of those, the ones kept for their time whatever ran meanwhile (a trend needs no second)
TIMED = {"slot_lag_growth"}
LAG_WINDOW = dt.timedelta(hours=6)
LAG_RISES = 6  # rises in a row that make a trend


@dataclass
class Memory:
    """What an evaluator keeps between evaluations so a tick stays cheap: when each connection
    went down (asked again only after a new run), and the slow signals' last values."""

    down: DownCache = field(default_factory=dict)
    slow: dict[str, tuple[dt.datetime, int, dict[str, float], dict[str, dict[str, object]]]] = \
        field(default_factory=dict)


class Signals:
    """The signals of one evaluation: each computed when first asked for, then kept."""

    def __init__(self, store: MetadataStore, ws: Workspace, now: dt.datetime,
                 memory: Memory | None = None) -> None:
        self.store, self.ws, self.now = store, ws, now
        self.memory = memory or Memory()
        self._health: Health | None = None
        self._paused: set[str] | None = None
        self._values: dict[str, dict[str, float]] = {}
        #: failure group key -> what a notification says of it
        self.groups: dict[str, dict[str, object]] = {}

    @property
    def health(self) -> Health:
        if self._health is None:
            self._health = self.store.health(self.now, self.memory.down)
        return self._health

    def watched(self) -> list[str]:
        """The connections of the workspace that are not paused."""
        if self._paused is None:
            self._paused = set(self.store.pauses().all())
        return [c for c in self.ws.connections if c not in self._paused]

    def values(self, signal: str) -> dict[str, float]:
        if signal not in self._values:
            kept = self.memory.slow.get(signal)
            fresh = kept is not None and 0 <= (self.now - kept[0]).total_seconds() < SLOW.get(signal, 0)
            if kept and fresh and (signal in TIMED or kept[1] == self.health.newest_run):
                self._values[signal] = kept[2]
                self.groups.update(kept[3])
            else:
                self._values[signal] = _COMPUTE[signal](self)
                if signal in SLOW:
                    self.memory.slow[signal] = (self.now, self.health.newest_run,
                                                self._values[signal], dict(self.groups))
        return self._values[signal]


def _down(s: Signals) -> dict[str, float]:
    return {c: max(0.0, (s.now - s.health.down_since[c]).total_seconds())
            for c in s.watched() if c in s.health.down_since}


def _failing(s: Signals) -> dict[str, float]:
    return {"": float(len(_down(s)))}


def _queue_size(s: Signals) -> dict[str, float]:
    return {"": float(s.health.queued_due)}


def _queue_wait(s: Signals) -> dict[str, float]:
    oldest = s.health.oldest_due
    return {"": max(0.0, (s.now - oldest).total_seconds()) if oldest else 0.0}


def _freshness(s: Signals) -> dict[str, float]:
    out: dict[str, float] = {}
    for name in s.watched():
        conn = s.ws.connections[name]
        ok = s.health.last_ok.get(name)
        if ok is None:
            continue  # never succeeded: `connection_down` tells, not freshness
        sla = parse_duration(conn.freshness_sla) if conn.freshness_sla else \
            Schedule.parse(conn.schedule).default_sla(s.now)
        over = (s.now - ok[0]).total_seconds() - sla.total_seconds() if sla else 0.0
        own = {st: parse_duration(c.freshness_sla) for st, c in (conn.streams or {}).items()
               if c.freshness_sla}
        if own:
            seen = s.store.stream_snapshots(name)
            for stream, stream_sla in own.items():
                if stream in seen:
                    over = max(over, (s.now - seen[stream]).total_seconds() - stream_sla.total_seconds())
        out[name] = max(0.0, over)
    return out


def _quarantined(s: Signals) -> dict[str, float]:
    out: dict[str, float] = {}
    for name in s.watched():
        read, kept_aside = s.health.last_rows.get(name, (0, 0))
        if read > 0:
            out[name] = 100.0 * kept_aside / read
    return out


def _slot_lag(s: Signals) -> dict[str, float]:
    watched = set(s.watched())
    out: dict[str, float] = {}
    for (conn, _stream), lag in s.health.lag_bytes.items():
        if conn in watched:
            out[conn] = max(out.get(conn, 0.0), float(lag))
    return out


def _group_connections(s: Signals) -> dict[str, float]:
    from syncline.monitoring.failure_groups import collect

    watched = set(s.watched())
    out: dict[str, float] = {}
    for g in collect(s.store, s.now - GROUP_WINDOW):
        affected = g.connections & watched
        if affected:
            out[g.signature.key] = float(len(affected))
            s.groups[g.signature.key] = {
                "pattern": g.signature.pattern, "origin": g.signature.origin,
                "failure_class": g.signature.failure_class, "connections": sorted(affected),
                "sample": g.sample}
    return out


def _projected(s: Signals) -> dict[str, float]:
    """Freshness at the end of the next run, against the SLA, for connections within it now."""
    due = s.store.schedule_states().load()
    out: dict[str, float] = {}
    for name in s.watched():
        conn = s.ws.connections[name]
        ok = s.health.last_ok.get(name)
        schedule = Schedule.parse(conn.schedule)
        sla = parse_duration(conn.freshness_sla) if conn.freshness_sla else schedule.default_sla(s.now)
        if ok is None or sla is None or (s.now - ok[0]) > sla:
            continue
        nxt = due[name].next_due_at if name in due else schedule.next_after(ok[1], conn.schedule_timezone)
        if nxt is None:
            continue
        ends = max(s.now, nxt) + dt.timedelta(seconds=s.health.typical_s.get(name, 0.0))
        out[name] = max(0.0, ((ends - ok[0]) - sla).total_seconds())
    return out


def _lag_growth(s: Signals) -> dict[str, float]:
    watched = set(s.watched())
    out: dict[str, float] = {}
    for (conn, _stream), samples in s.store.lag_history(s.now - LAG_WINDOW).items():
        if conn not in watched:
            continue
        lags = [lag for _, lag in samples]
        rises = 0
        for before, after in zip(lags, lags[1:], strict=False):
            rises = rises + 1 if after > before else 0
        grew = float(lags[-1] - lags[-1 - rises]) if rises >= LAG_RISES else 0.0
        out[conn] = max(out.get(conn, 0.0), grew)
    return out


def _rate_left(s: Signals) -> dict[str, float]:
    watched = set(s.watched())
    return {c: v for c, v in s.health.rate_left.items() if c in watched}


_COMPUTE: dict[str, Callable[[Signals], dict[str, float]]] = {
    "failing_connections": _failing, "queue_size": _queue_size, "queue_wait": _queue_wait,
    "connection_down": _down, "freshness_breach": _freshness, "quarantined_rows": _quarantined,
    "slot_lag": _slot_lag, "failure_group_connections": _group_connections,
    "freshness_projected": _projected, "slot_lag_growth": _lag_growth, "rate_limit_left": _rate_left}
