"""`write: history` on DuckDB: running the shared statements (destinations/history.py)."""

from __future__ import annotations

from typing import Any

import duckdb

from syncline.destinations.history import Steps


def run(con: duckdb.DuckDBPyConnection, steps: Steps, *params: Any) -> tuple[int, list[int], int]:
    """(changes that count, versions closed by each close statement, versions added)."""
    for sql in steps.prepare:
        con.execute(sql)
    counted = int(con.execute(steps.counted).fetchall()[0][0])
    closed = [int(con.execute(sql, list(params) if "?" in sql else []).fetchall()[0][0])
              for sql in steps.close]
    added = int(con.execute(steps.insert).fetchall()[0][0])
    for sql in steps.cleanup:
        con.execute(sql)
    return counted, closed, added
