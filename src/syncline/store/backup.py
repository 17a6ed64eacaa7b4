"""A portable copy of a metadata store: every table as JSON lines, restorable into an empty
store on SQLite or PostgreSQL (`syncline store backup FILE` / `restore FILE`).

The first line says what it is and at which schema revision it was taken; each further line
is one row: `{"table": ..., "row": {...}}`, tables in the order their foreign keys need.
Timestamps are ISO 8601 in UTC. A restore refuses a store that already holds anything and
a backup of another schema revision (upgrade the store it came from first).
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterable, Iterator
from typing import Any, TextIO

from sqlalchemy import Connection, Engine, Integer, func, select, text

from syncline.errors import ConfigurationError
from syncline.store.db import current_revision, head_revision
from syncline.store.models import Base, UTCDateTime

FORMAT = "syncline-store-backup"
BATCH = 1000


def _encode(value: Any) -> Any:
    return value.isoformat() if isinstance(value, dt.datetime) else value


def backup(engine: Engine, out: TextIO) -> dict[str, int]:
    """Write every table to `out`; rows per table."""
    tables = Base.metadata.sorted_tables
    counts: dict[str, int] = {}
    with engine.connect() as conn:
        out.write(json.dumps({"format": FORMAT, "version": 1, "schema": current_revision(conn),
                              "tables": [t.name for t in tables]}) + "\n")
        for table in tables:
            counts[table.name] = 0
            for row in conn.execute(select(table).order_by(*table.primary_key.columns)).mappings():
                out.write(json.dumps({"table": table.name, "row": {k: _encode(v) for k, v in row.items()}},
                                     ensure_ascii=False) + "\n")
                counts[table.name] += 1
    return counts


def restore(engine: Engine, lines: Iterable[str]) -> dict[str, int]:
    """Load a backup into an empty store at the same schema revision; rows per table."""
    it = iter(lines)
    header = _header(next(it, ""))
    tables = {t.name: t for t in Base.metadata.sorted_tables}
    counts = dict.fromkeys(tables, 0)
    with engine.begin() as conn:
        if header.get("schema") != head_revision():
            raise ConfigurationError(
                f"the backup is of store schema {header.get('schema')}, this Syncline's is "
                f"{head_revision()}", fix="restore it with the Syncline version that made it, "
                "or upgrade the store it came from (`syncline store upgrade`) and back it up again")
        full = [name for name, t in tables.items()
                if conn.execute(select(func.count()).select_from(t)).scalar_one()]
        if full:
            raise ConfigurationError(f"the metadata store is not empty ({', '.join(full)} hold rows)",
                                     fix="restore into a new, empty store (a new `metadata:` URL)")
        for name, rows in _batches(it, tables):
            conn.execute(tables[name].insert(), [_decode(tables[name], r) for r in rows])
            counts[name] += len(rows)
        if conn.dialect.name == "postgresql":
            _move_sequences(conn)
    return counts


def _header(line: str) -> dict[str, Any]:
    try:
        header = json.loads(line)
    except json.JSONDecodeError:
        header = None
    if not isinstance(header, dict) or header.get("format") != FORMAT:
        raise ConfigurationError("this file is not a Syncline store backup",
                                 fix="give the file `syncline store backup` wrote")
    return header


def _batches(lines: Iterator[str], tables: dict[str, Any]) -> Iterator[tuple[str, list[dict[str, Any]]]]:
    name: str = ""
    rows: list[dict[str, Any]] = []
    for number, line in enumerate(lines, start=2):
        if not line.strip():
            continue
        item = json.loads(line)
        if item.get("table") not in tables:
            raise ConfigurationError(f"line {number} of the backup names no table of the store: "
                                     f"{item.get('table')!r}", fix="give an unedited backup")
        if (item["table"] != name or len(rows) >= BATCH) and rows:
            yield name, rows
            rows = []
        name = item["table"]
        rows.append(item["row"])
    if rows:
        yield name, rows


def _decode(table: Any, row: dict[str, Any]) -> dict[str, Any]:
    out = dict(row)
    for col in table.columns:
        value = out.get(col.name)
        if isinstance(col.type, UTCDateTime) and isinstance(value, str):
            out[col.name] = dt.datetime.fromisoformat(value)
    return out


def _move_sequences(conn: Connection) -> None:
    """Explicit ids do not move PostgreSQL's sequences: move them past the restored rows."""
    for table in Base.metadata.sorted_tables:
        pk = list(table.primary_key.columns)
        if len(pk) == 1 and isinstance(pk[0].type, Integer) and pk[0].autoincrement is True:
            conn.execute(text(f"SELECT setval(pg_get_serial_sequence('{table.name}', '{pk[0].name}'), "
                              f"coalesce((SELECT max({pk[0].name}) FROM {table.name}), 0) + 1, false)"))
