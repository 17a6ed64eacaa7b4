"""The status document of a workspace and the plain data of its runs: what `status`,
`runs` and the HTTP API's `/api/v1/status` show, in one place, as JSON-ready dicts."""

from __future__ import annotations

import datetime as dt
from typing import Any

from syncline.config import ConnectionConfig, Workspace
from syncline.failure_signature import signature
from syncline.freshness import within_share
from syncline.schedule import Schedule, parse_duration
from syncline.store.store import MetadataStore, RunRecord


def iso(moment: dt.datetime | None) -> str | None:
    return moment.isoformat() if moment else None


#: A connection's health from its last run's status (anything else: failing). An interrupted run
#: stopped cleanly at a commit and the next one resumes there: a warning, not a failure.
SLO_WINDOW = dt.timedelta(days=30)
_HEALTH_OF_RUN = {"running": "running", "queued": "queued", "succeeded": "healthy",
                  "warning": "warning", "interrupted": "warning"}


def connection_status(ws: Workspace, store: MetadataStore, now: dt.datetime) -> list[dict[str, Any]]:
    out = []
    paused = store.pauses().all()
    for name, conn in sorted(ws.connections.items()):
        last = store.last_run(name)
        ok = store.last_success(name)
        health = "never_run" if last is None else _HEALTH_OF_RUN.get(last.status, "failing")
        # as old as the moment the last successful run's read began (the snapshot it read)
        freshness = (now - ok.started_at).total_seconds() if ok and ok.ended_at else None
        base = (ok.ended_at if ok and ok.ended_at else now)
        schedule = Schedule.parse(conn.schedule)
        nxt = schedule.next_after(base)
        sla = parse_duration(conn.freshness_sla) if conn.freshness_sla else schedule.default_sla(now)
        streams = _stream_freshness(store, name, conn, now)
        late = (sla is not None and freshness is not None and freshness > sla.total_seconds()) \
            or any(st["late"] for st in streams)
        if health in ("healthy", "warning") and late:
            health = "late"
        slo = within_share(store.successes(name, now - SLO_WINDOW), sla, now - SLO_WINDOW, now) \
            if sla is not None else None
        if name in paused and health != "running":  # paused: nothing runs, so nothing is late
            health = "paused"
        out.append({
            "connection": name,
            "source": conn.source,
            "destination": conn.destination,
            "schedule": conn.schedule,
            "health": health,
            "last_run": run_dict(last) if last else None,
            "last_success_at": iso(ok.ended_at) if ok else None,
            "freshness_seconds": freshness,
            "next_due_at": iso(nxt),
            "freshness_sla_seconds": sla.total_seconds() if sla is not None else None,
            # the share of the last 30 days the connection's data was within its SLA
            "slo_30d": round(slo, 4) if slo is not None else None,
            "streams_freshness": streams,
            "paused_at": iso(paused[name].paused_at) if name in paused else None,
            # loaded tables whose stream the source or the connection no longer has: stale
            "orphaned": [{"stream": s.stream, "table": s.table_name, "message": s.message}
                         for s in (last.streams if last else []) if s.status == "orphaned"],
            # what the last run did outside what the earlier ones taught (baselines.py)
            "anomalies": [{"kind": e.kind, "stream": e.stream, **e.body} for e in store.events().read(
                connection=name, run=last.id, kinds=["volume.anomaly", "freshness.anomaly"])]
            if last else [],
            "failure_group": _group(last) if health == "failing" and last else None,
        })
    return out


def _stream_freshness(store: MetadataStore, name: str, conn: ConnectionConfig,
                      now: dt.datetime) -> list[dict[str, Any]]:
    """Streams with a `freshness_sla:` of their own, each against it."""
    own = {s: parse_duration(c.freshness_sla) for s, c in (conn.streams or {}).items() if c.freshness_sla}
    if not own:
        return []
    seen = store.stream_snapshots(name)
    out = []
    for stream, sla in sorted(own.items()):
        at = seen.get(stream)
        age = (now - at).total_seconds() if at else None
        out.append({"stream": stream, "freshness_seconds": age, "freshness_sla_seconds": sla.total_seconds(),
                    "late": age is not None and age > sla.total_seconds()})
    return out


def _group(run: RunRecord) -> dict[str, str] | None:
    """The root-cause group of a failing connection's last failure (`syncline failures`)."""
    if not run.failure_class or not run.failure_message:
        return None
    sig = signature(run.failure_class, run.failure_message)
    return {"group": sig.key, "origin": sig.origin, "error_type": sig.error_type, "pattern": sig.pattern}


def run_dict(r: RunRecord) -> dict[str, Any]:
    duration = (r.ended_at - r.started_at).total_seconds() if r.ended_at else None
    return {
        "id": r.id, "connection": r.connection, "status": r.status, "trigger": r.trigger,
        "revision": r.revision, "started_at": iso(r.started_at),
        "ended_at": iso(r.ended_at), "duration_seconds": duration, "attempts": r.attempts,
        "rows_read": r.rows_read, "rows_committed": r.rows_committed,
        "rows_quarantined": r.rows_quarantined, "failure_class": r.failure_class,
        "failure_message": r.failure_message,
        "streams": [
            {
                "stream": s.stream, "table": s.table_name, "mode": s.mode, "write": s.write,
                "status": s.status, "rows_read": s.rows_read, "rows_committed": s.rows_committed,
                "rows_quarantined": s.rows_quarantined, "bytes": s.bytes,
                "duration_seconds": s.duration_s, "schema_changes": s.schema_changes,
                "message": s.message, "requests": s.requests,
            }
            for s in r.streams
        ],
    }


def runs_data(store: MetadataStore, connection: str | None, limit: int) -> list[dict[str, Any]]:
    return [run_dict(r) for r in store.runs(connection, limit=limit)]


def run_data(store: MetadataStore, run_id: int) -> dict[str, Any] | None:
    """One run in full: its streams and every attempt with its failure."""
    found = store.run(run_id)
    if found is None:
        return None
    attempts = [a | {"started_at": iso(a["started_at"]), "ended_at": iso(a["ended_at"])}
                for a in store.attempts(run_id)]
    return run_dict(found) | {"attempt_history": attempts}
