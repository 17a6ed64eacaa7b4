"""`syncline alerts`: every rule's state and value (`alerts list`), and one evaluation now
(`alerts check`, for cron users and scripts; `up` evaluates every second)."""

from __future__ import annotations

from typing import Any

import typer
from rich.markup import escape
from rich.table import Table

from syncline import clock
from syncline.cli.common import (
    HELP,
    JsonOpt,
    ListByDefault,
    WorkspaceOpt,
    console,
    guarded,
    opened,
    print_json,
)

alerts_app = typer.Typer(context_settings=HELP, name="alerts", cls=ListByDefault,
                         help="Alert rules: their state (`alerts list`), `alerts check` now.")
_STYLE = {"firing": "red", "pending": "yellow", "inactive": "green", "disabled": "dim"}


@alerts_app.command("list")
def list_alerts(workspace: WorkspaceOpt = None, as_json: JsonOpt = False) -> None:
    """Every rule (built-in ones too) with its condition, `for:`, severity, channels, its state
    — inactive, pending (holding, not yet for its `for:`) or firing, or disabled — the
    subjects it holds for, and its signal's value now (the largest, with whose)."""
    from syncline.alerting.overview import rule_states
    from syncline.alerting.rules import show

    with opened(workspace) as (ws, store):
        rows = guarded(lambda: rule_states(store, ws, clock.now()))
    if as_json:
        print_json(rows)
        return
    t = Table(title="Alert rules")
    for col in ("rule", "when", "for", "severity", "notify", "state", "value now", "holding for"):
        t.add_column(col, overflow="fold")
    for r in rows:
        value = r["value_text"] or "—"
        if r["value_subject"]:
            value += f" ({r['value_subject']})"
        holding = ", ".join(f"{s['subject'] or 'workspace'} ({s['state']})" for s in r["subjects"][:5])
        more = len(r["subjects"]) - 5
        t.add_row(escape(r["rule"]) + (" [dim](built in)[/dim]" if r["builtin"] else ""),
                  escape(r["when"]), show(r["for_seconds"], "seconds") if r["for_seconds"] else "—",
                  r["severity"], escape(", ".join(r["notify"]) or "—"),
                  f"[{_STYLE[r['state']]}]{r['state']}[/]", escape(value),
                  escape(holding + (f" +{more}" if more > 0 else "")))
    console.print(t)


@alerts_app.command("check")
def check_alerts(workspace: WorkspaceOpt = None, as_json: JsonOpt = False) -> None:
    """Evaluate every rule once now and deliver what that queues: what became pending, fired
    and resolved. With `up` running, `up` evaluates and this says so."""
    from syncline.alerting.delivery import Deliverer
    from syncline.alerting.rules import Evaluator

    with opened(workspace) as (ws, store):
        deliverer = Deliverer(store)
        held = deliverer.lease.hold()
        if not held.mine:
            result: dict[str, Any] = {"busy": held.holder}
        else:
            try:
                done = guarded(lambda: Evaluator(store).evaluate(ws))
                report = deliverer.drain(ws, held=True)
            finally:
                deliverer.lease.release()
            result = {"busy": None, "fired": [list(p) for p in done.fired],
                      "resolved": [list(p) for p in done.resolved],
                      "pending": [list(p) for p in done.pending],
                      "repeated": [list(p) for p in done.repeated], "forwarded": done.forwarded,
                      "waiting": [list(p) for p in done.waiting],
                      "incidents_opened": done.incidents_opened, "mitigated": done.mitigated,
                      "escalated": done.escalated,
                      "silenced": [list(p) for p in done.muted],
                      "queued": done.queued, "delivered": report.delivered,
                      "delivery_errors": report.errors}
    if as_json:
        print_json(result)
        return
    if result["busy"]:
        console.print(f"{result['busy']} evaluates the rules now; see `syncline alerts`")
        return
    said = False
    for what in ("fired", "repeated", "resolved", "pending"):
        for rule, subject in result[what]:
            console.print(f"{what}: {escape(rule)}" + (f" for {escape(subject)}" if subject else ""))
            said = True
    for rule, subject in result["waiting"]:
        console.print(f"  {escape(rule)} for {escape(subject) or 'the workspace'}: told once its "
                      "group_wait is over (with others failing the same way), at the next check")
    for rule, subject in result["silenced"]:
        console.print(f"  {escape(rule)} for {escape(subject) or 'the workspace'}: silenced "
                      "(`syncline silence list`), told when the silence ends if still firing")
    if result["forwarded"]:
        console.print(f"forwarded {result['forwarded']} event(s)")
    if result["incidents_opened"] or result["mitigated"] or result["escalated"]:
        console.print(f"incidents: {result['incidents_opened']} opened, mitigated "
                      f"{result['mitigated'] or 'none'}, escalated {result['escalated'] or 'none'} "
                      "(`syncline incidents`)")
    if not said and not result["forwarded"]:
        console.print("no change")
    console.print(f"notifications queued {result['queued']}, delivered {result['delivered']}")
    for name, error in sorted(result["delivery_errors"].items()):
        console.print(f"  [red]{escape(name)}[/red]: {escape(error)}")
