"""The event log: read back in order and filtered; the emitter never fails its caller, keeps
what the store cannot take now and writes it, in order, once the store takes events again
(in this process, or from the spool file in the next); a sync whose events cannot be written
still succeeds, and its events appear afterwards."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from sqlalchemy import create_engine, text

from syncline.config import load_workspace
from syncline.engine.run import Runner
from syncline.event_kinds import Event
from syncline.store.store import MetadataStore

from syncfixtures import make_items, write_ws

T0 = dt.datetime(2026, 12, 7, 12, 0, tzinfo=dt.UTC)


def events_table(url: str, away: bool) -> None:
    """Take the events table away (as a store that cannot take events), or bring it back."""
    old, new = ("events", "events_away") if away else ("events_away", "events")
    engine = create_engine(url.replace("postgresql://", "postgresql+psycopg://", 1))
    with engine.begin() as con:
        con.execute(text(f"ALTER TABLE {old} RENAME TO {new}"))
    engine.dispose()


def test_events_read_back_in_order_by_connection_kind_and_time(store_url: str) -> None:
    with MetadataStore(store_url) as store:
        for i, (kind, conn) in enumerate([("run.started", "a"), ("stream.finished", "a"),
                                          ("run.succeeded", "a"), ("run.started", "b"),
                                          ("worker.lost", None)]):
            body = {"trigger": "manual", "revision": 1} if kind == "run.started" else {"k": i}
            store.emitter.emit(Event(kind, body, connection=conn, time=T0 + dt.timedelta(minutes=i)))
        log = store.events()
        assert [e.kind for e in log.read()] == ["run.started", "stream.finished", "run.succeeded",
                                                "run.started", "worker.lost"]
        assert [e.kind for e in log.read(connection="a", kinds=["run."])] == ["run.started", "run.succeeded"]
        assert [e.connection for e in log.read(kinds=["run.started"])] == ["a", "b"]
        assert [e.kind for e in log.read(since=T0 + dt.timedelta(minutes=3))] == ["run.started", "worker.lost"]
        first = log.read()[0]
        assert [e.id for e in log.read(after=first.id)][0] > first.id
        assert first.to_json()["time"] == "2026-12-07T12:00:00Z" and first.severity == "info"


def test_events_the_store_cannot_take_wait_and_are_written_in_order(store_url: str,
                                                                   tmp_path: Path) -> None:
    with MetadataStore(store_url, spool=tmp_path / "spool") as store:
        store.emitter.emit(Event("config.applied", {"revision": 1, "origin": "test"}))
        events_table(store_url, away=True)
        for n in (2, 3):  # neither raises: they wait in the emitter
            store.emitter.emit(Event("config.applied", {"revision": n, "origin": "test"}))
        events_table(store_url, away=False)
        store.emitter.emit(Event("config.applied", {"revision": 4, "origin": "test"}))
        assert [e.body["revision"] for e in store.events().read()] == [1, 2, 3, 4]
        events_table(store_url, away=True)  # away when the process ends: kept in the spool
        store.emitter.emit(Event("config.applied", {"revision": 5, "origin": "test"}))
    assert len(list((tmp_path / "spool").glob("events-spool-*.jsonl"))) == 1
    events_table(store_url, away=False)
    with MetadataStore(store_url, spool=tmp_path / "spool") as again:
        again.emitter.emit(Event("config.applied", {"revision": 6, "origin": "test"}))
        assert [e.body["revision"] for e in again.events().read()] == [1, 2, 3, 4, 5, 6]
    assert list((tmp_path / "spool").glob("events-spool-*")) == []


def test_a_sync_whose_events_cannot_be_written_succeeds_and_they_appear_after(tmp_path: Path) -> None:
    make_items(tmp_path / "src.db", 50)
    root = write_ws(tmp_path, {"items": {"mode": "incremental", "cursor": "updated_at",
                                         "write": "merge"}})
    ws = load_workspace(root)
    url = ws.metadata_url()
    with MetadataStore(url, spool=ws.state_dir):
        pass  # the store made
    events_table(url, away=True)
    with MetadataStore(url, spool=ws.state_dir) as store:
        result = Runner(ws, store).sync("c")
    assert result.status == "succeeded"
    events_table(url, away=False)
    with MetadataStore(url, spool=ws.state_dir) as store:
        store.emitter.flush()
        kinds = [(e.kind, e.run, e.stream) for e in store.events().read()]
    assert kinds == [("run.started", result.run_id, None),
                     ("stream.finished", result.run_id, "items"),
                     ("run.succeeded", result.run_id, None)], kinds
