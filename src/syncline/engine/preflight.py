"""Everything a run refuses before it reads a row, decided in one place.

`sync` runs it at the start of every attempt and `check` runs it instead of reading, so
`check` never says ok for what `sync` refuses a second later: the plan (streams, modes,
cursors, keys, tables), each loaded table's checkpoint and shape (an `append` table is not
turned into a `merge` one), and what the source needs for these reads (privileges, CDC
settings). A stream refused here fails alone: the others run.
"""

from __future__ import annotations

from syncline.config import ConnectionConfig
from syncline.destinations.base import Destination
from syncline.engine.plan import Planned, StreamPlan, plan_streams
from syncline.engine.stream_load import unreadable
from syncline.engine.table_shape import check_shape
from syncline.errors import ConfigurationError
from syncline.sources.base import Source
from syncline.stream import ReadRequest


def preflight(name: str, conn: ConnectionConfig, source: Source, destination: Destination,
              only: list[str] | None = None, full_refresh: bool = False) -> Planned:
    """The connection's plan: the streams that can run, and the ones refused with why."""
    planned = plan_streams(name, conn, source, destination, only)
    ready = Planned([], dict(planned.refused), dict(planned.orphaned), planned.states)
    for plan in planned.plans:
        try:
            state = planned.states.get(plan.stream.name)
            unreadable(state, plan, name)
            check_shape(state, plan, full_refresh, name)
        except ConfigurationError as exc:
            exc.at(connection=name, stream=plan.stream.name)
            ready.refused[plan.stream.name] = exc
            continue
        ready.plans.append(plan)
    try:  # what the source needs for these reads, asked once; stream by stream only to say whose
        if ready.plans:
            source.preflight([_request(p) for p in ready.plans])
    except ConfigurationError:
        for plan in list(ready.plans):
            try:
                source.preflight([_request(plan)])
            except ConfigurationError as exc:
                exc.at(connection=name, stream=plan.stream.name)
                ready.refused[plan.stream.name] = exc
                ready.plans.remove(plan)
    return ready


def _request(plan: StreamPlan) -> ReadRequest:
    return ReadRequest(plan.stream, plan.mode, plan.cursor, plan.primary_key)
