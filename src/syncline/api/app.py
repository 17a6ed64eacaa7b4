"""The HTTP server of `syncline up`: `/healthz`, `/readyz`, `/metrics` and `GET /api/v1/status`.

`/healthz` says the process answers. `/readyz` says the service can do its work: the
metadata store answers, a config revision is applied, the scheduler ticked in the last
few seconds and at least one worker is alive (in distributed mode, also: the last wake sent
through the broker went); otherwise 503 with the checks that failed.
`/metrics` is every connection's Prometheus metrics (monitoring/metrics.py).
`/api/v1/status` is the document `syncline status --json` prints.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from importlib.metadata import version
from pathlib import Path
from typing import Any

from fastapi import FastAPI
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from sqlalchemy.exc import SQLAlchemyError

from syncline import clock
from syncline.config import workspace_from_document
from syncline.errors import SynclineError
from syncline.monitoring.metrics import registry
from syncline.monitoring.status import connection_status
from syncline.store.store import MetadataStore

TICK_STALE_S = 10.0


@dataclass
class ServiceState:
    """What the service's parts tell the HTTP server; set by `up`, read per request."""

    store: MetadataStore
    file: Path
    last_tick: dt.datetime | None = None
    notes: dict[str, str] = field(default_factory=dict)
    #: distributed mode: runs go through a broker; readiness needs it to answer
    broker: bool = False


def create_app(state: ServiceState) -> FastAPI:
    app = FastAPI(title="Syncline", version=version("syncline"), docs_url="/api/docs",
                  redoc_url=None, openapi_url="/api/openapi.json")

    @app.get("/healthz")
    def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/readyz")
    def readyz() -> JSONResponse:
        checks = _checks(state)
        ready = all(c["ok"] for c in checks.values())
        return JSONResponse({"ready": ready, "checks": checks}, status_code=200 if ready else 503)

    metrics = registry(state.store)

    @app.get("/metrics")
    def prometheus() -> Response:
        return Response(generate_latest(metrics), media_type=CONTENT_TYPE_LATEST)

    @app.get("/api/v1/status")
    def status() -> Any:
        revision = state.store.revisions().latest()
        if revision is None:
            return JSONResponse({"error": "no config revision applied"}, status_code=503)
        ws = workspace_from_document(revision.document, root=state.file.parent, file=state.file)
        state.store.reap_stale_runs()
        return connection_status(ws, state.store, clock.now())

    return app


def _checks(state: ServiceState) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    try:
        revision = state.store.revisions().latest()
        workers = state.store.workers().list()
        out["store"] = {"ok": True}
    except (SQLAlchemyError, SynclineError) as exc:
        out["store"] = {"ok": False, "error": type(exc).__name__}
        return out
    out["revision"] = {"ok": revision is not None,
                       "number": revision.number if revision else None}
    now = clock.now()
    age = (now - state.last_tick).total_seconds() if state.last_tick else None
    out["scheduler"] = {"ok": age is not None and age < TICK_STALE_S, "last_tick_seconds_ago": age}
    out["workers"] = {"ok": bool(workers), "alive": len(workers)}
    if state.broker:
        out["broker"] = {"ok": "broker" not in state.notes}
    return out
