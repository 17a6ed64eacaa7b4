"""What `status`, `runs` and `state` show: rich tables of the plain data in monitoring/status.py."""

from __future__ import annotations

import datetime as dt
from typing import Any

from rich.console import Group
from rich.markup import escape
from rich.table import Table

from syncline.monitoring.status import connection_status, iso, run_data, run_dict, runs_data

__all__ = ["age", "connection_status", "iso", "run_data", "run_dict", "run_detail", "runs_data",
           "runs_table", "status_table", "stream_summary_table", "verify_table"]


def age(moment: dt.datetime | None, now: dt.datetime) -> str:
    if moment is None:
        return "—"
    seconds = int((now - moment).total_seconds())
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds // size}{unit} ago"
    return f"{max(seconds, 0)}s ago"


_HEALTH_STYLE = {"healthy": "green", "failing": "red", "late": "red", "running": "cyan",
                 "queued": "cyan", "warning": "yellow"}


def status_table(rows: list[dict[str, Any]], now: dt.datetime) -> Table:
    t = Table(title="Syncline connections")
    for col in ("connection", "health", "last run", "rows", "freshness", "schedule", "failure"):
        t.add_column(col, justify="right" if col == "rows" else "left", overflow="fold")
    for r in rows:
        last = r["last_run"]
        style = _HEALTH_STYLE.get(r["health"], "dim")
        # as old as the snapshot the last successful run read (`freshness_seconds`)
        ok_at = (now - dt.timedelta(seconds=r["freshness_seconds"])
                 if r.get("freshness_seconds") is not None else None)
        t.add_row(
            r["connection"],
            f"[{style}]{r['health']}[/]",
            f"#{last['id']} {last['status']} {age(dt.datetime.fromisoformat(last['started_at']), now)}"
            if last else "—",
            f"{last['rows_committed']:,}" if last else "—",
            age(ok_at, now),
            r["schedule"],
            "; ".join([*([last["failure_class"]] if last and last["failure_class"] else []),
                       *([f"group {r['failure_group']['group'][:8]}"] if r.get("failure_group") else []),
                       *(f"orphaned table {o['table']} (stream {o['stream']})" for o in r["orphaned"]),
                       *(_anomaly(a) for a in r.get("anomalies", []))]),
        )
    return t


def _anomaly(a: dict[str, Any]) -> str:
    if a["kind"] == "volume.anomaly":
        return (f"{a['stream']}: read {a['rows_read']:,} rows, usually {a['expected_low']:,.0f} to "
                f"{a['expected_high']:,.0f}")
    return f"{a['gap_s'] / 3600:.1f}h since the last success, usually under {a['expected_high_s'] / 3600:.1f}h"


_RUN_STYLE = {"succeeded": "green", "warning": "yellow", "partial": "red", "failed": "red", "crashed": "red"}


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


def requests_text(figures: dict[str, Any] | None) -> str:
    """An API stream's requests in a phrase: 79 requests (27 retries: 200×52, 503×27), 41.2s
    waited on Retry-After and backoff, 0.0s on the rate limit."""
    if not figures or not figures.get("requests"):
        return ""
    statuses = ", ".join(f"{k}×{v}" for k, v in figures.get("statuses", {}).items())
    return (f"{figures['requests']:,} requests ({figures.get('retries', 0):,} retries: {statuses}), "
            f"{figures.get('retry_wait_s', 0):.1f}s waited before retries, "
            f"{figures.get('rate_limit_wait_s', 0):.1f}s on the rate limit")


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
        said = "; ".join(x for x in (s["message"] or "", requests_text(s.get("requests"))) if x)
        streams.add_row(s["stream"], s["table"], s["mode"], s["write"], s["status"],
                        f"{s['rows_read']:,}", f"{s['rows_committed']:,}",
                        f"{s['rows_quarantined']:,}", escape(said))
    attempts = Table(title="attempts")
    for col in ("attempt", "status", "started", "failure"):
        attempts.add_column(col, overflow="fold")
    for a in r["attempt_history"]:
        failure = f"{a['failure_class']}: {a['failure_message']}" if a["failure_class"] else ""
        attempts.add_row(str(a["number"]), a["status"], a["started_at"] or "", escape(failure))
    return Group(head, streams, attempts)


def stream_summary_table(result: Any) -> Table:
    t = Table(title=f"run {result.run_id}: {result.status}"
              + (" (full refresh: every stream read from its start)" if result.full_refresh else ""))
    deletes = any(s.rows_deleted for s in result.streams)
    numbers = ("read", "committed", "quarantined", *(("deleted",) if deletes else ()))
    for col in ("stream", "table", "mode", *numbers):
        t.add_column(col, justify="right" if col in numbers else "left")
    for s in result.streams:
        t.add_row(s.stream, s.table, f"{s.mode}/{s.write}" + (" (full refresh)" if result.full_refresh
                                                              and s.mode != "full_refresh" else ""),
                  f"{s.rows_read:,}",
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
