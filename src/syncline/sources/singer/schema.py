"""The Singer protocol, pure: catalogs to stream schemas, stream selection, records to batches."""

from __future__ import annotations

import copy
import decimal
import json
import math
import time
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from syncline.errors import SourceError
from syncline.records import rows_to_batch
from syncline.schema import (
    BOOLEAN,
    DATE,
    FLOAT64,
    INT64,
    JSON,
    MAX_DECIMAL_PRECISION,
    STRING,
    TIME,
    TIMESTAMPTZ,
    Column,
    DataType,
    StreamSchema,
    widen,
)
from syncline.stream import Checkpoint, Notice, StreamItem

# STATE messages closer together than this share one commit (a tap may send one per record).
COMMIT_EVERY_S = 5.0

_FORMATS = {"date-time": TIMESTAMPTZ, "date": DATE, "time": TIME}


def stream_id(entry: dict[str, Any]) -> str:
    """The name Syncline gives a catalog entry: its ``tap_stream_id`` (else its ``stream``)."""
    return str(entry.get("tap_stream_id") or entry.get("stream") or "")


def metadata_map(entry: dict[str, Any]) -> dict[tuple[str, ...], dict[str, Any]]:
    """A catalog entry's metadata by breadcrumb; ``()`` is the stream itself."""
    out: dict[tuple[str, ...], dict[str, Any]] = {}
    for item in entry.get("metadata") or []:
        if isinstance(item, dict) and isinstance(item.get("metadata"), dict):
            out[tuple(str(b) for b in item.get("breadcrumb") or [])] = item["metadata"]
    return out


def map_type(schema: Any) -> tuple[DataType, bool, str | None]:
    """Canonical type of a JSON Schema, whether it admits null, and a note when it is a guess."""
    if not isinstance(schema, dict) or not schema:
        return JSON, True, "no type declared: carried as JSON"
    for word in ("anyOf", "oneOf"):
        if isinstance(schema.get(word), list):
            return _map_union(word, schema[word])
    raw = schema.get("type")
    if raw is None:
        shaped = "properties" in schema or "items" in schema  # an object or array all the same
        return JSON, True, None if shaped else "no type declared: carried as JSON"
    names = [raw] if isinstance(raw, str) else [str(t) for t in raw] if isinstance(raw, list) else []
    nullable = "null" in names or not names
    kinds = [t for t in names if t != "null"]
    if not kinds:
        return STRING, True, "only null is allowed: carried as text"
    types = [_simple(k, schema) for k in dict.fromkeys(kinds)]
    result: DataType | None = types[0]
    for t in types[1:]:
        result = None if result is None else widen(result, t)
    if result is None:
        return STRING, nullable, f"mixes {' and '.join(kinds)}: carried as text"
    return result, nullable, None


def _map_union(word: str, options: list[Any]) -> tuple[DataType, bool, str | None]:
    nullable, result, mixed = False, None, False
    for option in options:
        if isinstance(option, dict) and option.get("type") == "null":
            nullable = True
            continue
        t, opt_null, _ = map_type(option)
        nullable = nullable or opt_null
        if result is None:
            result = t
            continue
        wide = widen(result, t)
        mixed = mixed or wide is None
        result = wide or STRING
    if result is None:
        return STRING, True, f"{word} allows only null: carried as text"
    return result, nullable, f"{word} of types that do not widen: carried as text" if mixed else None


def _simple(kind: str, schema: dict[str, Any]) -> DataType:
    if kind == "integer":
        return INT64
    if kind == "number":
        return _decimal(schema) or FLOAT64
    if kind == "boolean":
        return BOOLEAN
    if kind == "string":
        return _FORMATS.get(str(schema.get("format")), STRING)
    if kind in ("object", "array"):
        return JSON
    return STRING


def _decimal(schema: dict[str, Any]) -> DataType | None:
    """decimal(p, s) for ``multipleOf: 10^-s``, the kind of number SQL taps describe NUMERIC with."""
    step = schema.get("multipleOf")
    if isinstance(step, bool) or not isinstance(step, (int, float)):
        return None
    exact = decimal.Decimal(repr(step)).normalize()
    digits, exponent = exact.as_tuple().digits, exact.as_tuple().exponent
    if digits != (1,) or not isinstance(exponent, int) or exponent > 0:
        return None
    scale = -exponent
    if scale > MAX_DECIMAL_PRECISION:
        return None
    bounds = [abs(v) for k in ("maximum", "minimum", "exclusiveMaximum", "exclusiveMinimum")
              if isinstance(v := schema.get(k), (int, float)) and not isinstance(v, bool)]
    if not bounds or max(bounds) < 1:
        return DataType("decimal", MAX_DECIMAL_PRECISION, scale)
    bound = max(bounds)
    whole = math.floor(math.log10(bound)) + 1
    if schema.get("exclusiveMaximum") is True and 10 ** (whole - 1) == bound:
        whole -= 1  # tap-postgres: numeric(p, s) is maximum 10^(p-s), exclusive
    return DataType("decimal", min(MAX_DECIMAL_PRECISION, whole + scale), scale)


def catalog_schema(entry: dict[str, Any]) -> StreamSchema:
    """The stream schema of one catalog entry: columns, key and replication keys."""
    name = stream_id(entry)
    meta = metadata_map(entry).get((), {})
    schema = entry.get("schema") if isinstance(entry.get("schema"), dict) else {}
    props = schema.get("properties") if isinstance(schema, dict) else None
    columns: list[Column] = []
    notes: list[str] = []
    for field, sub in (props or {}).items():
        t, nullable, note = map_type(sub)
        native = sub.get("type") if isinstance(sub, dict) else None
        columns.append(Column(str(field), t, nullable, None if native is None else _native(sub)))
        if note:
            notes.append(f"{field}: {note}")
    key = entry.get("key_properties") or meta.get("table-key-properties") or []
    cursors = list(meta.get("valid-replication-keys") or [])
    legacy = entry.get("replication_key")
    if isinstance(legacy, str) and legacy not in cursors:
        cursors.append(legacy)
    known = {c.name for c in columns}
    missing = [k for k in key if k not in known]
    if missing:
        notes.append(f"key {', '.join(missing)} is not a property of the schema: no primary key")
        key = []
    return StreamSchema(name, tuple(columns), tuple(str(k) for k in key),
                        tuple(str(c) for c in cursors if c in known), tuple(notes))


def _native(schema: dict[str, Any]) -> str:
    """The JSON Schema type as text, for `syncline discover` to show beside the canonical one."""
    raw = schema.get("type")
    text = raw if isinstance(raw, str) else "|".join(str(t) for t in raw) if isinstance(raw, list) else "?"
    fmt = schema.get("format")
    return f"{text} ({fmt})" if fmt else text


def select_stream(catalog: dict[str, Any], name: str, *, incremental: bool,
                  cursor: str | None) -> dict[str, Any]:
    """A copy of the catalog with only stream ``name`` and all its properties selected.

    A replication method is filled in only where the catalog has none, since SQL taps
    (pipelinewise and kin) refuse a selected stream without one.
    """
    out = copy.deepcopy(catalog)
    for entry in out.get("streams") or []:
        if not isinstance(entry, dict):
            continue
        chosen = stream_id(entry) == name
        if not isinstance(entry.get("metadata"), list):
            entry["metadata"] = []
        top = _meta_entry(entry["metadata"], [])
        top["selected"] = chosen
        if not chosen:
            continue
        schema = entry.get("schema") if isinstance(entry.get("schema"), dict) else {}
        for prop in (schema.get("properties") or {}) if isinstance(schema, dict) else {}:
            _meta_entry(entry["metadata"], ["properties", prop])["selected"] = True
        keys = list(top.get("valid-replication-keys") or [])
        if cursor is not None:
            top["replication-key"] = cursor
        if "replication-method" not in top:
            forced = top.get("forced-replication-method")
            wants_cursor = incremental and (cursor is not None or bool(keys))
            top["replication-method"] = forced or ("INCREMENTAL" if wants_cursor else "FULL_TABLE")
            if top["replication-method"] == "INCREMENTAL" and "replication-key" not in top and keys:
                top["replication-key"] = keys[0]
    return out


def _meta_entry(metadata: list[Any], breadcrumb: list[str]) -> dict[str, Any]:
    for item in metadata:
        if isinstance(item, dict) and list(item.get("breadcrumb") or []) == breadcrumb:
            if not isinstance(item.get("metadata"), dict):
                item["metadata"] = {}
            found: dict[str, Any] = item["metadata"]
            return found
    fresh: dict[str, Any] = {}
    metadata.append({"breadcrumb": breadcrumb, "metadata": fresh})
    return fresh


class Batcher:
    """Rows of one stream in batches; a STATE is committed with exactly the rows before it."""

    def __init__(self, stream: StreamSchema, size: int) -> None:
        self.stream, self.size = stream, size
        self.rows: list[list[Any]] = []
        self.covered = 0  # rows before the pending STATE
        self.state: dict[str, Any] | None = None

    @property
    def pending(self) -> bool:
        return self.state is not None

    def mark(self, state: dict[str, Any]) -> None:
        self.state, self.covered = state, len(self.rows)

    def add(self, row: list[Any]) -> Iterator[StreamItem]:
        self.rows.append(row)
        if len(self.rows) >= self.size:
            yield from self.commit()
            if len(self.rows) >= self.size:  # no STATE yet: staged, committed by a later one
                yield from self.flush()

    def commit(self) -> Iterator[StreamItem]:
        if self.state is None:
            return
        covered, self.rows = self.rows[:self.covered], self.rows[self.covered:]
        yield from self._emit(covered)
        yield Checkpoint({"singer_state": self.state})
        self.state, self.covered = None, 0

    def flush(self) -> Iterator[StreamItem]:
        rows, self.rows, self.covered = self.rows, [], 0
        yield from self._emit(rows)

    def _emit(self, rows: list[list[Any]]) -> Iterator[StreamItem]:
        if not rows:
            return
        batch, bad = rows_to_batch(rows, self.stream)
        yield from bad
        if batch.num_rows:
            yield batch


def _as_number(value: Any) -> Any:
    return float(value) if isinstance(value, decimal.Decimal) else value


def _dumps(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, default=_as_number)


def preparer(t: DataType) -> Callable[[Any], Any]:
    """How a parsed JSON value is handed to ``rows_to_batch`` for a column of type ``t``."""
    if t.kind == "json":
        return lambda v: None if v is None else _dumps(v)
    if t.kind == "string":
        return lambda v: v if v is None or isinstance(v, str) else (
            str(v) if isinstance(v, decimal.Decimal) else _dumps(v))  # true, not Python's True
    if t.kind == "float64":
        return _as_number
    if t.kind in ("int32", "int64"):
        return lambda v: int(v) if isinstance(v, decimal.Decimal) and v == v.to_integral_value() else v
    return lambda v: v


def read_messages(lines: Iterable[bytes | None], batch: Batcher, names: set[str],
                  source: str) -> Iterator[StreamItem]:
    """Items of one stream from a tap's output lines (None when the tap was quiet a while).

    RECORDs of the streams in ``names`` go to ``batch``; a STATE is committed with exactly
    the rows before it. A malformed line raises a SourceError naming it; the caller then
    commits what the last STATE covered and stops the tap.
    """
    stream = batch.stream
    prepare = [(c.name, preparer(c.type)) for c in stream.columns]
    known, reported, ignored = set(stream.column_names), set[str](), set[str]()
    decimals = any(c.type.kind == "decimal" for c in stream.columns)
    # Exact decimals need the number's text, not a float's approximation of it.
    decode = json.JSONDecoder(parse_float=decimal.Decimal if decimals else float).decode
    last_commit, number = time.monotonic(), 0

    def malformed(why: str) -> SourceError:
        return SourceError(f"source '{source}': line {number} of the tap's output {why}",
                           fix="the tap is not speaking Singer: check its version and options; "
                           "rows up to its last STATE are committed")

    for line in lines:
        if line is None or time.monotonic() - last_commit >= COMMIT_EVERY_S:
            if batch.pending:
                yield from batch.commit()
                last_commit = time.monotonic()
            if line is None:
                continue
        number += 1
        if not line.strip():
            continue
        try:
            msg = decode(line.decode("utf-8"))
        except ValueError as exc:  # JSONDecodeError and UnicodeDecodeError among them
            raise malformed(f"is not JSON ({exc}): {line[:200]!r}") from None
        kind = msg.get("type") if isinstance(msg, dict) else None
        if kind == "RECORD":
            if msg.get("stream") not in names:
                continue  # another stream: a tap that ignores selection
            record = msg.get("record")
            if not isinstance(record, dict):
                raise malformed("is a RECORD without a `record` object")
            if not known.issuperset(record):
                for field in sorted(set(record) - known - reported):
                    reported.add(field)
                    yield Notice(f"field '{field}' is in the tap's records but not in its "
                                 "catalog schema, so it is not loaded; it will be once the "
                                 "catalog lists it")
            yield from batch.add([conv(record.get(col)) for col, conv in prepare])
        elif kind == "STATE":
            if not isinstance(msg.get("value"), dict):
                raise malformed("is a STATE without a `value` object")
            batch.mark(msg["value"])
        elif kind == "BATCH":
            raise SourceError(
                f"source '{source}': the tap sent a BATCH message (line {number}), "
                "which Syncline does not read", fix="remove `batch_config` from the tap's "
                "`config:` so that it prints RECORD messages")
        elif kind in ("SCHEMA", "ACTIVATE_VERSION"):
            continue  # the schema is the discovered one; versions mean nothing here
        elif isinstance(kind, str):
            if kind not in ignored:
                ignored.add(kind)
                yield Notice(f"the tap sent {kind} messages, which Syncline ignores")
        else:
            raise malformed(f"is not a Singer message: {line[:200]!r}")
