"""Stream schemas inferred from sample records, and followed page by page as records change."""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import replace
from typing import Any

from syncline.schema import (
    BOOLEAN,
    FLOAT64,
    INT64,
    JSON,
    STRING,
    TIMESTAMP,
    TIMESTAMPTZ,
    Column,
    DataType,
    StreamSchema,
    widen,
)
from syncline.stream import Notice, SchemaChange, StreamItem

_TS = r"^[0-9]{4}-[0-9]{2}-[0-9]{2}[T ][0-9]{2}:[0-9]{2}(:[0-9]{2}(\.[0-9]{1,9})?)?"
_TS_ZONED = re.compile(_TS + r"(Z|[+-][0-9]{2}:?[0-9]{2})$")
_TS_NAIVE = re.compile(_TS + "$")


def kind_of(value: Any, *, naive_timestamps: bool = False) -> DataType | None:
    """Canonical type of one JSON value; None for null.

    APIs rarely mean a zone-less date-time as a timestamp, so ``naive_timestamps`` is
    for files, whose authors often write local or UTC times without a zone.
    """
    if value is None:
        return None
    if isinstance(value, bool):
        return BOOLEAN
    if isinstance(value, int):
        return INT64 if -(2**63) <= value < 2**63 else STRING
    if isinstance(value, float):
        return FLOAT64
    if isinstance(value, str):
        if _TS_ZONED.match(value):
            return TIMESTAMPTZ
        return TIMESTAMP if naive_timestamps and _TS_NAIVE.match(value) else STRING
    return JSON


def merge_type(types: dict[str, DataType | None], name: str, t: DataType | None,
               notes: dict[str, None]) -> None:
    """Widen the type seen so far for ``name`` by ``t``; types that cannot widen become text."""
    old = types.get(name)
    if old is None or t is None:
        types[name] = old or t
        return
    wide = widen(old, t)
    if wide is None:
        notes[f"{name}: mixes {old} and {t}: carried as text"] = None
    types[name] = wide or STRING


def infer_columns(records: Iterable[dict[str, Any]]) -> tuple[dict[str, DataType | None], list[str]]:
    """Field types of sample records, widened across records, with notes on fields that mix types."""
    types: dict[str, DataType | None] = {}
    notes: dict[str, None] = {}
    for record in records:
        for name, value in record.items():
            merge_type(types, name, kind_of(value), notes)
    return types, list(notes)


def build_schema(name: str, records: list[dict[str, Any]], *, primary_key: list[str],
                 cursor: str | None, declared: dict[str, str],
                 extra: dict[str, DataType | None]) -> StreamSchema:
    """The stream's schema: inferred fields, then ``extra`` (e.g. the parent key) and declared types."""
    types, notes = infer_columns(records)
    for field, t in extra.items():
        types[field] = types.get(field) or t
    for field, text in declared.items():
        types[field] = DataType.parse(text)
    for field in (*primary_key, *([cursor] if cursor else [])):
        types.setdefault(field, None)
    if not records:
        notes.append("no records in the sample page: undeclared types guessed as text; "
                     "declare them under `fields:`")
    columns = tuple(Column(f, t or STRING, nullable=f not in primary_key) for f, t in types.items())
    return StreamSchema(name, columns, tuple(primary_key), (cursor,) if cursor else (), tuple(notes))


def misfit(known: DataType, value: Any) -> DataType | None:
    """The type of ``value`` when it is not what a column of type ``known`` used to receive."""
    if value is None:
        return None
    k = known.kind
    if isinstance(value, str):
        if k in ("string", "binary", "date", "time", "timestamp", "decimal"):
            return None  # text, or text a declared type parses (else a bad record follows)
        seen = kind_of(value)
        return None if k == "timestamptz" and seen == TIMESTAMPTZ else seen
    seen = kind_of(value)
    if isinstance(value, bool):
        return None if k == "boolean" else seen
    if isinstance(value, (int, float)):
        if k in ("float64", "decimal") or (k in ("int32", "int64") and isinstance(value, int)):
            return None  # 2 where 2.5 was seen is still a number
        return seen
    return None if k == "json" else seen


class ShapeTracker:
    """Compares the records of each page with the stream's schema, and makes it follow them.

    Fields outside the schema become columns before the page that carries them is loaded
    (a ``SchemaChange`` with the grown schema); values whose type does not fit their
    column are reported as they are seen (a ``Notice``); fields of the schema that no
    record of the read carried, or none after some page, are reported as vanished when
    the read ends (a ``SchemaChange`` without a schema: the run ends as a warning).
    """

    def __init__(self, source: str, schema: StreamSchema, ignore: Iterable[str] = ()) -> None:
        self.source = source
        self.schema = schema
        self.known = {c.name: c.type for c in schema.columns}
        self.ignore = set(ignore)  # fields Syncline adds itself (the parent key)
        self.last_seen: dict[str, int] = {}  # field -> the last page with a record carrying it
        self.events: list[dict[str, Any]] = []
        self._reported: set[tuple[str, str]] = set()
        self._last_page = 0  # the last page with any record

    def observe(self, records: list[dict[str, Any]], page: int) -> list[StreamItem]:
        """What the engine must know before loading this page: new columns, misfit values."""
        told = len(self.events)
        fresh: dict[str, DataType | None] = {}
        for record in records:
            for field, value in record.items():
                self.last_seen[field] = page
                known = self.known.get(field)
                if known is None:
                    merge_type(fresh, field, kind_of(value), {})
                    continue
                seen = misfit(known, value)
                if seen is not None:
                    self._event("type_changed", field, known, seen, page)
        if records:
            self._last_page = page
        items: list[StreamItem] = [Notice(describe(e)) for e in self.events[told:]]
        if fresh:
            items.append(self._grow(fresh, page))
        return items

    def _grow(self, fresh: dict[str, DataType | None], page: int) -> SchemaChange:
        told = len(self.events)
        added = tuple(Column(field, t or STRING) for field, t in fresh.items())
        for column in added:
            self.known[column.name] = column.type
            self._event("new_field", column.name, None, column.type, page)
        self.schema = replace(self.schema, columns=(*self.schema.columns, *added))
        return SchemaChange(tuple(describe(e) for e in self.events[told:]), self.schema)

    def finish(self) -> list[StreamItem]:
        """Fields that stopped arriving: in no record of the read, or none after some page."""
        if not self._last_page:
            return []  # an empty read says nothing about which fields exist
        told = len(self.events)
        for field, t in self.known.items():
            last = self.last_seen.get(field)
            if field not in self.ignore and (last is None or last < self._last_page):
                self._event("vanished_field", field, t, None, last)
        gone = tuple(describe(e) for e in self.events[told:])
        return [SchemaChange(gone)] if gone else []

    def _event(self, change: str, field: str, known: DataType | None, seen: DataType | None,
               page: int | None) -> None:
        if (change, field) in self._reported:
            return
        self._reported.add((change, field))
        self.events.append({
            "source": self.source, "stream": self.schema.name, "change": change, "field": field,
            "known_type": None if known is None else str(known),
            "seen_type": None if seen is None else str(seen), "page": page,
        })


def describe(event: dict[str, Any]) -> str:
    """One contract event as a sentence for the run log and the run's schema changes."""
    field, page = event["field"], event["page"]
    if event["change"] == "new_field":
        return (f"new column {field} {event['seen_type']}: the field first came on page {page}, "
                "outside the discovered schema")
    if event["change"] == "type_changed":
        return (f"field '{field}' holds {event['seen_type']} values on page {page} where the schema "
                f"has {event['known_type']}; values that do not convert are quarantined")
    if page is None:
        return (f"vanished field {field} {event['known_type']}: in no record of this read, so its "
                "column holds null for them")
    return (f"vanished field {field} {event['known_type']}: in no record after page {page}, so its "
            "column holds null for the records after it (renamed or dropped by the API?)")
