"""Prometheus metrics of every connection, read from the metadata store at each scrape.

The figures come from the store (store/figures.py), not from counters in this process, so
they are right when runs happen in worker processes and on other machines, and the same
whichever `up` (or `syncline metrics serve`) is scraped. Names follow Prometheus' rules
(base units, counters end in `_total`); labels are bounded: connection, region, status,
health, state; never a run id or a row value. docs/metrics.md lists them all.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterator

from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
    SummaryMetricFamily,
)
from prometheus_client.registry import Collector, CollectorRegistry

from syncline import clock
from syncline.regions import DEFAULT, connection_regions
from syncline.store.figures import BUCKETS
from syncline.store.store import MetadataStore

HEALTH_OF_STATUS = {"running": "running", "succeeded": "healthy", "warning": "warning",
                    "interrupted": "warning", "cancelled": "warning"}
HEALTHS = ("healthy", "warning", "failing", "running", "never_run")


class StoreCollector(Collector):
    def __init__(self, store: MetadataStore) -> None:
        self.store = store
        self._regions: tuple[int | None, dict[str, str]] = (None, {})  # of a revision, read once

    def _connection_regions(self) -> dict[str, str]:
        number = self.store.revisions().latest_number()
        if number != self._regions[0]:
            revision = self.store.revisions().get(number) if number is not None else None
            self._regions = (number, connection_regions(revision.document) if revision else {})
        return self._regions[1]

    def collect(self) -> Iterator[Metric]:
        now = clock.now()
        f = self.store.figures()
        regions = self._connection_regions()
        region = {**{c: r for (c, r, _) in f.runs}, **regions}

        runs = CounterMetricFamily("syncline_runs", "Runs by status (running ones too), kept for "
                                   "the store's retention.", labels=["connection", "region", "status"])
        rows = {k: CounterMetricFamily(f"syncline_rows_{k}", f"Rows {k} by runs of the connection.",
                                       labels=["connection", "region"])
                for k in ("read", "committed", "quarantined")}
        totals: dict[tuple[str, str], list[int]] = {}
        for (conn, reg, status), (n, read, committed, quarantined) in sorted(f.runs.items()):
            runs.add_metric([conn, reg, status], n)
            t = totals.setdefault((conn, reg), [0, 0, 0])
            t[0], t[1], t[2] = t[0] + read, t[1] + committed, t[2] + quarantined
        for (conn, reg), (read, committed, quarantined) in sorted(totals.items()):
            rows["read"].add_metric([conn, reg], read)
            rows["committed"].add_metric([conn, reg], committed)
            rows["quarantined"].add_metric([conn, reg], quarantined)
        yield runs
        yield from rows.values()

        # buckets per region (bounded), a count and sum per connection (its mean)
        duration = HistogramMetricFamily("syncline_run_duration_seconds", "How long ended runs took.",
                                         labels=["region"])
        per_connection = SummaryMetricFamily("syncline_connection_run_duration_seconds", "How long "
                                             "the connection's ended runs took.",
                                             labels=["connection", "region"])
        by_region: dict[str, tuple[list[int], int, float]] = {}
        for (conn, reg), (under, n, total) in sorted(f.durations.items()):
            per_connection.add_metric([conn, reg], n, total)
            counts, runs_, spent = by_region.get(reg, ([0] * len(BUCKETS), 0, 0.0))
            by_region[reg] = ([c + u for c, u in zip(counts, under, strict=True)], runs_ + n, spent + total)
        for reg, (under, n, total) in sorted(by_region.items()):
            buckets = [(_le(b), float(u)) for b, u in zip(BUCKETS, under, strict=True)]
            buckets.append(("+Inf", float(n)))
            duration.add_metric([reg], buckets, total)
        yield duration
        yield per_connection

        retries = CounterMetricFamily("syncline_attempts_failed", "Attempts that failed (each one "
                                      "retried, or ending its run).", labels=["connection", "region"])
        for conn, n in sorted(f.failed_attempts.items()):
            retries.add_metric([conn, region.get(conn, DEFAULT)], n)
        yield retries

        health: Counter[tuple[str, str]] = Counter()
        failing: Counter[str] = Counter()
        freshness = GaugeMetricFamily("syncline_freshness_seconds", "Seconds since the connection's "
                                      "last successful run ended.", labels=["connection", "region"])
        for conn in sorted(set(regions) | set(f.last_status)):
            reg = region.get(conn, DEFAULT)
            last = f.last_status.get(conn)
            state = "never_run" if last is None else HEALTH_OF_STATUS.get(last, "failing")
            health[(state, reg)] += 1
            if state == "failing":
                failing[reg] += 1
            if conn in f.last_success:
                freshness.add_metric([conn, reg], max(0.0, (now - f.last_success[conn]).total_seconds()))
        by_health = GaugeMetricFamily("syncline_connections", "Connections by health (from their "
                                      "last run).", labels=["health", "region"])
        for (state, reg), n in sorted(health.items()):
            by_health.add_metric([state, reg], n)
        failing_g = GaugeMetricFamily("syncline_failing_connections", "Connections whose last run "
                                      "failed, crashed or was partial.", labels=["region"])
        for reg in sorted({r for (_, r) in health} | {DEFAULT}):
            failing_g.add_metric([reg], failing[reg])
        yield by_health
        yield failing_g
        yield freshness

        size = GaugeMetricFamily("syncline_queue_size", "Runs waiting in the queue.", labels=["region"])
        wait = GaugeMetricFamily("syncline_queue_wait_seconds", "How long the oldest queued run has "
                                 "waited.", labels=["region"])
        running = GaugeMetricFamily("syncline_runs_in_progress", "Runs being run now.", labels=["region"])
        for reg, (n, oldest, going) in sorted(f.queue.items()):
            size.add_metric([reg], n)
            wait.add_metric([reg], max(0.0, (now - oldest).total_seconds()) if oldest else 0.0)
            running.add_metric([reg], going)
        yield size
        yield wait
        yield running

        http = CounterMetricFamily("syncline_source_http_requests", "Requests an API source sent, "
                                   "by the status answered (or the transport error).",
                                   labels=["connection", "region", "status"])
        for (conn, reg), statuses in sorted(f.requests.items()):
            for status, n in sorted(statuses.items()):
                http.add_metric([conn, reg, status], n)
        yield http
        retry_wait = CounterMetricFamily("syncline_source_retry_wait_seconds", "Seconds an API "
                                         "source waited before retries (Retry-After or backoff).",
                                         labels=["connection", "region"])
        limit_wait = CounterMetricFamily("syncline_source_rate_limit_wait_seconds", "Seconds an API "
                                         "source waited on its rate limit.", labels=["connection", "region"])
        for (conn, reg), (retry, limited) in sorted(f.waits.items()):
            retry_wait.add_metric([conn, reg], retry)
            limit_wait.add_metric([conn, reg], limited)
        yield retry_wait
        yield limit_wait
        lag = GaugeMetricFamily("syncline_cdc_slot_lag_bytes", "How far a CDC stream's replication "
                                "slot was behind the server's WAL at its last checkpoint.",
                                labels=["connection", "region", "stream"])
        for (conn, stream), n in sorted(f.lag_bytes.items()):
            lag.add_metric([conn, region.get(conn, DEFAULT), stream], n)
        yield lag

        workers = GaugeMetricFamily("syncline_workers", "Live worker processes by state.",
                                    labels=["region", "state"])
        for (reg, state), n in sorted(f.workers.items()):
            workers.add_metric([reg, state], n)
        yield workers

        alerts = GaugeMetricFamily("syncline_alerts", "Subjects (connections, failure groups, the "
                                   "workspace) an alert rule holds for, by state.",
                                   labels=["rule", "state"])
        for (rule, state), n in sorted(self.store.alert_states().counts().items()):
            alerts.add_metric([rule, state], n)
        yield alerts
        notes = GaugeMetricFamily("syncline_notifications", "Notifications in the outbox by channel "
                                  "and status (pending, delivered, failed).",
                                  labels=["channel", "status"])
        for (channel, status), n in sorted(self.store.outbox().counts().items()):
            notes.add_metric([channel, status], n)
        yield notes


def _le(bound: float) -> str:
    return "+Inf" if math.isinf(bound) else f"{bound:.1f}"


def registry(store: MetadataStore) -> CollectorRegistry:
    """A registry holding the store's collector alone (no process figures: they would be of
    whichever process is scraped)."""
    reg = CollectorRegistry(auto_describe=False)
    reg.register(StoreCollector(store))
    return reg
