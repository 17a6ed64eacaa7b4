"""Whether a stream's table, built under one write, key and cursor, can continue under new ones.

The state row of each stream records the mode, write, primary key and cursor that built its
table. A change the table cannot follow correctly is rebuilt by a full refresh when the
source still holds everything the table holds, and refused when the table keeps history
the source no longer has (``append`` and ``history`` tables, ``cdc`` deletes).
"""

from __future__ import annotations

from typing import Any

from syncline.engine.plan import StreamPlan
from syncline.errors import TableShapeChanged
from syncline.stream import KEYED_WRITES


def shape_change(state: dict[str, Any] | None, plan: StreamPlan) -> str | None:
    """What changed since the table was built, when it cannot simply continue; else None."""
    if (state is None or "corrupt" in state or state.get("table") != plan.table
            or state.get("table_schema") != plan.table_schema):
        return None
    was_write, was_key = state.get("write"), state.get("primary_key")
    if plan.mode == "full_refresh" and plan.write == "replace" and was_write != "history":
        return None  # every run rebuilds the table anyway
    if was_write is None:
        return None
    if was_write != plan.write and plan.write == "append":
        return f"write: {was_write} built the table and write: append would add every row again"
    if was_write == "append" and plan.write != "append":
        return f"write: append built the table, which holds old versions that write: {plan.write} " \
               "would keep beside the new ones"
    if was_write == "history" and plan.write != "history":
        return f"write: history built the table, which holds old versions that write: " \
               f"{plan.write} would keep as if they were rows"
    if plan.write == "history" and was_write != "history":
        return f"write: {was_write} built the table, which holds no versions to continue with " \
               "write: history"
    if plan.write in KEYED_WRITES and was_key is not None and tuple(was_key) != plan.primary_key:
        return (f"the table was merged on primary key ({', '.join(was_key) or 'none'}) and is now "
                f"merged on ({', '.join(plan.primary_key)})")
    was_cursor = state.get("cursor_field")
    if plan.mode == "incremental" and state.get("mode") == "incremental" and was_cursor != plan.cursor:
        return f"the table was read by cursor {was_cursor} and is now read by cursor {plan.cursor}"
    return None


def continues_history(state: dict[str, Any] | None, plan: StreamPlan) -> bool:
    """A rebuilt history table keeps its versions: the same key under write: history."""
    return plan.write == "history" and state is not None and state.get("write") == "history" \
        and tuple(state.get("primary_key") or ()) == plan.primary_key


def keeps_history(state: dict[str, Any]) -> bool:
    """The table holds rows the source may no longer have: a rebuild would lose them."""
    return state.get("write") in ("append", "history") or state.get("mode") == "cdc"


def check_shape(state: dict[str, Any] | None, plan: StreamPlan, full_refresh: bool,
                connection: str) -> str | None:
    """Why the table must be rebuilt in this run (None: it continues as it is).

    Refuses a change that a rebuild would pay for with history, unless ``--full-refresh``.
    """
    change = shape_change(state, plan)
    if change is None or state is None:
        return None
    if keeps_history(state) and not full_refresh:
        raise TableShapeChanged(
            f"{change}; rebuilding the table from the source would lose the history only the "
            "table holds, so nothing was loaded",
            connection=connection, stream=plan.stream.name,
            fix=f"restore the stream's previous settings, or run `syncline sync {connection} "
            f"--stream {plan.stream.name} --full-refresh` to rebuild the table from what the "
            "source holds now",
        )
    return change
