"""The alerting loop of `syncline up`: every second, evaluate the alert rules, queue the digest
when one is due, and deliver what the outbox holds (only the process holding the store's `outbox` lease does either, so two
`up`s never evaluate or notify twice).

It reads the channels of the newest config revision (so an edited `syncline.yaml` takes
effect without a restart) and says in `up`'s log when a channel starts failing and when it
delivers again, once each, not at every retry.
"""

from __future__ import annotations

import datetime as dt
import threading
from collections.abc import Callable
from pathlib import Path

from sqlalchemy.exc import SQLAlchemyError

from syncline import clock
from syncline.alerting.delivery import Deliverer, DrainReport
from syncline.alerting.digest import queue_if_due
from syncline.alerting.rules import Evaluation, Evaluator
from syncline.config import Workspace, workspace_from_document
from syncline.errors import SynclineError
from syncline.store.store import MetadataStore

EVERY_S = 1.0


class AlertingLoop:
    def __init__(self, store: MetadataStore, root: Path, file: Path,
                 say: Callable[[str], None]) -> None:
        self.store, self.root, self.file, self.say = store, root, file, say
        self.deliverer = Deliverer(store)
        self.evaluator = Evaluator(store)
        self._ws: tuple[int, Workspace] | None = None
        self._failing: dict[str, str] = {}  # channel -> the error said
        self._away = False
        self._digest_slot: dt.datetime | None = None  # the last digest slot seen queued

    def workspace(self) -> Workspace | None:
        """The workspace of the newest revision (parsed again only when it changes)."""
        number = self.store.revisions().latest_number()
        if number is None:
            return None
        if self._ws is None or self._ws[0] != number:
            revision = self.store.revisions().get(number)
            if revision is None:
                return None
            self._ws = (number, workspace_from_document(revision.document, root=self.root,
                                                        file=self.file))
        return self._ws[1]

    def tick(self, stop: threading.Event | None = None) -> None:
        try:
            ws = self.workspace()
            if ws is None:
                return
            lease = self.deliverer.lease.hold()
            if lease.mine:
                self._said(self.evaluator.evaluate(ws))
                self._digest(ws)
            report = (self.deliverer.drain(ws, stop, held=True) if lease.mine
                      else DrainReport(busy=lease.holder))
        except (SQLAlchemyError, SynclineError) as exc:
            if not self._away:
                self._away = True
                self.say(f"notifications: cannot deliver now ({type(exc).__name__}); they wait "
                         "in the outbox, trying again every second")
            return
        self._away = False
        for channel, error in report.errors.items():
            if self._failing.get(channel) is None:
                self.say(f"notifications: {channel} failed ({error}); retrying with backoff, "
                         "see `syncline notifications`")
            self._failing[channel] = error
        for channel in [c for c in self._failing if c in report.delivered_to - set(report.errors)]:
            del self._failing[channel]
            self.say(f"notifications: {channel} delivers again")

    def _digest(self, ws: Workspace) -> None:
        """Queue the digest when a new slot comes (the store is asked once per slot)."""
        if ws.model.digest is None:
            return
        now = clock.now()
        slot = ws.model.digest.last_slot(now)
        if slot == self._digest_slot:
            return
        if queue_if_due(self.store, ws, now) is not None:
            self.say(f"digest of {slot:%Y-%m-%d %H:%M} UTC queued")
        self._digest_slot = slot

    def _said(self, result: Evaluation) -> None:
        for what, pairs in (("firing", result.fired), ("resolved", result.resolved)):
            for rule, subject in pairs:
                self.say(f"alert {rule} {what}" + (f" for {subject}" if subject else ""))

    def run(self, stop: threading.Event) -> None:
        while True:
            self.tick(stop)
            if stop.wait(EVERY_S):
                break
        try:
            self.deliverer.lease.release()  # a `notifications send` may deliver at once
        except SQLAlchemyError:
            pass  # it expires by itself
