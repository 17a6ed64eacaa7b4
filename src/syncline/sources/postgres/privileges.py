"""The relations a PostgreSQL source's user may not read, and the GRANTs that let it."""

from __future__ import annotations

import re

_PLAIN = re.compile(r"^[a-z_][a-z0-9_$]*$")


def quoted(name: str) -> str:
    """An identifier as it must be written in SQL: plain names bare, others double-quoted."""
    return name if _PLAIN.match(name) else '"' + name.replace('"', '""') + '"'


def grants(user: str, schema: str, table: str, usage: bool, select: bool) -> str:
    """The statements that let `user` read schema.table: USAGE on the schema, SELECT on it."""
    out = [] if usage else [f"GRANT USAGE ON SCHEMA {quoted(schema)} TO {quoted(user)};"]
    if not select:
        out.append(f"GRANT SELECT ON {quoted(schema)}.{quoted(table)} TO {quoted(user)};")
    return " ".join(out)
