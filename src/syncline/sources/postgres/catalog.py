"""What a PostgreSQL source offers: the relations to list, and each one's stream schema."""

from __future__ import annotations

from typing import Any

from syncline.schema import Column, StreamSchema
from syncline.sources.postgres.types import PgType, cursor_candidates, formerly, map_pg_type

SYSTEM_SCHEMAS = "n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname !~ '^pg_(toast|temp_)'"
# Syncline's own tables, and every table of the workspace's destination schemas (a parameter),
# are never streams: a destination inside the source database must not be read back.
OWN_TABLES = ("c.relname NOT LIKE '\\_syncline\\_%%' AND c.relname NOT LIKE '%%\\_\\_syncline\\_building' "
              "AND NOT n.nspname = ANY(%s)")
# Without `schemas:`, a schema holding `_syncline_state` is some connection's destination.
NOT_OURS = ("NOT EXISTS (SELECT 1 FROM pg_class s WHERE s.relnamespace = n.oid "
            "AND s.relname = '_syncline_state')")


def describe(name: str, columns: list[tuple[Any, ...]], pk: list[str]) -> StreamSchema:
    """A relation's stream schema from its rows of `COLUMNS_SQL` and its primary key."""
    cols, notes, serial = [], [], set()
    for (attname, notnull, declared, typname, typtype, category, typmod, is_serial,
         elem_name, elem_typtype, elem_category, dims) in columns:
        element = PgType(elem_name, elem_typtype, elem_category, typmod) if elem_name else None
        dtype, note = map_pg_type(PgType(typname, typtype, category, typmod, element, dims), declared)
        if note:
            notes.append(f"{attname}: {note}")
        cols.append(Column(attname, dtype, nullable=not notnull, native_type=declared,
                           formerly=formerly(dtype)))
        if is_serial:
            serial.add(attname)
    return StreamSchema(name=name, columns=tuple(cols), primary_key=tuple(pk),
                        cursor_candidates=cursor_candidates(cols, serial), notes=tuple(notes))


# Domains resolve to their base type (through domains of domains), keeping the type
# modifier set along the way, so a domain over numeric(10,2) maps like numeric(10,2).
COLUMNS_SQL = """
WITH RECURSIVE chain(start, oid, typmod) AS (
    SELECT t.oid, t.oid, -1 FROM pg_type t
    WHERE t.oid IN (SELECT atttypid FROM pg_attribute WHERE attrelid = ANY(%s))
  UNION ALL
    SELECT ch.start, t.typbasetype, CASE WHEN ch.typmod <> -1 THEN ch.typmod ELSE t.typtypmod END
    FROM chain ch JOIN pg_type t ON t.oid = ch.oid WHERE t.typtype = 'd'
)
SELECT a.attrelid, a.attname, a.attnotnull, format_type(a.atttypid, a.atttypmod),
       b.typname, b.typtype, b.typcategory,
       CASE WHEN a.atttypmod <> -1 THEN a.atttypmod ELSE ch.typmod END,
       (a.attidentity <> '' OR coalesce(pg_get_expr(d.adbin, d.adrelid) LIKE 'nextval(%%', false)),
       e.typname, e.typtype, e.typcategory, a.attndims
FROM pg_attribute a
JOIN chain ch ON ch.start = a.atttypid
JOIN pg_type b ON b.oid = ch.oid AND b.typtype <> 'd'
LEFT JOIN pg_type e ON e.oid = b.typelem AND b.typcategory = 'A'
LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
WHERE a.attrelid = ANY(%s) AND a.attnum > 0 AND NOT a.attisdropped
ORDER BY a.attrelid, a.attnum
"""

PRIMARY_KEYS_SQL = """
SELECT i.indrelid, a.attname
FROM pg_index i
CROSS JOIN LATERAL unnest(i.indkey) WITH ORDINALITY AS k(attnum, ord)
JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum
WHERE i.indisprimary AND i.indrelid = ANY(%s)
ORDER BY i.indrelid, k.ord
"""
