"""Regions: where a connection's runs may run.

Sources and destinations take `region:`, as connections do. A connection's region is its
own `region:`, else the region its source and destination share (or the one of them that
names one), else `default`. A connection whose source and destination name different
regions and that sets none, or whose `region:` differs from one they name, is a
configuration error naming both. Its runs go only to workers of that region: in
distributed mode each region is a Celery queue, `syncline.<region>`.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from syncline.errors import ConfigurationError

DEFAULT = "default"
QUEUE_PREFIX = "syncline."
_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]{0,62}$")


RULE = "a region is lowercase letters, digits, - and _ (at most 63, e.g. eu or us-east)"


def valid(value: Any) -> bool:
    return isinstance(value, str) and bool(_NAME.match(value))


def check(value: Any, where: str) -> str:
    """A region name as written at `where`, or the error saying what one looks like."""
    if not valid(value):
        raise ConfigurationError(f"{where}: got {value!r}; {RULE}", fix="name the region like that")
    return str(value)


def queue_of(region: str) -> str:
    """The Celery queue of a region's runs."""
    return f"{QUEUE_PREFIX}{region}"


def of_queue(queue: str) -> str:
    """The region a Celery queue serves, or the error saying a queue is `syncline.<region>`."""
    if not queue.startswith(QUEUE_PREFIX):
        raise ConfigurationError(f"--queues: {queue!r} is not a region's queue",
                                 fix=f"name queues {QUEUE_PREFIX}<region>, e.g. {queue_of('eu')}")
    return check(queue.removeprefix(QUEUE_PREFIX), f"--queues: {queue}")


def connection_regions(document: Mapping[str, Any], file: str = "syncline.yaml") -> dict[str, str]:
    """Each connection's region from a workspace document (as written, or as a revision
    holds it)."""
    named: dict[tuple[str, str], str] = {}
    for section in ("sources", "destinations"):
        for name, cfg in (document.get(section) or {}).items():
            if isinstance(cfg, Mapping) and cfg.get("region") is not None:
                named[(section, name)] = check(cfg["region"], f"{file}: {section}.{name}.region")
    out: dict[str, str] = {}
    for name, conn in (document.get("connections") or {}).items():
        if not isinstance(conn, Mapping):
            continue
        ends = {f"{section}.{conn.get(key)}": named[(section, str(conn.get(key)))]
                for section, key in (("sources", "source"), ("destinations", "destination"))
                if (section, str(conn.get(key))) in named}
        own = conn.get("region")
        if own is not None:
            own = check(own, f"{file}: connections.{name}.region")
            clash = {where: r for where, r in ends.items() if r != own}
            if clash:
                where, theirs = next(iter(clash.items()))
                raise ConfigurationError(
                    f"{file}: connections.{name}.region is {own!r} but {where}.region is "
                    f"{theirs!r}: its runs would carry data out of {theirs!r}",
                    fix="give them the same region, or take `region:` off the connection")
            out[name] = own
        elif len(set(ends.values())) > 1:
            (a, ra), (b, rb) = ends.items()
            raise ConfigurationError(
                f"{file}: connections.{name}: {a}.region is {ra!r} but {b}.region is {rb!r}",
                fix=f"set connections.{name}.region to the region its runs may run in, and check "
                    "that moving the data there is allowed")
        else:
            out[name] = next(iter(ends.values()), DEFAULT)
    return out
