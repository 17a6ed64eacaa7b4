"""`syncline notifications`: the delivery log of the outbox (`list [--failed]`), a test
notification to a channel (`test CHANNEL`), and one delivery round now (`send`)."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Annotated, Any

import typer
from rich.markup import escape
from rich.table import Table

from syncline import clock
from syncline.alerting.delivery import DrainReport
from syncline.alerting.notification import Notification
from syncline.cli.common import (
    HELP,
    JsonOpt,
    ListByDefault,
    WorkspaceOpt,
    console,
    opened,
    print_json,
    refuse,
)
from syncline.cli.views import age
from syncline.config import Workspace
from syncline.store.store import MetadataStore

notifications_app = typer.Typer(
    context_settings=HELP, name="notifications", cls=ListByDefault,
    help="Notifications: the delivery log (`notifications list`), `test CHANNEL`, `send`.")


def _report_json(report: DrainReport) -> dict[str, Any]:
    return {"delivered": report.delivered, "retrying": report.retrying, "failed": report.failed,
            "errors": report.errors, "busy": report.busy}


def _drain(ws: Workspace, store: MetadataStore) -> DrainReport:
    from syncline.alerting.delivery import Deliverer

    return Deliverer(store).drain(ws, release=True)


@notifications_app.command("list")
def list_notifications(
    workspace: WorkspaceOpt = None,
    failed: Annotated[bool, typer.Option("--failed", help="Only those given up.")] = False,
    channel: Annotated[str | None, typer.Option("--channel", help="Only this channel's.")] = None,
    limit: Annotated[int, typer.Option("--limit", "-n", min=1, help="How many, newest first.")] = 50,
    as_json: JsonOpt = False,
) -> None:
    """Every notification with what became of it: pending (with its next try), delivered,
    or failed (refused by the receiver, or not taken within 24 hours), with tries and the last
    error, newest first."""
    with opened(workspace) as (_ws, store):
        entries = store.outbox().read(status="failed" if failed else None, channel=channel,
                                      limit=limit)
    if as_json:
        print_json([e.to_json() for e in entries])
        return
    if not entries:
        console.print("no failed notifications" if failed else "no notifications yet")
        return
    now = clock.now()
    t = Table(title="Failed notifications" if failed else "Notifications, newest first")
    for col in ("id", "channel", "kind", "connection", "queued", "status", "tries", "last error"):
        t.add_column(col, overflow="fold")
    for e in entries:
        status = e.status if e.status != "pending" else f"pending, next try {_until(e.next_at, now)}"
        t.add_row(str(e.id), escape(e.channel), e.kind, escape(str(e.payload.get("connection") or "")),
                  age(e.created, now), status, str(e.attempts), escape(e.last_error or ""))
    console.print(t)


def _until(moment: dt.datetime, now: dt.datetime) -> str:
    seconds = int((moment - now).total_seconds())
    if seconds <= 0:
        return "now"
    for unit, size in (("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"in {seconds // size}{unit}"
    return f"in {seconds}s"


@notifications_app.command("test")
def test_channel(
    channel: Annotated[str, typer.Argument(help="A channel of `channels:`.")],
    workspace: WorkspaceOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Queue a test notification for CHANNEL and deliver it now: exit 0 when the receiver
    took it, 1 with the receiver's answer when not (it stays queued and is retried)."""
    with opened(workspace) as (ws, store):
        if channel not in ws.channels:
            refuse(f"no channel named '{channel}' in {ws.file.name}",
                   f"use one of: {', '.join(sorted(ws.channels)) or '(none defined: add `channels:`)'}")
        note = Notification(id=f"test-{uuid.uuid4().hex[:12]}", kind="notification.test",
                            time=clock.now(), severity="info",
                            body={"title": f"test of channel {channel}",
                                  "message": f"A test notification from Syncline to the channel "
                                  f"'{channel}': if you can read this, it works."})
        store.outbox().put([(channel, note.id, note.kind, note.payload())], note.time)
        report = _drain(ws, store)
        [entry] = [e for e in store.outbox().read(channel=channel, limit=20) if e.key == note.id]
    result = {"channel": channel, "id": note.id, "status": entry.status, "error": entry.last_error,
              "busy": report.busy}
    if as_json:
        print_json(result)
    elif entry.status == "delivered":
        console.print(f"delivered a test notification to {channel} ({note.id})")
    elif report.busy:
        console.print(f"queued a test notification for {channel}; {report.busy} delivers it "
                      "(see `syncline notifications list`)")
    else:
        console.print(f"[red]not delivered to {channel}[/red]: {escape(entry.last_error or '')}\n"
                      "it stays queued and is retried; see `syncline notifications list`")
    if entry.status != "delivered" and not report.busy:
        raise typer.Exit(1)


@notifications_app.command("send")
def send(workspace: WorkspaceOpt = None, as_json: JsonOpt = False) -> None:
    """Deliver what is due now and exit (for cron; `up` does this all the time). Exit 1 when a
    channel failed; nothing is lost: what failed is retried on the next round."""
    with opened(workspace) as (ws, store):
        report = _drain(ws, store)
    if as_json:
        print_json(_report_json(report))
    elif report.busy:
        console.print(f"{report.busy} is delivering notifications now; nothing to do")
    else:
        console.print(f"delivered {report.delivered}, retrying {report.retrying}, "
                      f"failed {report.failed}")
        for name, error in sorted(report.errors.items()):
            console.print(f"  {escape(name)}: {escape(error)}")
    if report.errors and not report.busy:
        raise typer.Exit(1)
