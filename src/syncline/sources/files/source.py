"""Files source: CSV, JSON Lines and Parquet files matched by glob patterns, read incrementally.

CSV and JSONL files are followed by byte offset: only complete lines are consumed, and lines
appended later are read on the next run. A Parquet file cannot be appended to, so one whose
size or mtime changed is read again whole; in merge mode the default ``_file, _line`` key
then replaces its earlier rows instead of duplicating them.
"""

from __future__ import annotations

import codecs
import glob
import hashlib
import io
import json
import os
from collections.abc import Generator, Iterator
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pa_csv
import pyarrow.parquet as pq

from syncline.errors import ConfigurationError, SourceError
from syncline.records import rows_to_batch
from syncline.schema import (
    FLOAT64,
    INT64,
    STRING,
    TIMESTAMP,
    TIMESTAMPTZ,
    Column,
    DataType,
    StreamSchema,
    from_arrow,
)
from syncline.sources.base import Source
from syncline.sources.files.config import FilesConfig, FileStream, Format
from syncline.sources.rest.infer import kind_of, merge_type
from syncline.stream import BadRecord, Checkpoint, Notice, ReadRequest, StreamItem

FILE, LINE = "_file", "_line"
# Types come from a bounded sample of each file; a later value that does not fit becomes a
# bad record instead of a type change in the middle of a run.
DISCOVERY_ROWS = 100_000
_INT = r"^-?(0|[1-9][0-9]*)$"  # leading zeros (zip codes, ids) stay text
_FLOAT = r"^-?((0|[1-9][0-9]*)(\.[0-9]*)?|\.[0-9]+)([eE][+-]?[0-9]+)?$"
_TS = r"^[0-9]{4}-[0-9]{2}-[0-9]{2}[T ][0-9]{2}:[0-9]{2}(:[0-9]{2}(\.[0-9]{1,6})?)?"
_TS_NAIVE, _TS_ZONED = _TS + "$", _TS + "(Z|[+-][0-9]{2}:?[0-9]{2})$"
_FINGERPRINT_BYTES = 4096


def _complete_end(path: Path, size: int) -> int:
    """Offset just past the last newline within the first ``size`` bytes (0 if none)."""
    with open(path, "rb") as f:
        pos = size
        while pos > 0:
            step = min(1 << 16, pos)
            pos -= step
            f.seek(pos)
            i = f.read(step).rfind(b"\n")
            if i >= 0:
                return pos + i + 1
    return 0


def _fingerprint(path: Path, offset: int) -> str:
    """Hash of the head and tail of the consumed bytes: tells an append from a rewrite."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        h.update(f.read(min(offset, _FINGERPRINT_BYTES)))
        tail = max(0, offset - _FINGERPRINT_BYTES)
        f.seek(tail)
        h.update(f.read(offset - tail))
    return h.hexdigest()[:32]


def _static_dir(pattern: Path) -> Path:
    """The folder a glob pattern starts in: its parts before the first wildcard."""
    parts = pattern.parts
    stop = next((i for i, p in enumerate(parts) if any(ch in p for ch in "*?[")), len(parts) - 1)
    return Path(*parts[: min(stop, len(parts) - 1)])


def _classify(arr: pa.Array) -> DataType | None:
    """Canonical type of a column of CSV text; None when it holds only NULLs."""
    values = arr.drop_null()
    if len(values) == 0:
        return None

    def every(pattern: str) -> bool:
        return bool(pc.all(pc.match_substring_regex(values, pattern)).as_py())

    if every(_INT):
        try:
            pc.cast(values, pa.int64())
            return INT64
        except pa.ArrowInvalid:
            return STRING  # beyond int64: an identifier, not a quantity
    if every(_FLOAT):
        return FLOAT64
    if every(_TS_ZONED):
        return TIMESTAMPTZ
    return TIMESTAMP if every(f"{_TS_NAIVE}|{_TS_ZONED}") else STRING


def _prepare(value: Any, t: DataType) -> Any:
    """A Python value ready for ``rows_to_batch``: nested values become JSON text."""
    if value is None:
        return None
    if t.kind == "json" or isinstance(value, (dict, list)):
        return json.dumps(value, ensure_ascii=False, default=str)
    if t.kind == "string" and isinstance(value, (bool, int, float)):
        return json.dumps(value)  # true, not Python's True
    return value


class FilesSource(Source):
    config: FilesConfig
    incremental_needs_cursor = False  # positions are file offsets, not a column

    def _spec(self, stream: str) -> FileStream:
        specs = self.config.patterns(self.name)
        if stream not in specs:
            raise ConfigurationError(f"source '{self.name}' has no stream '{stream}'",
                                     fix=f"use one of: {', '.join(sorted(specs))}")
        return specs[stream]

    def _files(self, spec: FileStream) -> list[tuple[str, Path]]:
        """Matching files as (path relative to the root, path), sorted by name."""
        root = Path(self.context.root)
        full = root / Path(spec.path).expanduser()  # an absolute pattern replaces the root
        folder = _static_dir(full)
        if not folder.is_dir():
            raise ConfigurationError(
                f"source '{self.name}': folder {folder} of pattern '{spec.path}' does not exist",
                fix=f"create {folder}, or correct `path:` of source '{self.name}' "
                    "(relative paths start at the workspace folder)")
        found = [Path(p) for p in glob.glob(str(full), recursive=True) if os.path.isfile(p)]
        return sorted((Path(os.path.relpath(p, root)).as_posix(), p) for p in found)

    def _fail(self, rel: str, fmt: Format, exc: Exception) -> SourceError:
        fix = {"csv": f"check it is {self.config.csv.encoding} CSV separated by "
                      f"'{self.config.csv.delimiter}' (see `csv:`)",
               "jsonl": "check it holds one JSON object per line",
               "parquet": "check it is a complete Parquet file, not one still being written"}[fmt]
        return SourceError(f"source '{self.name}': cannot read {fmt} file {rel}: {exc}",
                           fix=fix + ", or move it out of the folder")

    def check(self) -> None:
        for spec in self.config.patterns(self.name).values():
            self._files(spec)

    def discover(self) -> list[StreamSchema]:
        return [self._describe(n, s) for n, s in self.config.patterns(self.name).items()]

    def _describe(self, name: str, spec: FileStream) -> StreamSchema:
        files = self._files(spec)
        if not files:  # an emptied drop folder: the loaded table's columns stand
            system = (Column(FILE, STRING, nullable=False), Column(LINE, INT64, nullable=False))
            return StreamSchema(name, system, tuple(spec.primary_key or (FILE, LINE)), (),
                                (f"source '{self.name}': no file matches '{spec.path}'",),
                                placeholder=True)
        types: dict[str, DataType | None] = {}
        notes: dict[str, None] = {}
        for rel, path in files:
            try:
                for col, t in self._infer(spec.fmt, path, rel, notes):
                    if col in (FILE, LINE):
                        notes[f"column {col} of the files is shadowed by the system column"] = None
                    else:
                        merge_type(types, col, t, notes)
            except (OSError, pa.ArrowException) as exc:
                raise self._fail(rel, spec.fmt, exc) from None
        columns = [Column(c, t or STRING) for c, t in types.items()]
        columns += [Column(FILE, STRING, nullable=False), Column(LINE, INT64, nullable=False)]
        key = tuple(spec.primary_key or (FILE, LINE))
        missing = [k for k in key if k not in types and k not in (FILE, LINE)]
        if missing:
            raise ConfigurationError(
                f"source '{self.name}': primary key {', '.join(missing)} is not a column "
                f"of the files of '{spec.path}'", fix=f"use some of: {', '.join(types)}, _file, _line")
        return StreamSchema(name, tuple(columns), key, (), tuple(notes))

    def _infer(self, fmt: Format, path: Path, rel: str,
               notes: dict[str, None]) -> Iterator[tuple[str, DataType | None]]:
        if fmt == "parquet":
            for f in pq.read_schema(path):
                yield f.name, None if pa.types.is_null(f.type) else from_arrow(f.type, f.metadata)
            return
        types: dict[str, DataType | None] = {}
        seen, end = 0, _complete_end(path, path.stat().st_size)
        if fmt == "csv":
            for batch, _ in self._csv_batches(path, rel, 0, end):
                for i, col in enumerate(batch.schema.names):
                    merge_type(types, col, _classify(batch.column(i)), notes)
                seen += batch.num_rows
                if seen >= DISCOVERY_ROWS:
                    break
        else:
            for raw in self._jsonl_lines(path, 0, end):
                try:
                    obj = json.loads(raw)
                except ValueError:
                    continue  # read() sets the line apart as a bad record
                for key, value in obj.items() if isinstance(obj, dict) else ():
                    merge_type(types, str(key), kind_of(value, naive_timestamps=True), notes)
                seen += 1
                if seen >= DISCOVERY_ROWS:
                    break
        yield from types.items()

    def _csv_batches(self, path: Path, rel: str, start: int,
                     end: int) -> Iterator[tuple[pa.RecordBatch, list[BadRecord]]]:
        """Text batches of the CSV rows in [start, end), with the rows of a wrong width.

        At least one (maybe empty) batch, so a header-only file still names its columns;
        nothing while the file has no complete first line.
        """
        opts = self.config.csv
        encoding = "utf8" if codecs.lookup(opts.encoding).name == "utf-8" else opts.encoding
        with open(path, "rb") as f:
            head = f.readline(end) if end else b""  # complete: end follows a newline
        if not head:
            return
        names = pa_csv.read_csv(
            io.BytesIO(head), parse_options=pa_csv.ParseOptions(delimiter=opts.delimiter),
            read_options=pa_csv.ReadOptions(encoding=encoding, autogenerate_column_names=not opts.header),
        ).column_names
        if len(set(names)) != len(names):
            raise pa.ArrowInvalid(f"duplicate column names in the header: {names}")
        empty = pa.RecordBatch.from_pylist([], pa.schema([(n, pa.string()) for n in names]))
        start = max(start, len(head) if opts.header else 0)
        bad: list[BadRecord] = []

        def wrong_width(row: Any) -> str:
            bad.append(BadRecord({FILE: rel, "_raw": row.text},
                                 f"expected {row.expected_columns} columns, got {row.actual_columns}"))
            return "skip"

        yielded = False
        if start < end:
            with pa.OSFile(str(path)) as f:
                # Everything is read as text and converted here, so a stray value costs
                # one bad record rather than the whole block.
                for batch in pa_csv.open_csv(
                    f.get_stream(start, end - start),
                    read_options=pa_csv.ReadOptions(column_names=names, encoding=encoding),
                    parse_options=pa_csv.ParseOptions(delimiter=opts.delimiter, newlines_in_values=True,
                                                      invalid_row_handler=wrong_width),
                    convert_options=pa_csv.ConvertOptions(
                        column_types={n: pa.string() for n in names}, strings_can_be_null=True,
                        null_values=opts.null_values, quoted_strings_can_be_null=False),
                ):
                    yield batch, bad[:]
                    bad.clear()
                    yielded = True
        if bad or not yielded:
            yield empty, bad

    @staticmethod
    def _jsonl_lines(path: Path, start: int, end: int) -> Iterator[bytes]:
        """Non-blank lines in [start, end); ``end`` follows a newline."""
        with open(path, "rb") as f:
            f.seek(start)
            while start < end:
                raw = f.readline()
                if not raw:  # truncated since it was measured
                    return
                start += len(raw)
                if raw.strip():
                    yield raw

    def count(self, stream: StreamSchema) -> int | None:
        spec, total = self._spec(stream.name), 0
        for rel, path in self._files(spec):
            try:
                if spec.fmt == "parquet":
                    total += pq.ParquetFile(path).metadata.num_rows
                    continue
                end = _complete_end(path, path.stat().st_size)
                if spec.fmt == "csv":
                    total += sum(b.num_rows + len(bad) for b, bad in self._csv_batches(path, rel, 0, end))
                else:
                    total += sum(1 for _ in self._jsonl_lines(path, 0, end))
            except (OSError, pa.ArrowException) as exc:
                raise self._fail(rel, spec.fmt, exc) from None
        return total

    def fingerprint(self, stream: StreamSchema) -> str | None:
        """Name, size and mtime of every matching file: any file added, changed or removed moves it."""
        files = self._files(self._spec(stream.name))
        stats = [(rel, p.stat()) for rel, p in files]
        listing = "\n".join(f"{rel}:{st.st_size}:{st.st_mtime_ns}" for rel, st in stats)
        return hashlib.sha256(listing.encode()).hexdigest()

    def read(self, request: ReadRequest) -> Iterator[StreamItem]:
        spec = self._spec(request.stream.name)
        files = self._files(spec)
        old: dict[str, Any] = {}
        # A full refresh reads every file, unless it resumes its own half-built table.
        if request.mode != "full_refresh" or request.checkpoint:
            old = dict((request.checkpoint or {}).get("files") or {})
        if not files and self.config.require_files:
            yield Notice(f"no file matches '{spec.path}' (require_files: true)")
        present = {rel for rel, _ in files}
        # Files gone from the folder are forgotten, so the map stays as small as the folder.
        state = {rel: dict(e) for rel, e in old.items() if rel in present}
        dirty = len(state) != len(old)
        for rel, path in files:
            st = path.stat()
            prev = state.get(rel)
            if prev and prev.get("size") == st.st_size and prev.get("mtime_ns") == st.st_mtime_ns:
                continue
            offset, rows = self._resume(spec.fmt, path, prev, st.st_size)
            try:
                if spec.fmt == "parquet":
                    end = st.st_size
                    rows = yield from self._read_parquet(request, path, rel)
                else:
                    end = max(offset, _complete_end(path, st.st_size))
                    rows = yield from self._read_text(spec.fmt, request, path, rel, offset, end, rows)
            except (OSError, pa.ArrowException) as exc:
                raise self._fail(rel, spec.fmt, exc) from None
            state[rel] = {"offset": end, "size": st.st_size, "mtime_ns": st.st_mtime_ns, "rows": rows}
            if spec.fmt != "parquet":
                state[rel]["fingerprint"] = _fingerprint(path, end)
            dirty = False
            yield Checkpoint({"files": {k: dict(v) for k, v in state.items()}})
        if dirty:
            yield Checkpoint({"files": {k: dict(v) for k, v in state.items()}})

    @staticmethod
    def _resume(fmt: Format, path: Path, prev: dict[str, Any] | None, size: int) -> tuple[int, int]:
        """Where to continue a file: its consumed offset and rows, or (0, 0) to read it again."""
        if prev is None or fmt == "parquet":
            return 0, 0
        offset = int(prev["offset"])
        if size < offset or _fingerprint(path, offset) != prev.get("fingerprint"):
            return 0, 0  # rewritten, not appended to
        return offset, int(prev["rows"])

    def _read_text(self, fmt: Format, req: ReadRequest, path: Path, rel: str,
                   start: int, end: int, rows: int) -> Generator[StreamItem, None, int]:
        if fmt == "csv":
            for batch, wrong in self._csv_batches(path, rel, start, end):
                yield from wrong
                for off in range(0, batch.num_rows, req.batch_size):
                    part = batch.slice(off, req.batch_size)
                    cols = dict(zip(part.schema.names, part.columns))
                    yield from _emit(*_conform(cols, part.num_rows, req.stream, rel, rows + 1))
                    rows += part.num_rows
            return rows
        chunk: list[list[Any]] = []
        bad: list[BadRecord] = []
        for raw in self._jsonl_lines(path, start, end):
            rows += 1
            try:
                obj = json.loads(raw)
                error = "" if isinstance(obj, dict) else f"a JSON {type(obj).__name__}, not an object"
            except ValueError as exc:  # JSONDecodeError and UnicodeDecodeError among them
                error = f"invalid JSON: {exc}"
            if error:
                text = raw.decode("utf-8", "replace").rstrip("\r\n")
                bad.append(BadRecord({FILE: rel, LINE: rows, "_raw": text}, f"line {rows}: {error}"))
            else:
                system = {FILE: rel, LINE: rows}
                chunk.append([system[c.name] if c.name in system else _prepare(obj.get(c.name), c.type)
                              for c in req.stream.columns])
            if len(chunk) + len(bad) >= req.batch_size:
                yield from bad
                yield from _emit(*rows_to_batch(chunk, req.stream))
                chunk, bad = [], []
        yield from bad
        yield from _emit(*rows_to_batch(chunk, req.stream))
        return rows

    def _read_parquet(self, req: ReadRequest, path: Path, rel: str) -> Generator[StreamItem, None, int]:
        rows = 0
        pf = pq.ParquetFile(path)
        present = [c.name for c in req.stream.columns if c.name in pf.schema_arrow.names]
        for batch in pf.iter_batches(batch_size=req.batch_size, columns=present):
            cols = dict(zip(batch.schema.names, batch.columns))
            yield from _emit(*_conform(cols, batch.num_rows, req.stream, rel, rows + 1))
            rows += batch.num_rows
        return rows


def _emit(batch: pa.RecordBatch, bad: list[BadRecord]) -> Iterator[StreamItem]:
    yield from bad
    if batch.num_rows:
        yield batch


def _conform(cols: dict[str, pa.Array], n: int, stream: StreamSchema, rel: str,
             first: int) -> tuple[pa.RecordBatch, list[BadRecord]]:
    """Arrow columns of a file in the stream's schema, the rows that do not fit set apart."""
    try:
        arrays = [_column(cols.get(c.name), c, n, rel, first) for c in stream.columns]
        return pa.RecordBatch.from_arrays(arrays, schema=stream.arrow_schema()), []
    except (pa.ArrowException, ValueError, TypeError):
        pass
    # Some value does not fit: convert value by value so that only its row is set apart.
    values = [_values(cols.get(c.name), c, n, rel, first) for c in stream.columns]
    return rows_to_batch(list(zip(*values)), stream)


def _column(src: pa.Array | None, col: Column, n: int, rel: str, first: int) -> pa.Array:
    target = col.type.to_arrow()
    if col.name in (FILE, LINE) or src is None:
        return pa.array(_values(src, col, n, rel, first), target)
    if pa.types.is_nested(src.type):
        return pa.array([_prepare(v, col.type) for v in src.to_pylist()], pa.string())
    if col.type.kind == "json":
        raise ValueError("JSON text is checked value by value")
    if src.type == target:
        return src
    # Sub-microsecond digits are dropped rather than failing the whole batch.
    temporal = pa.types.is_timestamp(src.type) and pa.types.is_timestamp(target)
    return pc.cast(src, target, safe=not temporal)


def _values(src: pa.Array | None, col: Column, n: int, rel: str, first: int) -> list[Any]:
    if col.name == FILE:
        return [rel] * n
    if col.name == LINE:
        return list(range(first, first + n))
    if src is None:
        return [None] * n
    if pa.types.is_timestamp(src.type) and src.type.unit == "ns":
        src = pc.cast(src, pa.timestamp("us", src.type.tz), safe=False)
    values: list[Any] = src.to_pylist()
    if col.type.kind == "json" and not pa.types.is_nested(src.type):
        return values  # text that must already be JSON: rows_to_batch checks it
    return [_prepare(v, col.type) for v in values]
