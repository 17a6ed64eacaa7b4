"""Applying the workspace file as a config revision, and the plan of what that changes.

The plan compares the file's document with the newest revision's, section by section:
a source, destination or connection added, removed, or changed (naming the keys that
changed, never their values: a key may hold a secret). Runs, pauses and checkpoints are
not part of a revision, so applying never touches them.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from syncline.config import Workspace, read_document, workspace_from_document
from syncline.store.revisions import Revision, digest
from syncline.store.store import MetadataStore

SECTIONS = ("sources", "destinations", "connections")


@dataclass(frozen=True)
class Change:
    change: str  # added | removed | changed
    path: str  # e.g. "connections.shop" or "metadata"
    keys: tuple[str, ...] = ()  # for `changed`: the key paths inside it that differ

    def to_json(self) -> dict[str, Any]:
        return {"change": self.change, "path": self.path, "keys": list(self.keys)}


@dataclass(frozen=True)
class Plan:
    current: Revision | None
    document: dict[str, Any]
    digest: str
    changes: tuple[Change, ...]

    @property
    def differs(self) -> bool:
        return self.current is None or self.current.digest != self.digest


def plan(document: dict[str, Any], current: Revision | None) -> Plan:
    old = current.document if current is not None else {}
    return Plan(current, document, digest(document), tuple(changes(old, document)))


def changes(old: dict[str, Any], new: dict[str, Any]) -> list[Change]:
    found: list[Change] = []
    for key in sorted(set(old) | set(new), key=lambda k: (k in SECTIONS, str(k))):
        if key in SECTIONS:
            before, after = old.get(key) or {}, new.get(key) or {}
            if isinstance(before, dict) and isinstance(after, dict):
                for name in sorted(set(before) | set(after)):
                    path = f"{key}.{name}"
                    if name not in before:
                        found.append(Change("added", path))
                    elif name not in after:
                        found.append(Change("removed", path))
                    elif before[name] != after[name]:
                        found.append(Change("changed", path, tuple(_differing(before[name], after[name]))))
                continue
        if old.get(key) != new.get(key):
            found.append(Change("added" if key not in old else "removed" if key not in new
                                else "changed", str(key)))
    return found


def _differing(a: Any, b: Any, prefix: str = "") -> list[str]:
    if isinstance(a, dict) and isinstance(b, dict):
        out: list[str] = []
        for k in sorted(set(a) | set(b), key=str):
            if a.get(k) != b.get(k):
                out += _differing(a.get(k), b.get(k), f"{prefix}{k}.") if k in a and k in b \
                    else [f"{prefix}{k}"]
        return out
    return [prefix.rstrip(".") or "(value)"]


def apply_file(ws: Workspace, store: MetadataStore) -> tuple[Plan, Revision]:
    """Apply the workspace's file (already validated into `ws`): its plan, and the revision
    that now holds it (the current one when nothing changed)."""
    document = read_document(ws.file)
    revisions = store.revisions()
    found = plan(document, revisions.latest())
    revision, _created = revisions.apply(document, origin=f"file:{ws.file}")
    return found, revision


def revision_workspace(ws: Workspace, revision: Revision) -> Workspace:
    """The workspace a run uses: the revision's document, its variables resolved here."""
    return workspace_from_document(revision.document, root=ws.root, file=Path(ws.file))
