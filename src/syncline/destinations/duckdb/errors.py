"""DuckDB's errors during a load, sorted into the error tree by what the run should do."""

from __future__ import annotations

from typing import Any

import duckdb

from syncline.destinations.base import LoadTarget
from syncline.errors import DestinationError, TransientError


def classify(exc: duckdb.Error, target: LoadTarget) -> Exception:
    """A DuckDB error of a load as the error tree's: what the run should do about it."""
    text = str(exc)
    where: dict[str, Any] = {"connection": target.connection, "stream": target.stream.name}
    if (isinstance(exc, duckdb.TransactionException) or "conflict" in text.lower()) and "No space left" not in text:
        return TransientError(f"DuckDB transaction conflict: {text}", **where)
    if isinstance(exc, duckdb.IOException) or "No space left" in text:
        return DestinationError(f"DuckDB I/O failure: {text}",
                                fix="check free disk space and permissions of the database file", **where)
    if isinstance(exc, (duckdb.ConversionException, duckdb.InvalidInputException)):
        return DestinationError(f"a value does not fit its destination column: {text}", **where)
    return DestinationError(f"DuckDB failed: {text}", **where)
