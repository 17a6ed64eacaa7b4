"""One unresolved incident per key: what recurs joins it (a mitigated one opens again); a new
one opens only once the last is resolved. On each store backend."""

from __future__ import annotations

import datetime as dt

from syncline.store.store import MetadataStore

T0 = dt.datetime(2026, 12, 7, 12, tzinfo=dt.UTC)
DUE = dt.timedelta(days=21)


def test_recurrences_join_the_unresolved_incident_of_their_key(store_url: str) -> None:
    with MetadataStore(store_url) as store:
        box = store.incidents()
        key = "shop/group:a7adf6e8"
        first, new = box.open(title="shop down", severity="error", by="bugbot", now=T0, due=DUE,
                              connection="shop", failure_group="a7adf6e8", dedup_key=key)
        assert new and first.due_at == T0 + DUE
        box.change(first.id, "mitigate", by="bugbot", now=T0 + dt.timedelta(hours=1))
        again, new = box.open(title="shop down", severity="error", by="bugbot",
                              now=T0 + dt.timedelta(hours=2), due=DUE, dedup_key=key,
                              text="failed again (run 42)")
        assert not new and again.id == first.id and again.state == "open"
        assert [e.kind for e in again.timeline] == ["opened", "mitigate", "recurred"]
        other, new = box.open(title="crm down", severity="error", by="bugbot", now=T0, due=DUE,
                              dedup_key="crm/group:a7adf6e8")
        assert new and other.id != first.id
        box.change(first.id, "resolve", by="ann", now=T0 + dt.timedelta(days=1), text="fixed")
        later, new = box.open(title="shop down", severity="error", by="bugbot",
                              now=T0 + dt.timedelta(days=2), due=DUE, dedup_key=key)
        assert new and later.id not in (first.id, other.id)
        assert [i.id for i in box.list()] == [other.id, later.id]  # the earliest due first
