"""Everything a run refuses before it reads a row, decided in one place.

`sync` runs it at the start of every attempt and `check` runs it instead of reading, so
`check` never says ok for what `sync` refuses a second later: the plan (streams, modes,
cursors, keys, tables), each loaded table's checkpoint and shape (an `append` table is not
turned into a `merge` one), and what the source needs for these reads (privileges, CDC
settings).
"""

from __future__ import annotations

from syncline.config import ConnectionConfig
from syncline.destinations.base import Destination
from syncline.engine.plan import StreamPlan, plan_streams
from syncline.engine.stream_load import unreadable
from syncline.engine.table_shape import check_shape
from syncline.sources.base import Source
from syncline.stream import ReadRequest


def preflight(name: str, conn: ConnectionConfig, source: Source, destination: Destination,
              only: list[str] | None = None, full_refresh: bool = False) -> list[StreamPlan]:
    """The connection's plan, or the ConfigurationError the run would stop on before reading."""
    plans = plan_streams(name, conn, source, destination, only)
    states = destination.all_states(conn.destination_schema or name)
    for plan in plans:
        state = states.get(plan.stream.name)
        unreadable(state, plan, name)
        check_shape(state, plan, full_refresh, name)
    source.preflight([ReadRequest(p.stream, p.mode, p.cursor, p.primary_key) for p in plans])
    return plans
