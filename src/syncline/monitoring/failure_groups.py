"""Failures grouped by root cause, like Sentry issues: one line for the same API change failing
twelve connections, not twelve. The signature of a failure is failure_signature.py's."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass, field

from syncline import runbooks
from syncline.failure_signature import Signature, fix_of, remembered, signature
from syncline.store.store import MetadataStore


@dataclass(frozen=True)
class Failure:
    """One failed attempt, as the store keeps it."""

    run: int
    connection: str
    at: dt.datetime
    failure_class: str
    message: str


@dataclass
class Group:
    signature: Signature
    first_seen: dt.datetime
    last_seen: dt.datetime
    count: int = 0
    connections: set[str] = field(default_factory=set)
    sample_run: int = 0
    sample: str = ""
    fix: str | None = None

    def to_json(self) -> dict[str, object]:
        return {"group": self.signature.key, "failure_class": self.signature.failure_class,
                "origin": self.signature.origin, "error_type": self.signature.error_type,
                "pattern": self.signature.pattern, "first_seen": _iso(self.first_seen),
                "last_seen": _iso(self.last_seen), "count": self.count,
                "connections": sorted(self.connections), "sample_run": self.sample_run,
                "sample": self.sample, "fix": self.fix,
                "runbook": runbooks.for_failure(self.signature.failure_class)}


def group(failures: Iterable[Failure]) -> list[Group]:
    """Failures by signature: the groups touching most connections first, then the most
    frequent; each with its newest failure as the sample."""
    groups: dict[Signature, Group] = {}
    seen: set[tuple[int, str]] = set()
    for f in failures:
        if (f.run, f.message) in seen:  # a stream's failure that also failed its attempt
            continue
        seen.add((f.run, f.message))
        sig = remembered(f.failure_class, f.message)
        g = groups.get(sig)
        if g is None:
            g = groups[sig] = Group(sig, f.at, f.at)
        g.count += 1
        g.connections.add(f.connection)
        g.first_seen = min(g.first_seen, f.at)
        if f.at >= g.last_seen or not g.sample:
            g.last_seen, g.sample_run = max(g.last_seen, f.at), f.run
            g.sample, g.fix = f.message.split("\n  fix:", 1)[0], fix_of(f.message)
    return sorted(groups.values(), key=lambda g: (-len(g.connections), -g.count, g.signature.key))


def collect(store: MetadataStore, since: dt.datetime) -> list[Group]:
    """The groups of every failure since `since`: those kept with their signature grouped by
    the database, those recorded before signatures were grouped here, then merged."""
    groups = {g.signature.key: g for g in group(Failure(*row) for row in store.failures(since))}
    for key, runs, first, last, newest, connections, cls, message in store.failure_groups(since):
        sig = signature(cls, message)
        found = groups.get(key) or groups.get(sig.key)
        if found is None:
            groups[key] = Group(sig, first, last, runs, set(connections), newest,
                                message.split("\n  fix:", 1)[0], fix_of(message))
            continue
        found.count += runs
        found.connections.update(connections)
        found.first_seen = min(found.first_seen, first)
        if last >= found.last_seen:
            found.last_seen, found.sample_run = last, newest
            found.sample, found.fix = message.split("\n  fix:", 1)[0], fix_of(message)
    return sorted(groups.values(), key=lambda g: (-len(g.connections), -g.count, g.signature.key))


def _iso(moment: dt.datetime) -> str:
    return moment.astimezone(dt.UTC).isoformat().replace("+00:00", "Z")
