"""The declarative REST source: streams of JSON records read page by page, checkpointed per page.

The checkpoint of a stream is ``{"cursor": <largest cursor value seen>, "since": <cursor value
this read filters by>, "page": <position of the next page>, "parent": <parent key being read>,
"parents_done": [<parent keys finished>], "done": <read complete>}``. A crashed read resumes at
the page after the last committed one, with the same filter; a complete one starts the next
incremental read at the first page, filtered by the largest cursor seen.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import replace
from typing import Any

import httpx
import pyarrow as pa
from pydantic import BaseModel

from syncline.errors import ConfigurationError
from syncline.records import rows_to_batch
from syncline.schema import STRING, StreamSchema
from syncline.sources.base import Source, SourceContext
from syncline.sources.rest.ahead import ahead
from syncline.sources.rest.client import RestClient, Sleep
from syncline.sources.rest.config import RestConfig, RestStream
from syncline.sources.rest.extract import flatten, format_cursor, later, prepare
from syncline.sources.rest.infer import ShapeTracker, build_schema, kind_of
from syncline.sources.rest.paginate import start
from syncline.sources.rest.walk import Walker
from syncline.stream import BadRecord, Checkpoint, Notice, ReadRequest, SchemaChange, StreamItem


class RestSource(Source):
    config: RestConfig
    incremental_needs_cursor = False  # positions are page tokens and the configured cursor

    def __init__(self, name: str, config: BaseModel, context: SourceContext, *,
                 transport: httpx.BaseTransport | None = None, sleep: Sleep | None = None) -> None:
        super().__init__(name, config, context)
        client_args: dict[str, Any] = {"transport": transport}
        if sleep is not None:
            client_args["sleep"] = sleep
        self.client = RestClient(name, self.config, **client_args)
        self.walker = Walker(name, self.config, self.client)
        self._samples: dict[str, list[tuple[Any, list[Any]]]] = {}
        self._trackers: list[ShapeTracker] = []

    # -- discovery -------------------------------------------------------------------

    def _spec(self, stream: str) -> RestStream:
        if stream not in self.config.streams:
            raise ConfigurationError(f"source '{self.name}' has no stream '{stream}'",
                                     fix=f"use one of: {', '.join(sorted(self.config.streams))}")
        return self.config.streams[stream]

    def _sample(self, stream: str) -> list[tuple[Any, list[Any]]]:
        if stream not in self._samples:
            self._samples[stream] = self.walker.sample(stream)
        return self._samples[stream]

    def request_figures(self, stream: str) -> dict[str, Any] | None:
        figures = self.client.figures.get(stream)
        return figures.to_json() if figures is not None else {"requests": 0}

    def reread(self, stream: StreamSchema) -> tuple[str, float] | None:
        spec = self.config.streams.get(stream.name)
        cursor = spec.cursor if spec is not None else None
        if cursor is None or cursor.format == "raw" or not cursor.lookback_s:
            return None  # raw values are sent back untouched
        return cursor.field, cursor.lookback_s

    def check(self) -> None:
        for name, spec in self.config.streams.items():
            if spec.parent is None:
                self._sample(name)

    def discover(self) -> list[StreamSchema]:
        return [self._describe(name) for name in self.config.streams]

    def _describe(self, name: str) -> StreamSchema:
        spec = self._spec(name)
        records = [self._shape(spec, r, key) for key, page in self._sample(name) for r in page
                   if isinstance(r, dict)]
        extra = {}
        if spec.parent is not None:
            keys = [key for key, _ in self._sample(name)]
            extra[spec.parent.as_] = kind_of(keys[0]) if keys else None
        cursor = spec.cursor.field if spec.cursor else None
        schema = build_schema(name, records, primary_key=spec.primary_key, cursor=cursor,
                              declared=spec.fields, extra=extra)
        seen = {f for r in records for f in r} | set(extra) | set(spec.fields)
        missing = [f for f in (*spec.primary_key, *([cursor] if cursor else [])) if f not in seen]
        if records and missing:
            raise ConfigurationError(
                f"source '{self.name}': field(s) {', '.join(missing)} of primary_key/cursor are in "
                "no record of the sample page", stream=name,
                fix=f"use fields of the records under sources.{self.name}.streams.{name}: "
                    f"{', '.join(sorted(seen))}")
        return schema

    def _shape(self, spec: RestStream, record: dict[str, Any], parent_key: Any) -> dict[str, Any]:
        """A record as columns see it: flattened if asked, with the parent's key added."""
        out = flatten(record) if spec.flatten else dict(record)
        if spec.parent is not None:
            out.setdefault(spec.parent.as_, parent_key)
        return out

    def contract_events(self) -> list[dict[str, Any]]:
        """Record shapes that departed from the discovered schemas during reads, oldest first.

        Each is also yielded when seen: new fields as the grown schema, misfit values as a
        ``Notice``, vanished fields as a schema change that ends the run as a warning.
        """
        return [e for t in self._trackers for e in t.events]

    # -- reading ---------------------------------------------------------------------

    def read(self, request: ReadRequest) -> Iterator[StreamItem]:
        name = request.stream.name
        spec = self._spec(name)
        old = dict(request.checkpoint or {})
        if old.get("done") and request.mode == "full_refresh":
            return  # a build whose reading finished before a crash: nothing is left to read
        resuming = bool(old) and not old.get("done")
        if resuming:
            since = old.get("since")
        elif request.mode == "incremental" and old.get("cursor") is not None:
            since = old["cursor"]
        else:
            since = spec.cursor.initial if spec.cursor else None
        state: dict[str, Any] = {
            "cursor": old.get("cursor") if request.mode == "incremental" else None,
            "since": since, "page": None, "parent": None,
            "parents_done": list(old.get("parents_done") or []) if resuming else [], "done": False,
        }
        done = {json.dumps(k) for k in state["parents_done"]}
        ignore = [spec.parent.as_] if spec.parent else []
        tracker = ShapeTracker(self.name, request.stream, ignore)
        self._trackers.append(tracker)
        number = 0
        # records since the last checkpoint: one commit covers pages up to a batch
        pending = 0
        for key, path in self.walker.paths(name):
            if key is not None and json.dumps(key) in done:
                continue
            resume_here = resuming and old.get("parent") == key and old.get("page") is not None
            position = old["page"] if resume_here else start(spec.pagination)
            for page in ahead(self.walker.pages(name, path, position, since)):
                number += 1
                for item in self._emit(request, spec, page.records, key, state, tracker, number):
                    if isinstance(item, SchemaChange) and item.stream is not None and pending:
                        # the pages before grew under the old schema: committed first
                        yield Checkpoint(_copy(state))
                        pending = 0
                    yield item
                pending += len(page.records) or 1
                if page.warning:
                    yield Notice(page.warning)
                state.update(page=page.next, parent=None if page.next is None else key)
                if page.next is None and key is not None:
                    state["parents_done"].append(key)
                state["done"] = page.next is None and spec.parent is None
                if pending >= request.batch_size or state["done"]:
                    yield Checkpoint(_copy(state))
                    pending = 0
        yield from tracker.finish()
        if not state["done"]:
            state.update(page=None, parent=None, parents_done=[], done=True)
            pending = 1
        if pending:
            yield Checkpoint(_copy(state))

    def _emit(self, request: ReadRequest, spec: RestStream, page: list[Any], key: Any,
              state: dict[str, Any], tracker: ShapeTracker, number: int) -> Iterator[StreamItem]:
        """One page as Arrow batches and bad records, and the cursor's advance.

        New fields grow the schema first, before any row of the page is staged.
        """
        records = [self._shape(spec, raw, key) for raw in page if isinstance(raw, dict)]
        yield from tracker.observe(records, number)
        for raw in page:
            if not isinstance(raw, dict):
                yield BadRecord({"_raw": json.dumps(raw, default=str)},
                                f"a JSON {type(raw).__name__}, not an object")
        stream = tracker.schema
        columns = stream.columns
        if spec.cursor is not None:
            for record in records:
                value = record.get(spec.cursor.field)
                if value is not None and _formattable(value, spec.cursor.format):
                    state["cursor"] = later(state["cursor"], value)
        # JSON columns hold text json.dumps wrote, valid by construction: converting them
        # as plain text skips a validation pass that costs more than the rest of the page.
        as_text = replace(stream, columns=tuple(
            replace(c, type=STRING) if c.type.kind == "json" else c for c in columns))
        arrow_schema = stream.arrow_schema()
        for i in range(0, len(records), request.batch_size):
            rows = [[prepare(r.get(c.name), c.type) for c in columns]
                    for r in records[i:i + request.batch_size]]
            batch, bad = rows_to_batch(rows, as_text)
            yield from bad
            if batch.num_rows:
                yield pa.RecordBatch.from_arrays(batch.columns, schema=arrow_schema)

    def close(self) -> None:
        self.client.close()


def _formattable(value: Any, fmt: str) -> bool:
    """Whether a cursor value can be sent back to the API; others never become the cursor."""
    try:
        format_cursor(value, fmt)
        return True
    except (ValueError, TypeError, OverflowError):
        return False


def _copy(state: dict[str, Any]) -> dict[str, Any]:
    return {**state, "parents_done": list(state["parents_done"])}


__all__ = ["RestConfig", "RestSource"]
