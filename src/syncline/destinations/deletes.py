"""Marking the live rows of keys gone from the source (`deletes: reconcile`), one statement
for the SQL destinations: soft-deleted with their last values, or (history) the current
version closed as deleted."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from syncline.destinations.base import DELETED, IS_CURRENT, SYNCED_AT, VALID_TO


def mark_gone(table: str, gone: str, keys: Sequence[str], quote: Callable[[str], str],
              placeholder: str, history: bool) -> str:
    """UPDATE of ``table`` for the keys in table ``gone``; ``placeholder`` is the time."""
    on = " AND ".join(f"t.{quote(k)} = g.{quote(k)}" for k in keys)
    if history:
        return (f"UPDATE {table} AS t SET {VALID_TO} = {placeholder}, {IS_CURRENT} = false, "
                f"{DELETED} = true FROM {gone} g WHERE t.{IS_CURRENT} AND {on}")
    return (f"UPDATE {table} AS t SET {DELETED} = true, {SYNCED_AT} = {placeholder} "
            f"FROM {gone} g WHERE t.{DELETED} IS NOT TRUE AND {on}")
