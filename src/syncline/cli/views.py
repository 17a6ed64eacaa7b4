"""What `status`, `runs` and `state` show: plain data first, then rich tables of it."""

from __future__ import annotations

import datetime as dt
from typing import Any

from rich.console import Group
from rich.markup import escape
from rich.table import Table

from syncline.config import Workspace
from syncline.orchestration.schedule import Schedule, parse_duration
from syncline.store.store import MetadataStore, RunRecord


def _iso(moment: dt.datetime | None) -> str | None:
    return moment.isoformat() if moment else None


def age(moment: dt.datetime | None, now: dt.datetime) -> str:
    if moment is None:
        return "—"
    seconds = int((now - moment).total_seconds())
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds // size}{unit} ago"
    return f"{max(seconds, 0)}s ago"


#: A connection's health from its last run's status (anything else: failing). An interrupted run
#: stopped cleanly at a commit and the next one resumes there: a warning, not a failure.
_HEALTH_OF_RUN = {"running": "running", "queued": "queued", "succeeded": "healthy",
                  "warning": "warning", "interrupted": "warning"}


def connection_status(ws: Workspace, store: MetadataStore, now: dt.datetime) -> list[dict[str, Any]]:
    out = []
    for name, conn in sorted(ws.connections.items()):
        last = store.last_run(name)
        ok = store.last_success(name)
        health = "never_run" if last is None else _HEALTH_OF_RUN.get(last.status, "failing")
        freshness = (now - ok.ended_at).total_seconds() if ok and ok.ended_at else None
        base = (ok.ended_at if ok and ok.ended_at else now)
        schedule = Schedule.parse(conn.schedule)
        nxt = schedule.next_after(base)
        sla = parse_duration(conn.freshness_sla) if conn.freshness_sla else schedule.default_sla(now)
        if health in ("healthy", "warning") and sla is not None and freshness is not None \
                and freshness > sla.total_seconds():
            health = "late"
        out.append({
            "connection": name,
            "source": conn.source,
            "destination": conn.destination,
            "schedule": conn.schedule,
            "health": health,
            "last_run": _run_dict(last) if last else None,
            "last_success_at": _iso(ok.ended_at) if ok else None,
            "freshness_seconds": freshness,
            "next_due_at": _iso(nxt),
            "freshness_sla_seconds": sla.total_seconds() if sla is not None else None,
        })
    return out


def _run_dict(r: RunRecord) -> dict[str, Any]:
    duration = (r.ended_at - r.started_at).total_seconds() if r.ended_at else None
    return {
        "id": r.id, "connection": r.connection, "status": r.status, "trigger": r.trigger,
        "revision": r.revision, "started_at": _iso(r.started_at),
        "ended_at": _iso(r.ended_at), "duration_seconds": duration, "attempts": r.attempts,
        "rows_read": r.rows_read, "rows_committed": r.rows_committed,
        "rows_quarantined": r.rows_quarantined, "failure_class": r.failure_class,
        "failure_message": r.failure_message,
        "streams": [
            {
                "stream": s.stream, "table": s.table_name, "mode": s.mode, "write": s.write,
                "status": s.status, "rows_read": s.rows_read, "rows_committed": s.rows_committed,
                "rows_quarantined": s.rows_quarantined, "bytes": s.bytes,
                "duration_seconds": s.duration_s, "schema_changes": s.schema_changes,
                "message": s.message,
            }
            for s in r.streams
        ],
    }


def runs_data(store: MetadataStore, connection: str | None, limit: int) -> list[dict[str, Any]]:
    return [_run_dict(r) for r in store.runs(connection, limit=limit)]


def run_data(store: MetadataStore, run_id: int) -> dict[str, Any] | None:
    """One run in full: its streams and every attempt with its failure."""
    found = store.run(run_id)
    if found is None:
        return None
    attempts = [a | {"started_at": _iso(a["started_at"]), "ended_at": _iso(a["ended_at"])}
                for a in store.attempts(run_id)]
    return _run_dict(found) | {"attempt_history": attempts}


_HEALTH_STYLE = {"healthy": "green", "failing": "red", "late": "red", "running": "cyan",
                 "queued": "cyan", "warning": "yellow"}


def status_table(rows: list[dict[str, Any]], now: dt.datetime) -> Table:
    t = Table(title="Syncline connections")
    for col in ("connection", "health", "last run", "rows", "freshness", "schedule", "failure"):
        t.add_column(col, justify="right" if col == "rows" else "left")
    for r in rows:
        last = r["last_run"]
        style = _HEALTH_STYLE.get(r["health"], "dim")
        ok_at = dt.datetime.fromisoformat(r["last_success_at"]) if r["last_success_at"] else None
        t.add_row(
            r["connection"],
            f"[{style}]{r['health']}[/]",
            f"#{last['id']} {last['status']} {age(dt.datetime.fromisoformat(last['started_at']), now)}"
            if last else "—",
            f"{last['rows_committed']:,}" if last else "—",
            age(ok_at, now),
            r["schedule"],
            (last["failure_class"] or "") if last else "",
        )
    return t


_RUN_STYLE = {"succeeded": "green", "warning": "yellow", "failed": "red", "crashed": "red"}


def _duration(r: dict[str, Any]) -> str:
    return f"{r['duration_seconds']:.1f}s" if r["duration_seconds"] is not None else "—"


def runs_table(connection: str | None, rows: list[dict[str, Any]]) -> Table:
    """Runs newest first; the failure column holds the whole message, wrapped."""
    t = Table(title=f"Runs of {connection}" if connection else "Runs")
    cols = ("run", "connection", "status", "started", "duration", "attempts", "read", "committed",
            "quarantined", "failure")
    for col in cols if connection is None else [c for c in cols if c != "connection"]:
        t.add_column(col, justify="right" if col in ("read", "committed", "quarantined") else "left",
                      overflow="fold", ratio=4 if col == "failure" else None)
    for r in rows:
        style = _RUN_STYLE.get(r["status"], "cyan")
        cells = [str(r["id"]), r["connection"], f"[{style}]{r['status']}[/]",
                 r["started_at"][:19].replace("T", " "), _duration(r), str(r["attempts"]),
                 f"{r['rows_read']:,}", f"{r['rows_committed']:,}", f"{r['rows_quarantined']:,}",
                 escape(r["failure_message"] or "")]
        t.add_row(*(cells if connection is None else cells[:1] + cells[2:]))
    return t


def run_detail(r: dict[str, Any]) -> Group:
    """One run in full: a summary, its streams, and each attempt's whole failure."""
    style = _RUN_STYLE.get(r["status"], "cyan")
    head = Table.grid(padding=(0, 2))
    for label, value in (
        ("run", f"#{r['id']} of {r['connection']} ({r['trigger']})"),
        ("revision", f"config revision {r['revision']}" if r.get("revision") else "—"),
        ("status", f"[{style}]{r['status']}[/]"),
        ("started", r["started_at"]), ("ended", r["ended_at"] or "—"), ("duration", _duration(r)),
        ("rows", f"{r['rows_read']:,} read, {r['rows_committed']:,} committed, "
                 f"{r['rows_quarantined']:,} quarantined"),
        ("failure", escape(f"{r['failure_class']}: {r['failure_message']}")
         if r["failure_class"] else "—"),
    ):
        head.add_row(f"[bold]{label}[/]", str(value))
    streams = Table(title="streams")
    for col in ("stream", "table", "mode", "write", "status", "read", "committed", "quarantined",
                "message"):
        streams.add_column(col, overflow="fold")
    for s in r["streams"]:
        streams.add_row(s["stream"], s["table"], s["mode"], s["write"], s["status"],
                        f"{s['rows_read']:,}", f"{s['rows_committed']:,}",
                        f"{s['rows_quarantined']:,}", escape(s["message"] or ""))
    attempts = Table(title="attempts")
    for col in ("attempt", "status", "started", "failure"):
        attempts.add_column(col, overflow="fold")
    for a in r["attempt_history"]:
        failure = f"{a['failure_class']}: {a['failure_message']}" if a["failure_class"] else ""
        attempts.add_row(str(a["number"]), a["status"], a["started_at"] or "", escape(failure))
    return Group(head, streams, attempts)


def stream_summary_table(result: Any) -> Table:
    t = Table(title=f"run {result.run_id}: {result.status}")
    deletes = any(s.rows_deleted for s in result.streams)
    numbers = ("read", "committed", "quarantined", *(("deleted",) if deletes else ()))
    for col in ("stream", "table", "mode", *numbers):
        t.add_column(col, justify="right" if col in numbers else "left")
    for s in result.streams:
        t.add_row(s.stream, s.table, f"{s.mode}/{s.write}", f"{s.rows_read:,}",
                  f"{s.rows_committed:,}", f"{s.rows_quarantined:,}",
                  *((f"{s.rows_deleted:,}",) if deletes else ()))
    return t


def verify_table(connection: str, verdicts: list[Any]) -> Table:
    t = Table(title=f"verify {connection}")
    for col in ("stream", "result", "source", "destination", "quarantined", "missing", "extra",
                "different", "duplicated"):
        t.add_column(col, justify="left" if col in ("stream", "result") else "right")
    for v in verdicts:
        c = v.counts
        t.add_row(
            v.stream, "[green]match[/]" if v.ok else "[red]MISMATCH[/]", f"{v.source_rows:,}",
            f"{v.destination_rows:,}", f"{v.quarantined_at_source:,}", str(c.get("missing", 0)),
            str(c.get("extra", 0)), str(c.get("different", 0)), str(c.get("duplicated", 0)),
        )
    return t
