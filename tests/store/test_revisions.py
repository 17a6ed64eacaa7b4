"""Config revisions in the metadata store, on SQLite and PostgreSQL: numbered, hashed, never
edited, and one per distinct document even when several processes apply at once."""

from __future__ import annotations

import multiprocessing
from typing import Any

from syncline.store.store import MetadataStore


def doc(schedule: str) -> dict[str, Any]:
    return {"version": 1, "connections": {"c": {"source": "s", "destination": "d",
                                                "schedule": schedule}}}


def test_each_distinct_document_is_a_new_revision(store_url: str) -> None:
    with MetadataStore(store_url) as store:
        revisions = store.revisions()
        assert revisions.latest() is None
        first, created = revisions.apply(doc("every 1h"), "file:a")
        assert (first.number, created) == (1, True)
        same, created = revisions.apply(doc("every 1h"), "file:a")
        assert (same.number, created, same.digest) == (1, False, first.digest)
        second, _ = revisions.apply(doc("every 5m"), "file:a")
        back, created = revisions.apply(doc("every 1h"), "file:a")  # a revert is a new revision
        assert (second.number, back.number, created, back.digest) == (2, 3, True, first.digest)
        latest = revisions.latest()
        assert latest is not None and latest.document == doc("every 1h")
        old = revisions.get(2)
        assert old is not None and old.document == doc("every 5m") and old.origin == "file:a"


def _apply(url: str, schedule: str, start: Any, out: Any) -> None:
    start.wait()
    with MetadataStore(url) as store:
        out.put(store.revisions().apply(doc(schedule), "file:x")[0].number)


def test_processes_applying_at_once_get_one_number_each(store_url: str) -> None:
    MetadataStore(store_url).close()
    ctx = multiprocessing.get_context("fork")
    start, out = ctx.Event(), ctx.Queue()
    schedules = [f"every {n + 1}m" for n in range(4)]
    procs = [ctx.Process(target=_apply, args=(store_url, s, start, out)) for s in schedules]
    for p in procs:
        p.start()
    start.set()
    numbers = sorted(out.get(timeout=120) for _ in procs)
    for p in procs:
        p.join(60)
        assert p.exitcode == 0
    assert numbers == [1, 2, 3, 4]
    with MetadataStore(store_url) as store:
        assert store.revisions().count() == 4
        got = {store.revisions().get(n).document["connections"]["c"]["schedule"]  # type: ignore[union-attr]
               for n in numbers}
    assert got == set(schedules)
