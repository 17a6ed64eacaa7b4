"""A stream the source's user may not read is refused as a missing privilege, with the
statements that grant it, never as a table that does not exist."""

from __future__ import annotations

from collections.abc import Mapping

from syncline.errors import ConfigurationError


def denied(source: str, streams: list[str], grants: Mapping[str, str],
           connection: str | None = None) -> ConfigurationError:
    """The error for `streams` of `source` its user may not read; `grants` maps each stream to
    the statements (each ending in ';') that let it, as `Source.unreadable` gives them."""
    statements = dict.fromkeys(f"{g.strip()};" for s in streams for g in grants[s].split(";") if g.strip())
    shown = ", ".join(streams[:10]) + (f" and {len(streams) - 10} more" if len(streams) > 10 else "")
    return ConfigurationError(
        f"permission denied: the user of source '{source}' may not read {shown}",
        connection=connection,
        fix="as the tables' owner or an administrator, run: " + " ".join(statements))
