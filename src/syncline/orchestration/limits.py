"""What each run uses that has a limit: its source and destination when they set
`max_concurrent_runs:`, and always the DuckDB file it writes (DuckDB has one writer: runs
into one file never overlap in different processes). The queue hands a worker only a run
whose every resource has a free slot."""

from __future__ import annotations

from syncline.config import Workspace
from syncline.store.queue import Slot


def resources(ws: Workspace) -> dict[str, tuple[Slot, ...]]:
    """Per connection, the resources its runs hold."""
    out: dict[str, tuple[Slot, ...]] = {}
    for name, conn in ws.connections.items():
        held: list[Slot] = []
        for section, ref in (("sources", conn.source), ("destinations", conn.destination)):
            limit = ws.limits.get((section, ref))
            if limit is not None:
                held.append((f"{section[:-1]} {ref}", limit))
        destination = ws.destinations.get(conn.destination)
        if getattr(destination, "type", None) == "duckdb":
            path = ws.resolve_path(str(getattr(destination, "path", "")))
            held.append((f"duckdb file {path.resolve()}", 1))
        out[name] = tuple(held)
    return out
