"""Opening a workspace's sources and destinations for a run, and checking the streams a
command names before any run begins."""

from __future__ import annotations

import contextlib

from syncline.config import Workspace
from syncline.destinations.base import Destination
from syncline.destinations.registry import build_destination
from syncline.errors import ConfigurationError, SynclineError
from syncline.sources.base import Source
from syncline.sources.registry import build_source


def check_selected(ws: Workspace, connection: str, only: list[str] | None) -> None:
    """`--stream` names streams of the connection: a typo is a usage error, never a run, and
    leaves the connection's health as it was. A source that cannot be reached to list its
    streams is left to the run, which records and retries that failure."""
    if not only:
        return
    conn = ws.connection(connection)
    if conn.streams is not None:
        known = {s for s, cfg in conn.streams.items() if cfg.selected}
    else:
        try:
            source = open_source(ws, conn.source)
            try:
                known = {s.name for s in source.discover()}
            finally:
                source.close()
        except SynclineError:
            return
    unknown = [s for s in only if s not in known]
    if unknown:
        raise ConfigurationError(
            f"--stream {', '.join(unknown)} is not a stream of this connection",
            connection=connection, fix=f"choose from: {', '.join(sorted(known)) or '(none)'}",
        )


def open_source(ws: Workspace, name: str) -> Source:
    return build_source(name, ws.source(name), str(ws.root), own_schemas(ws, name), str(ws.state_dir))


def own_schemas(ws: Workspace, source: str) -> tuple[str, ...]:
    """The destination schemas of the workspace's connections into the database a PostgreSQL
    source reads: it must never read Syncline's own output back."""
    config = ws.source(source)
    if getattr(config, "type", None) != "postgres":
        return ()
    from syncline.sources.postgres.config import database_address

    here = database_address(config)
    from syncline.engine.plan import configured_table, schema_names

    out: set[str] = set()
    for name, conn in ws.connections.items():
        if (getattr(ws.destinations.get(conn.destination), "type", None) != "postgres"
                or database_address(ws.destinations[conn.destination]) != here):
            continue
        schemas = schema_names(name, conn)
        out.update(schemas)  # as written and normalized: either may be the one loaded
        for cfg in (conn.streams or {}).values():  # and the schemas dotted `table:`s name
            if cfg.table and "." in cfg.table:
                with contextlib.suppress(ConfigurationError):
                    out.add(configured_table(cfg.table, schemas)[0] or schemas[0])
    return tuple(sorted(out))


def open_destination(ws: Workspace, name: str) -> Destination:
    return build_destination(name, ws.destination(name), str(ws.root))
