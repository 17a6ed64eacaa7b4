"""Delivery: the outbox drained into the channels, in order per channel, retried for 24 hours.

One drainer at a time per store (the `outbox` leader lease: `up`'s, or a one-off
`syncline notifications send`). For each channel whose oldest pending notification is due,
its pending notifications are sent oldest first until one fails; that one waits (10 s, then
twice as long each time, at most an hour, with jitter) and the channel waits with it, so a
receiver that was down for an hour receives everything afterwards, in order. A notification
the receiver refuses (HTTP 400, 413, 415, 422) is given up at once; one that was not taken
within `RETRY_FOR` of being queued is given up after its next failed try. Channels are sent
to in parallel. Deliveries are acknowledged in small batches: a drainer killed between a send
and its acknowledgement sends that notification again, with the same idempotency key.
"""

from __future__ import annotations

import datetime as dt
import os
import random
import socket
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from pydantic import BaseModel

from syncline import clock
from syncline.alerting.channels import DeliveryFailed, Sender
from syncline.alerting.notification import Notification
from syncline.alerting.senders import sender_for
from syncline.config import Workspace
from syncline.errors import SynclineError
from syncline.store.outbox import Outbox, OutboxEntry
from syncline.store.store import MetadataStore
from syncline.store.tickets import Tickets

RETRY_FOR = dt.timedelta(hours=24)
FIRST_WAIT_S = 10.0
MAX_WAIT_S = 3600.0
BATCH = 200  # notifications of one channel read at once
ACK_EVERY = 50  # deliveries acknowledged in one write (or when ACK_EVERY_S has passed)
ACK_EVERY_S = 0.25
LEASE = dt.timedelta(seconds=60)
PARALLEL = 10


def retry_wait(tries: int) -> float:
    """Seconds before the next try of a notification that failed `tries` times."""
    ceiling = min(MAX_WAIT_S, FIRST_WAIT_S * 2.0 ** (tries - 1))
    return float(ceiling * random.uniform(0.5, 1.0))


@dataclass
class DrainReport:
    delivered: int = 0
    retrying: int = 0
    failed: int = 0
    #: channel -> the last error of this drain
    errors: dict[str, str] = field(default_factory=dict)
    #: who delivers instead, when another drainer holds the outbox
    busy: str | None = None
    #: the channels that took at least one notification
    delivered_to: set[str] = field(default_factory=set)

    def add(self, other: DrainReport) -> None:
        self.delivered_to |= other.delivered_to
        self.delivered += other.delivered
        self.retrying += other.retrying
        self.failed += other.failed
        self.errors.update(other.errors)


class Deliverer:
    def __init__(self, store: MetadataStore, now: Callable[[], dt.datetime] = clock.now,
                 senders: Callable[[BaseModel, str, Tickets], Sender] = sender_for) -> None:
        self.store, self.now, self.senders = store, now, senders
        self.outbox: Outbox = store.outbox()
        holder = f"process {os.getpid()} on {socket.gethostname()} ({id(self):x})"
        self.lease = store.leader("outbox", holder, LEASE)

    def drain(self, ws: Workspace, stop: threading.Event | None = None,
              release: bool = False, held: bool = False) -> DrainReport:
        """Send what is due now, until nothing more is (or `stop` is set); `held`: the caller
        has just taken the outbox lease."""
        report = DrainReport()
        if not held:
            lease = self.lease.hold()
            if not lease.mine:
                report.busy = lease.holder
                return report
        try:
            while stop is None or not stop.is_set():
                heads = self.outbox.heads(self.now(), BATCH)
                if not heads:
                    break
                with ThreadPoolExecutor(min(PARALLEL, len(heads))) as pool:
                    done = [f.result() for f in [pool.submit(self._channel, ws, c, e, stop)
                                                 for c, e in heads.items()]]
                progress = 0
                for part in done:
                    report.add(part)
                    progress += part.delivered + part.failed
                if progress == 0:
                    break
                if not self.lease.hold().mine:
                    break
        finally:
            if release:
                self.lease.release()
        return report

    def _channel(self, ws: Workspace, name: str, entries: list[OutboxEntry],
                 stop: threading.Event | None) -> DrainReport:
        report = DrainReport()
        cfg = ws.channels.get(name)
        try:
            if cfg is None:
                raise DeliveryFailed(f"no channel named '{name}' in {ws.file.name} (add it back, "
                                     "or its notifications are given up after 24 hours)")
            ws.require_env("channels", name)
            sender = self.senders(cfg, name, self.store.tickets())
        except (DeliveryFailed, SynclineError) as exc:
            self._failed(entries[0], str(exc), getattr(exc, "permanent", False), report, name)
            return report
        acks: list[int] = []
        last_ack = time.monotonic()
        try:
            for entry in entries:
                if stop is not None and stop.is_set():
                    break
                try:
                    sender.send(Notification.from_payload(entry.payload))
                except DeliveryFailed as exc:
                    self._ack(acks, report)
                    self._failed(entry, str(exc), exc.permanent, report, name)
                    if exc.permanent:
                        continue
                    break
                acks.append(entry.id)
                report.delivered_to.add(name)
                if len(acks) >= ACK_EVERY or time.monotonic() - last_ack >= ACK_EVERY_S:
                    self._ack(acks, report)
                    last_ack = time.monotonic()
        finally:
            self._ack(acks, report)
            sender.close()
        return report

    def _ack(self, acks: list[int], report: DrainReport) -> None:
        if acks:
            self.outbox.delivered(acks, self.now())
            report.delivered += len(acks)
            acks.clear()

    def _failed(self, entry: OutboxEntry, error: str, permanent: bool, report: DrainReport,
                channel: str) -> None:
        now = self.now()
        report.errors[channel] = error
        if permanent:
            self.outbox.failed(entry.id, f"refused by the receiver: {error}", now)
            report.failed += 1
        elif now - entry.created >= RETRY_FOR:
            tries = entry.attempts + 1
            self.outbox.failed(entry.id, f"not delivered in {tries} tries over "
                               f"{(now - entry.created).total_seconds() / 3600:.0f}h: {error}", now)
            report.failed += 1
        else:
            at = now + dt.timedelta(seconds=retry_wait(entry.attempts + 1))
            self.outbox.retry(entry.id, error, now, at)
            report.retrying += 1
