"""The files source: discovery, incremental reads by file and offset, bad records, errors."""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from pydantic import ValidationError

from syncline.errors import ConfigurationError, SourceError
from syncline.schema import FLOAT64, INT64, JSON, STRING, TIMESTAMP, StreamSchema
from syncline.sources.base import SourceContext
from syncline.sources.files.source import FilesConfig, FilesSource
from syncline.stream import BadRecord, Checkpoint, ReadRequest

from syncfixtures import dest_query, failpoints_on, run_sync


def make(tmp_path: Path, **config: Any) -> FilesSource:
    cfg = FilesConfig.model_validate({"type": "files", **config})
    return FilesSource("drops", cfg, SourceContext(root=str(tmp_path)))


def write(path: Path, text: str, mode: str = "w") -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, mode, encoding="utf-8", newline="") as f:
        f.write(text)


@dataclass
class Read:
    items: list[Any]
    checkpoint: dict[str, Any] | None

    @property
    def batches(self) -> list[pa.RecordBatch]:
        return [i for i in self.items if isinstance(i, pa.RecordBatch)]

    @property
    def rows(self) -> list[dict[str, Any]]:
        return [r for b in self.batches for r in b.to_pylist()]

    @property
    def bad(self) -> list[BadRecord]:
        return [i for i in self.items if isinstance(i, BadRecord)]


def collect(source: FilesSource, stream: StreamSchema, checkpoint: dict[str, Any] | None = None,
            batch_size: int = 1000, mode: str = "incremental") -> Read:
    items = list(source.read(ReadRequest(stream=stream, mode=mode,  # type: ignore[arg-type]
                                         checkpoint=checkpoint, batch_size=batch_size)))
    for b in items:
        if isinstance(b, pa.RecordBatch):
            assert b.schema == stream.arrow_schema()
    marks = [i for i in items if isinstance(i, Checkpoint)]
    value = marks[-1].value if marks else checkpoint
    if value is not None:
        value = json.loads(json.dumps(value))  # the engine stores it as JSON
    return Read(items, value)


CSV = (
    "id,name,amount,created_at,zip\n"
    "1,Ana,10.5,2024-01-02T03:04:05,01234\n"
    "2,Bo,,2024-01-03 00:00:00,98765\n"
    "3,\"Cé, Jr\",7,2024-02-01T10:00:00,12345\n"
)


def test_discover_csv_infers_simple_types_and_system_columns(tmp_path: Path) -> None:
    write(tmp_path / "inbox" / "a.csv", CSV)
    [stream] = make(tmp_path, path="inbox/*.csv").discover()
    assert stream.name == "drops"
    types = {c.name: c.type for c in stream.columns}
    assert types == {"id": INT64, "name": STRING, "amount": FLOAT64, "created_at": TIMESTAMP,
                     "zip": STRING, "_file": STRING, "_line": INT64}
    assert stream.primary_key == ("_file", "_line")
    assert stream.cursor_candidates == ()


def test_read_csv_values_types_and_checkpoint(tmp_path: Path) -> None:
    write(tmp_path / "inbox" / "a.csv", CSV)
    source = make(tmp_path, path="inbox/*.csv", stream="orders")
    [stream] = source.discover()
    assert stream.name == "orders"
    got = collect(source, stream)
    assert got.rows == [
        {"id": 1, "name": "Ana", "amount": 10.5, "created_at": dt.datetime(2024, 1, 2, 3, 4, 5),
         "zip": "01234", "_file": "inbox/a.csv", "_line": 1},
        {"id": 2, "name": "Bo", "amount": None, "created_at": dt.datetime(2024, 1, 3),
         "zip": "98765", "_file": "inbox/a.csv", "_line": 2},
        {"id": 3, "name": "Cé, Jr", "amount": 7.0, "created_at": dt.datetime(2024, 2, 1, 10),
         "zip": "12345", "_file": "inbox/a.csv", "_line": 3},
    ]
    assert got.bad == []
    entry = got.checkpoint["files"]["inbox/a.csv"]  # type: ignore[index]
    size = (tmp_path / "inbox" / "a.csv").stat().st_size
    assert (entry["offset"], entry["size"], entry["rows"]) == (size, size, 3)
    assert isinstance(got.items[-1], Checkpoint)
    assert source.count(stream) == 3


def test_second_read_from_checkpoint_yields_nothing(tmp_path: Path) -> None:
    write(tmp_path / "inbox" / "a.csv", CSV)
    write(tmp_path / "inbox" / "b.csv", "id,name\n9,Z\n")
    source = make(tmp_path, path="inbox/*.csv")
    [stream] = source.discover()
    first = collect(source, stream)
    assert len(first.rows) == 4
    assert sum(isinstance(i, Checkpoint) for i in first.items) == 2  # one per file
    again = collect(source, stream, first.checkpoint)
    assert again.rows == [] and again.bad == []


def test_full_refresh_reads_everything_and_resumes_only_its_own_build(tmp_path: Path) -> None:
    write(tmp_path / "inbox" / "a.csv", CSV)
    source = make(tmp_path, path="inbox/*.csv")
    [stream] = source.discover()
    first = collect(source, stream)
    full = collect(source, stream, None, mode="full_refresh")  # a fresh refresh: every file
    assert [r["id"] for r in full.rows] == [1, 2, 3]
    assert full.checkpoint == first.checkpoint
    # the engine passes a checkpoint to a full refresh only to resume its half-built table
    resumed = collect(source, stream, full.checkpoint, mode="full_refresh")
    assert resumed.rows == []


def test_new_file_is_picked_up_once(tmp_path: Path) -> None:
    write(tmp_path / "inbox" / "a.csv", CSV)
    source = make(tmp_path, path="inbox/*.csv")
    [stream] = source.discover()
    first = collect(source, stream)
    write(tmp_path / "inbox" / "b.csv", "id,name,amount,created_at,zip\n4,Di,1.25,,\n")
    second = collect(source, stream, first.checkpoint)
    assert [(r["_file"], r["_line"], r["id"], r["amount"]) for r in second.rows] == [
        ("inbox/b.csv", 1, 4, 1.25)
    ]
    assert set(second.checkpoint["files"]) == {"inbox/a.csv", "inbox/b.csv"}  # type: ignore[index]
    assert collect(source, stream, second.checkpoint).rows == []


def test_appended_csv_lines_are_read_once_with_their_line_numbers(tmp_path: Path) -> None:
    path = tmp_path / "inbox" / "a.csv"
    write(path, CSV)
    source = make(tmp_path, path="inbox/*.csv")
    [stream] = source.discover()
    first = collect(source, stream)
    write(path, "4,Dee,2.5,2024-03-01T00:00:00,11111\n5,Eve,3,2024-03-02T00:00:00,22222\n", "a")
    second = collect(source, stream, first.checkpoint)
    assert [(r["_line"], r["id"], r["name"], r["amount"]) for r in second.rows] == [
        (4, 4, "Dee", 2.5), (5, 5, "Eve", 3.0)
    ]
    assert second.checkpoint["files"]["inbox/a.csv"]["rows"] == 5  # type: ignore[index]
    assert collect(source, stream, second.checkpoint).rows == []


JSONL = (
    '{"id": 1, "name": "Zoë", "meta": {"tags": ["a", "ü"], "n": 1}, "score": 1.5}\n'
    '{"id": 2, "name": null, "meta": null, "score": null, "seen": "2024-05-01T12:00:00"}\n'
    "\n"
    '{"id": 3, "name": "東京", "meta": {"tags": []}, "score": 2}\n'
)


def test_discover_and_read_jsonl_nested_unicode_nulls(tmp_path: Path) -> None:
    write(tmp_path / "feed" / "x.jsonl", JSONL)
    source = make(tmp_path, path="feed/*.jsonl")
    [stream] = source.discover()
    types = {c.name: c.type for c in stream.columns}
    assert types == {"id": INT64, "name": STRING, "meta": JSON, "score": FLOAT64,
                     "seen": TIMESTAMP, "_file": STRING, "_line": INT64}
    got = collect(source, stream)
    assert got.bad == []
    rows = got.rows
    assert [r["id"] for r in rows] == [1, 2, 3]
    assert [r["_line"] for r in rows] == [1, 2, 3]  # the blank line is not a row
    assert [r["name"] for r in rows] == ["Zoë", None, "東京"]
    assert json.loads(rows[0]["meta"]) == {"tags": ["a", "ü"], "n": 1}
    assert "ü" in rows[0]["meta"]  # text kept readable, not \\u-escaped
    assert rows[1]["meta"] is None and rows[1]["score"] is None
    assert rows[2]["score"] == 2.0
    assert rows[1]["seen"] == dt.datetime(2024, 5, 1, 12)
    assert source.count(stream) == 3


def test_appended_jsonl_lines_are_read_once(tmp_path: Path) -> None:
    path = tmp_path / "feed" / "x.jsonl"
    write(path, JSONL)
    source = make(tmp_path, path="feed/*.ndjson", format="jsonl")  # pattern matches nothing yet
    [nothing] = source.discover()
    assert nothing.placeholder and nothing.notes == ("source 'drops': no file matches 'feed/*.ndjson'",)
    source = make(tmp_path, path="feed/*.jsonl")
    [stream] = source.discover()
    first = collect(source, stream)
    write(path, '{"id": 4, "name": "Ω"}\n', "a")
    second = collect(source, stream, first.checkpoint)
    assert [(r["_line"], r["id"], r["name"], r["meta"]) for r in second.rows] == [(4, 4, "Ω", None)]
    assert collect(source, stream, second.checkpoint).rows == []


def test_partial_trailing_line_waits_until_complete(tmp_path: Path) -> None:
    csv_path, jsonl_path = tmp_path / "in" / "a.csv", tmp_path / "in" / "a.jsonl"
    write(csv_path, "id,name\n1,a\n2,b")  # no newline after the last row: still being written
    write(jsonl_path, '{"id": 1}\n{"id": 2')
    for path, pattern in ((csv_path, "in/*.csv"), (jsonl_path, "in/*.jsonl")):
        source = make(tmp_path, path=pattern)
        [stream] = source.discover()
        first = collect(source, stream)
        assert [r["id"] for r in first.rows] == [1]
        assert collect(source, stream, first.checkpoint).rows == []
        write(path, "\n" if path.suffix == ".csv" else "}\n", "a")
        second = collect(source, stream, first.checkpoint)
        assert [(r["id"], r["_line"]) for r in second.rows] == [(2, 2)]
        assert collect(source, stream, second.checkpoint).rows == []


def test_value_that_does_not_fit_becomes_a_bad_record(tmp_path: Path) -> None:
    write(tmp_path / "in" / "a.csv", "id,when\n1,2024-01-01T00:00:00\n")
    source = make(tmp_path, path="in/*.csv")
    [stream] = source.discover()
    write(tmp_path / "in" / "b.csv", "id,when\n2,2024-01-02T00:00:00\nabc,2024-01-03T00:00:00\n"
                                     "4,not a time\n5,2024-01-05T00:00:00\n6\n")
    got = collect(source, stream)
    assert [(r["_file"], r["_line"], r["id"]) for r in got.rows] == [
        ("in/a.csv", 1, 1), ("in/b.csv", 1, 2), ("in/b.csv", 4, 5)
    ]
    errors = {b.error.split(":")[0] for b in got.bad}
    assert len(got.bad) == 3
    assert {"column id", "column when"} <= errors
    records = [b.record for b in got.bad]
    assert {"id": "abc", "when": "2024-01-03T00:00:00", "_file": "in/b.csv", "_line": 2} in records
    assert any(r.get("_raw") == "6" for r in records)  # a row of the wrong width


def test_invalid_json_line_becomes_a_bad_record(tmp_path: Path) -> None:
    write(tmp_path / "in" / "a.jsonl", '{"id": 1}\n{"id": oops}\n[1, 2]\n{"id": 4}\n')
    source = make(tmp_path, path="in/*.jsonl")
    [stream] = source.discover()
    got = collect(source, stream)
    assert [(r["id"], r["_line"]) for r in got.rows] == [(1, 1), (4, 4)]
    assert [(b.record["_line"], b.record["_raw"]) for b in got.bad] == [
        (2, '{"id": oops}'), (3, "[1, 2]")
    ]


def test_parquet_discovery_read_and_rewrite(tmp_path: Path) -> None:
    folder = tmp_path / "pq"
    folder.mkdir()
    table = pa.table({
        "id": pa.array([1, 2], pa.int64()),
        "tags": pa.array([["x"], None], pa.list_(pa.string())),
        "at": pa.array([dt.datetime(2024, 1, 1), None], pa.timestamp("ns")),
    })
    pq.write_table(table, folder / "p1.parquet")
    source = make(tmp_path, path="pq/*.parquet")
    [stream] = source.discover()
    assert [(c.name, str(c.type)) for c in stream.columns] == [
        ("id", "int64"), ("tags", "json"), ("at", "timestamp"), ("_file", "string"), ("_line", "int64")
    ]
    first = collect(source, stream)
    assert first.rows == [
        {"id": 1, "tags": '["x"]', "at": dt.datetime(2024, 1, 1), "_file": "pq/p1.parquet", "_line": 1},
        {"id": 2, "tags": None, "at": None, "_file": "pq/p1.parquet", "_line": 2},
    ]
    assert collect(source, stream, first.checkpoint).rows == []
    pq.write_table(pa.table({"id": pa.array([7, 8, 9], pa.int64())}), folder / "p1.parquet")
    again = collect(source, stream, first.checkpoint)  # rewritten: read again whole
    assert [(r["id"], r["_line"], r["tags"]) for r in again.rows] == [(7, 1, None), (8, 2, None), (9, 3, None)]
    assert source.count(stream) == 3


def test_rewritten_csv_is_read_again_from_the_start(tmp_path: Path) -> None:
    path = tmp_path / "in" / "a.csv"
    write(path, CSV)
    source = make(tmp_path, path="in/*.csv")
    [stream] = source.discover()
    first = collect(source, stream)
    write(path, "id,name,amount,created_at,zip\n8,New,1,,\n")  # shorter: replaced, not appended
    got = collect(source, stream, first.checkpoint)
    assert [(r["_line"], r["id"]) for r in got.rows] == [(1, 8)]


def test_file_replaced_by_a_longer_one_is_read_again_not_resumed(tmp_path: Path) -> None:
    path = tmp_path / "in" / "a.csv"
    write(path, "id,name\n1,a\n")
    source = make(tmp_path, path="in/*.csv")
    [stream] = source.discover()
    first = collect(source, stream)
    write(path, "id,name\n7,x\n8,y\n9,z\n")  # same name, new content, larger
    got = collect(source, stream, first.checkpoint)
    assert [(r["_line"], r["id"]) for r in got.rows] == [(1, 7), (2, 8), (3, 9)]


def test_mixed_json_values_become_text_in_json_syntax(tmp_path: Path) -> None:
    write(tmp_path / "in" / "m.jsonl", '{"v": {"a": 1}}\n{"v": "plain"}\n{"v": true}\n')
    source = make(tmp_path, path="in/*.jsonl")
    [stream] = source.discover()
    assert stream.column("v").type == STRING  # type: ignore[union-attr]
    assert [r["v"] for r in collect(source, stream).rows] == ['{"a": 1}', "plain", "true"]


def test_batch_size_is_respected(tmp_path: Path) -> None:
    write(tmp_path / "in" / "big.csv", "n,s\n" + "".join(f"{i},v{i}\n" for i in range(1, 26)))
    write(tmp_path / "in" / "big.jsonl", "".join(json.dumps({"n": i}) + "\n" for i in range(1, 26)))
    for pattern in ("in/*.csv", "in/*.jsonl"):
        source = make(tmp_path, path=pattern)
        [stream] = source.discover()
        got = collect(source, stream, batch_size=7)
        assert [b.num_rows for b in got.batches] == [7, 7, 7, 4]
        assert [r["n"] for r in got.rows] == list(range(1, 26))
        assert [r["_line"] for r in got.rows] == list(range(1, 26))


def test_missing_folder_is_a_configuration_error_naming_source_and_path(tmp_path: Path) -> None:
    source = make(tmp_path, path="nowhere/*.csv")
    for call in (source.check, source.discover):
        with pytest.raises(ConfigurationError) as info:
            call()
        text = str(info.value)
        assert "drops" in text and "nowhere/*.csv" in text and info.value.fix


def test_an_empty_folder_is_described_by_the_loaded_table_or_refused_naming_the_pattern(
        tmp_path: Path) -> None:
    (tmp_path / "inbox").mkdir()
    source = make(tmp_path, path="inbox/*.csv")
    source.check()
    [stream] = source.discover()  # nothing to describe it by: the engine takes the loaded table
    assert stream.placeholder and [c.name for c in stream.columns] == ["_file", "_line"]
    _one_stream_workspace(tmp_path)
    never = run_sync(tmp_path)  # never loaded: its columns are unknown
    assert never.status == "failed"
    assert "no file matches 'inbox/*.csv', and the stream was never loaded" in str(never.error)


def _one_stream_workspace(root: Path, **source: Any) -> None:
    import yaml

    (root / "syncline.yaml").write_text(yaml.safe_dump({
        "version": 1,
        "sources": {"drops": {"type": "files", "path": "inbox/*.csv", "primary_key": ["id"], **source}},
        "destinations": {"wh": {"type": "duckdb", "path": "wh.duckdb"}},
        "connections": {"c": {"source": "drops", "destination": "wh", "max_attempts": 1}},
    }))


@pytest.mark.parametrize("require_files", [False, True])
def test_an_emptied_drop_folder_reads_nothing_and_keeps_the_table(tmp_path: Path,
                                                                  require_files: bool) -> None:
    write(tmp_path / "inbox" / "a.csv", CSV)
    _one_stream_workspace(tmp_path, require_files=require_files)
    assert run_sync(tmp_path).status == "succeeded"
    (tmp_path / "inbox" / "a.csv").unlink()  # processed files moved away, as drop folders are
    again = run_sync(tmp_path)
    assert again.error is None and again.rows_read == 0
    assert again.status == ("warning" if require_files else "succeeded")
    notices = [n for s in again.streams for n in s.notices]
    assert notices == (["no file matches 'inbox/*.csv' (require_files: true)"] if require_files else [])
    assert dest_query(tmp_path, "SELECT id, name FROM c.drops ORDER BY id") == [
        (1, "Ana"), (2, "Bo"), (3, "Cé, Jr")]
    write(tmp_path / "inbox" / "b.csv", "id,name,amount,created_at,zip\n4,Di,1,2024-03-01T00:00:00,00001\n")
    assert run_sync(tmp_path).rows_read == 1  # the next drop is read as usual
    assert dest_query(tmp_path, "SELECT count(*) FROM c.drops") == [(4,)]


def test_corrupt_parquet_is_a_source_error_naming_the_file(tmp_path: Path) -> None:
    write(tmp_path / "pq" / "bad.parquet", "this is not parquet")
    source = make(tmp_path, path="pq/*.parquet")
    with pytest.raises(SourceError, match="pq/bad.parquet") as info:
        source.discover()
    assert info.value.fix


def test_several_streams_and_csv_options(tmp_path: Path) -> None:
    write(tmp_path / "a" / "one.txt", "1;x\n2;y\n")
    write(tmp_path / "b" / "two.ndjson", '{"k": "v"}\n')
    source = make(tmp_path, csv={"delimiter": ";", "header": False}, streams={
        "semi": {"path": "a/*.txt", "format": "csv", "primary_key": ["f0"]},
        "events": {"path": "b/*.ndjson"},
    })
    semi, events = source.discover()
    assert (semi.name, semi.primary_key, events.name) == ("semi", ("f0",), "events")
    assert [(r["f0"], r["f1"], r["_line"]) for r in collect(source, semi).rows] == [(1, "x", 1), (2, "y", 2)]
    assert [r["k"] for r in collect(source, events).rows] == ["v"]


@pytest.mark.parametrize("config", [
    {"path": "a/*.csv", "streams": {"s": {"path": "b/*.csv"}}},
    {},
    {"path": "a/*.txt"},
    {"streams": {"s": {"path": "b/*.csv"}}, "primary_key": ["id"]},
    {"path": "a/*.csv", "csv": {"encoding": "utf-16"}},
    {"path": "a/*.csv", "colour": "red"},
])
def test_invalid_configs_are_rejected(config: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        FilesConfig.model_validate({"type": "files", **config})


def _three_part_inbox(root: Path) -> Path:
    """inbox/part0..2.csv (ids 0-2, 10-12, 20-22) and a full-refresh workspace reading them."""
    import yaml

    inbox = root / "inbox"
    inbox.mkdir()
    for n in range(3):
        (inbox / f"part{n}.csv").write_text("id,v\n" + "".join(f"{n * 10 + i},x{i}\n" for i in range(3)))
    (root / "syncline.yaml").write_text(yaml.safe_dump({
        "version": 1,
        "sources": {"drops": {"type": "files", "path": "inbox/*.csv"}},
        "destinations": {"wh": {"type": "duckdb", "path": "wh.duckdb"}},
        "connections": {"c": {"source": "drops", "destination": "wh", "max_attempts": 1,
                              "streams": {"drops": {"mode": "full_refresh", "write": "replace"}}}},
    }))
    return inbox


def test_a_resumed_full_refresh_does_not_reload_committed_files(tmp_path: Path) -> None:
    _three_part_inbox(tmp_path)
    with failpoints_on("after_commit:2=raise"):
        assert run_sync(tmp_path).status == "failed"
    assert run_sync(tmp_path).status == "succeeded"
    assert dest_query(tmp_path, "SELECT count(*), count(DISTINCT id) FROM c.drops") == [(9, 9)]


def test_a_full_refresh_resumed_after_a_file_changed_reads_every_file_again(tmp_path: Path) -> None:
    inbox = _three_part_inbox(tmp_path)
    with failpoints_on("after_commit:2=raise"):  # part0 and part1 are in the half-built table
        assert run_sync(tmp_path).status == "failed"
    (inbox / "part0.csv").write_text("id,v\n0,changed\n1,x1\n")  # a row edited, one removed
    assert run_sync(tmp_path).status == "succeeded"
    assert dest_query(tmp_path, "SELECT id, v FROM c.drops WHERE id < 10 ORDER BY id") == [
        (0, "changed"), (1, "x1")]
    assert dest_query(tmp_path, "SELECT count(*), count(DISTINCT id) FROM c.drops") == [(8, 8)]


def test_a_column_already_loaded_as_text_keeps_the_files_own_text(tmp_path: Path) -> None:
    import yaml

    inbox = tmp_path / "inbox"
    write(inbox / "monday.csv", "id,price\n1,66.00\n2,call us\n")  # text: not every value is a number
    (tmp_path / "syncline.yaml").write_text(yaml.safe_dump({
        "version": 1,
        "sources": {"drops": {"type": "files", "path": "inbox/*.csv"}},
        "destinations": {"wh": {"type": "duckdb", "path": "wh.duckdb"}},
        "connections": {"c": {"source": "drops", "destination": "wh", "max_attempts": 1,
                              "streams": {"drops": {"mode": "incremental", "write": "append"}}}},
    }))
    assert run_sync(tmp_path).status == "succeeded"
    (inbox / "monday.csv").unlink()  # processed files move away: now every price is a number
    write(inbox / "tuesday.csv", "id,price\n3,66.00\n4,12.50\n")
    assert run_sync(tmp_path).status == "succeeded"
    assert dest_query(tmp_path, "SELECT id, price FROM c.drops ORDER BY id") == [
        (1, "66.00"), (2, "call us"), (3, "66.00"), (4, "12.50")]
