#!/usr/bin/env python3
"""A tiny Singer tap for tests: numbered records, STATE every N, and faults on demand.

Settings (its --config): ``records`` (how many items, default 10), ``rows`` (explicit item
records instead), ``state_every`` (default 0: one STATE at the end), ``fail_after`` (die
with ``exit_code`` after this many records of this invocation), ``kill_self_after`` (die by
SIGKILL instead), ``malformed_after`` and ``malformed`` (print that line after N records),
``hang_after`` (print N records and a STATE, then sleep), ``noise`` (also print records of
the unselected stream ``other``), ``batch`` (print a BATCH message), ``full_table`` (behave like a
full-table tap: its STATE carries no position, and every read starts at the first record
whatever --state says), ``log`` (a file where each invocation appends its argv, pid,
catalog, state and FAKE_TAP_MARK, and
``{"hanging": pid}`` once it sleeps).
"""

from __future__ import annotations

import json
import os
import signal
import sys
import time
from typing import Any

NAMES = ["Zoë Ångström", "東京", None, "emoji 🎉", 'quote "x"', "plain"]

ITEMS_SCHEMA = {
    "type": "object",
    "properties": {
        "id": {"type": "integer"},
        "name": {"type": ["null", "string"]},
        "amount": {"type": ["null", "number"], "multipleOf": 0.01},
        "ratio": {"type": ["null", "number"]},
        "active": {"type": ["null", "boolean"]},
        "meta": {"type": ["null", "object"], "properties": {}},
        "born": {"type": ["null", "string"], "format": "date"},
        "updated": {"type": ["null", "string"], "format": "date-time"},
    },
}

CATALOG = {"streams": [
    {"tap_stream_id": "items", "stream": "items", "schema": ITEMS_SCHEMA, "key_properties": ["id"],
     "metadata": [{"breadcrumb": [], "metadata": {"table-key-properties": ["id"],
                                                  "valid-replication-keys": ["updated"]}}]},
    {"tap_stream_id": "other", "stream": "other", "key_properties": [],
     "schema": {"type": "object", "properties": {"k": {"type": "integer"}}}, "metadata": []},
]}


def item(i: int) -> dict[str, Any]:
    return {
        "id": i,
        "name": NAMES[i % len(NAMES)],
        "amount": None if i % 5 == 0 else round(i * 1.1, 2),
        "ratio": None if i % 7 == 0 else i / 3,
        "active": None if i % 4 == 0 else bool(i % 2),
        "meta": None if i % 6 == 0 else {"k": i, "tags": ["a", "ü"]},
        "born": f"2000-01-{1 + i % 28:02d}",
        "updated": f"2026-01-01T00:00:{i % 60:02d}+00:00",
    }


def emit(message: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(message) + "\n")


def load(path: str | None) -> Any:
    if path is None:
        return None
    with open(path, encoding="utf-8") as f:
        return json.load(f)


def selected(catalog: dict[str, Any], name: str) -> bool:
    for entry in catalog["streams"]:
        if entry["tap_stream_id"] == name:
            top = [m["metadata"] for m in entry.get("metadata", []) if m["breadcrumb"] == []]
            return bool(top and top[0].get("selected"))
    return False


class OperationalError(Exception):
    """A database driver's error, as a real tap's driver raises it."""


def connect(database: str) -> None:
    raise OperationalError(f'connection to server at "127.0.0.1", port 5432 failed: FATAL:  '
                           f'database "{database}" does not exist')


def main(argv: list[str]) -> int:
    opts = {a: argv[i + 1] for i, a in enumerate(argv[:-1]) if a.startswith("--")}
    cfg = load(opts["--config"])
    catalog = load(opts.get("--catalog") or opts.get("--properties"))
    state = load(opts.get("--state")) or {}
    if cfg.get("log"):
        with open(cfg["log"], "a", encoding="utf-8") as f:
            f.write(json.dumps({"argv": argv, "pid": os.getpid(), "catalog": catalog, "state": state,
                                "mark": os.environ.get("FAKE_TAP_MARK")}) + "\n")
    if cfg.get("database", "test") != "test":  # as a database tap fails on a wrong setting
        print("fake-tap | INFO | connecting", file=sys.stderr)
        connect(cfg["database"])
    if "--discover" in argv:
        print(json.dumps(CATALOG, indent=2))
        return 0
    rows = cfg.get("rows") or [item(i) for i in range(cfg.get("records", 10))]
    bookmarks = dict(state.get("bookmarks", {}))
    full_table = bool(cfg.get("full_table"))
    start = 0 if full_table else int(bookmarks.get("items", {}).get("offset", 0))
    every = cfg.get("state_every", 0)

    def mark(offset: int) -> None:
        if full_table:  # the shape of a full-table tap's STATE: where it is, never how far
            emit({"type": "STATE", "value": {"currently_syncing": "items",
                                             "bookmarks": {"items": {"version": 1}}}})
        else:
            bookmarks["items"] = {"offset": offset}
            emit({"type": "STATE", "value": {"bookmarks": bookmarks}})

    emit({"type": "SCHEMA", "stream": "items", "schema": ITEMS_SCHEMA, "key_properties": ["id"]})
    emit({"type": "ACTIVATE_VERSION", "stream": "items", "version": 1})
    if cfg.get("batch"):
        emit({"type": "BATCH", "stream": "items", "encoding": {"format": "jsonl"}, "manifest": []})
    if not selected(catalog, "items"):
        rows = []
    for n, offset in enumerate(range(start, len(rows)), start=1):
        emit({"type": "RECORD", "stream": "items", "record": rows[offset]})
        if cfg.get("noise"):
            emit({"type": "RECORD", "stream": "other", "record": {"k": offset}})
        if every and (offset + 1) % every == 0:
            mark(offset + 1)
        if n == cfg.get("malformed_after"):
            sys.stdout.write(cfg.get("malformed", "this is {not json") + "\n")
        if n == cfg.get("fail_after"):
            sys.stdout.flush()
            print(f"fake-tap: lost the connection to the API after {n} records", file=sys.stderr)
            return int(cfg.get("exit_code", 1))
        if n == cfg.get("kill_self_after"):
            sys.stdout.flush()
            os.kill(os.getpid(), signal.SIGKILL)
        if n == cfg.get("hang_after"):
            mark(offset + 1)
            sys.stdout.flush()
            if cfg.get("log"):  # said once everything is written: only a signal ends it now
                with open(cfg["log"], "a", encoding="utf-8") as f:
                    f.write(json.dumps({"hanging": os.getpid()}) + "\n")
            time.sleep(60)
    mark(len(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
