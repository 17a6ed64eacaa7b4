"""The connector test kit: it passes on sound sources and names the fault of broken ones."""

from __future__ import annotations

import datetime as dt
import json
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest
import yaml

from syncline.config import load_workspace
from syncline.engine.plan import StreamPlan
from syncline.schema import INT64, Column, StreamSchema
from syncline.sources.base import Source, SourceContext
from syncline.sources.sqlite import SqliteConfig
from syncline.stream import Checkpoint, ReadRequest, StreamItem
from syncline.testkit import CheckResult, exit_status, format_results, run_checks
from syncline.testkit.reading import read_stream

from syncfixtures import make_items

HERE = Path(__file__).parent
EXAMPLE = {"type": "python", "class": "sdk_example:Weather", "path": str(HERE.parent / "sources")}
ORDER = ["config", "check", "discover", "full_read", "second_full_read", "incremental",
         "future_checkpoint", "kill_and_resume"]


@pytest.fixture(autouse=True)
def _restore_sys_path(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sys, "path", list(sys.path))


def workspace(root: Path, source: dict[str, Any], streams: dict[str, Any] | None = None) -> Path:
    doc: dict[str, Any] = {"version": 1, "sources": {"s": source},
                           "destinations": {"wh": {"type": "duckdb", "path": "wh.duckdb"}}}
    if streams is not None:
        doc["connections"] = {"c": {"source": "s", "destination": "wh", "streams": streams}}
    (root / "syncline.yaml").write_text(yaml.safe_dump(doc), encoding="utf-8")
    return root


def broken(name: str) -> dict[str, Any]:
    return {"type": "python", "class": f"broken_connectors:{name}", "path": str(HERE)}


def check(root: Path, **kwargs: Any) -> list[CheckResult]:
    return run_checks(load_workspace(root), "s", **kwargs)


def failed(results: list[CheckResult]) -> dict[str, str]:
    return {r.name: r.detail for r in results if not r.passed}


def by_name(results: list[CheckResult], stream: str) -> dict[str, str]:
    return {r.name: r.detail for r in results if r.stream in (None, stream)}


def test_kit_passes_on_the_sqlite_source(tmp_path: Path) -> None:
    make_items(tmp_path / "src.db", 120)
    results = check(workspace(tmp_path, {"type": "sqlite", "path": "src.db"}), batch_size=25)
    assert failed(results) == {}
    assert [r.name for r in results] == ORDER
    detail = by_name(results, "items")
    assert detail["full_read"] == "120 records, 0 bad, 5 checkpoint(s) (incremental, cursor updated_at)"
    assert detail["second_full_read"] == "the same 120 records again"
    assert detail["incremental"] == "reading from the final checkpoint yielded 0 record(s)"
    assert detail["future_checkpoint"].startswith('a checkpoint beyond the end, {"columns": '
                                                  '["updated_at", "id"], "cursor": "9999-01-01')
    assert detail["kill_and_resume"].startswith("stopped at checkpoint 3 of 5 after 75 records")
    assert detail["kill_and_resume"].endswith("the other 45 arrived, none lost, none twice")


def test_kit_follows_the_connections_stream_settings(tmp_path: Path) -> None:
    make_items(tmp_path / "src.db", 40)
    root = workspace(tmp_path, {"type": "sqlite", "path": "src.db"},
                     streams={"items": {"mode": "full_refresh", "write": "replace"}})
    results = check(root, batch_size=15)
    assert failed(results) == {}
    detail = by_name(results, "items")
    assert detail["incremental"] == "not applicable: the stream is read in full_refresh mode"
    assert detail["future_checkpoint"].startswith('a checkpoint beyond the end, {"after": [4611686018427387904]')


def test_kit_passes_on_the_files_source(tmp_path: Path) -> None:
    (tmp_path / "inbox").mkdir()
    for day in range(3):
        lines = [json.dumps({"id": day * 10 + i, "amount": i * 1.5, "tag": f"t{i}"}) for i in range(10)]
        (tmp_path / "inbox" / f"2026-01-0{day + 1}.jsonl").write_text("\n".join(lines) + "\n")
    results = check(workspace(tmp_path, {"type": "files", "path": "inbox/*.jsonl", "stream": "orders"}))
    assert failed(results) == {}
    detail = by_name(results, "orders")
    assert detail["full_read"] == "30 records, 0 bad, 3 checkpoint(s) (incremental)"
    assert detail["future_checkpoint"].startswith("not applicable: the final checkpoint {\"files\"")
    assert detail["kill_and_resume"].startswith("stopped at checkpoint 2 of 3 after 20 records")


def test_kit_passes_on_the_sdk_example_connector(tmp_path: Path) -> None:
    root = workspace(tmp_path, {**EXAMPLE, "config": {"city": "Lisbon", "days": 3, "per_day": 10}})
    results = check(root, batch_size=4)
    assert failed(results) == {}
    readings, stations = by_name(results, "readings"), by_name(results, "stations")
    assert readings["full_read"] == "30 records, 0 bad, 3 checkpoint(s) (incremental, cursor taken_at)"
    assert readings["future_checkpoint"] == ('a checkpoint beyond the end, {"state": {"after": '
                                             '"9999-03-02T05:00:00Z"}}, yielded nothing')
    assert stations["full_read"] == "3 records, 0 bad, 0 checkpoint(s) (full_refresh)"
    assert stations["kill_and_resume"] == ("not applicable: the read yields no checkpoint, even in "
                                           "batches of 1: a killed read starts over from the previous "
                                           "run's checkpoint")


def test_kit_fails_a_connector_that_loses_a_record_when_resuming(tmp_path: Path) -> None:
    results = check(workspace(tmp_path, broken("LosesOnResume")))
    assert failed(results) == {"kill_and_resume": (
        'stopped at checkpoint 2 of 3 after 20 records and resumed from {"state": {"next": 21}}: '
        '1 record(s) lost, e.g. {id: 21, kind: "view", updated_at: 2026-01-01T00:21:00+00:00}')}


def test_kit_fails_a_connector_whose_second_read_differs(tmp_path: Path) -> None:
    results = check(workspace(tmp_path, broken("Unstable")))
    assert failed(results) == {"second_full_read": (
        "the second full read differs from the first (20 vs 20 records): 1 record(s) of the first are "
        "missing (e.g. {id: 7, score: 71}) and 1 are new (e.g. {id: 7, score: 72}); a re-read "
        "must yield the same records, or verification and resumption cannot be trusted")}


def test_kit_fails_a_connector_that_ignores_its_state(tmp_path: Path) -> None:
    results = check(workspace(tmp_path, broken("RereadsFromStart")))
    problems = failed(results)
    assert sorted(problems) == ["future_checkpoint", "incremental", "kill_and_resume"]
    assert problems["incremental"].startswith(
        'reading from the final checkpoint {"state": {"after": "2026-01-01T00:30:00+00:00"}} yielded 29 '
        "record(s) with updated_at below 2026-01-01T00:30:00+00:00, the largest of the full read, "
        "e.g. {id: 1,")
    assert problems["future_checkpoint"].startswith(
        'a checkpoint beyond the end, {"state": {"after": "9999-01-01T00:30:00+00:00"}}, still yielded '
        "30 record(s)")
    assert problems["kill_and_resume"].startswith(
        'stopped at checkpoint 2 of 3 after 20 records and resumed from {"state": {"after": '
        '"2026-01-01T00:20:00+00:00"}}: 20 record(s) read twice, e.g. {id: 1,')


def test_kit_fails_a_connector_that_leaves_its_last_records_without_state(tmp_path: Path) -> None:
    problems = failed(check(workspace(tmp_path, broken("NoFinalState"))))
    assert sorted(problems) == ["incremental"]
    assert problems["incremental"].startswith(
        "5 record(s) came after the last checkpoint: they are committed under the one before and read "
        "again by the next run; end every read with a checkpoint (SDK: yield State(...) after the last "
        'record); reading from the final checkpoint {"state": {"after": "2026-01-01T00:20:00+00:00"}} '
        "yielded 4 record(s) with updated_at below 2026-01-01T00:25:00+00:00")


def test_a_config_error_stops_the_kit_at_the_config_check(tmp_path: Path) -> None:
    results = check(workspace(tmp_path, {**EXAMPLE, "config": {"days": 2}}))
    assert [(r.name, r.passed) for r in results] == [(n, False) for n in ORDER]
    assert "sources.s.config.city: required key is missing" in results[0].detail
    assert {r.detail for r in results[1:]} == {"not run: config failed"}


def test_a_crashing_read_fails_its_check_with_the_cause(tmp_path: Path) -> None:
    (tmp_path / "conn").mkdir()
    (tmp_path / "conn" / "crashy_testkit_conn.py").write_text(
        "from syncline.sdk import SimpleSource, Stream\n"
        "class Crashy(SimpleSource):\n"
        "    def streams(self):\n"
        "        return [Stream('t', columns={'id': 'int64'})]\n"
        "    def read(self, stream, state):\n"
        "        raise RuntimeError('socket closed')\n")
    results = check(workspace(tmp_path, {"type": "python", "class": "crashy_testkit_conn:Crashy",
                                         "path": "conn"}))
    problems = failed(results)
    assert "crashy_testkit_conn.Crashy.read() raised RuntimeError: socket closed" in problems["full_read"]
    assert problems["kill_and_resume"] == "not run: full_read failed"


def test_discover_fails_without_streams_or_columns(tmp_path: Path) -> None:
    (tmp_path / "conn").mkdir()
    (tmp_path / "conn" / "hollow_testkit_conn.py").write_text(
        "from syncline.sdk import SimpleSource, Stream\n"
        "class Hollow(SimpleSource):\n"
        "    def streams(self):\n"
        "        return [Stream('t', columns={'id': 'int64'}), Stream('empty', columns={})]\n"
        "    def read(self, stream, state):\n"
        "        return []\n"
        "class Nothing(Hollow):\n"
        "    def streams(self):\n"
        "        return []\n"
        "class Fine(Hollow):\n"
        "    def streams(self):\n"
        "        return [Stream('t', columns={'id': 'int64'})]\n")
    source = {"type": "python", "class": "hollow_testkit_conn:Hollow", "path": "conn"}
    assert failed(check(workspace(tmp_path, source)))["discover"] == "stream 'empty' has no columns"
    source["class"] = "hollow_testkit_conn:Nothing"
    assert failed(check(workspace(tmp_path, source)))["discover"] == "the source offers no stream"
    assert failed(check(workspace(tmp_path, {**source, "class": "hollow_testkit_conn:Fine"}),
                        stream="nope"))["discover"] == "no stream named 'nope'; the source offers: t"


class Sloppy(Source):
    """A hand-written source breaking the stream contract in three ways at once."""

    def check(self) -> None:
        pass

    def discover(self) -> list[StreamSchema]:
        return [StreamSchema("t", (Column("id", INT64),), ("id",))]

    def read(self, request: ReadRequest) -> Iterator[StreamItem]:
        yield pa.record_batch({"id": pa.array([1, 2], pa.int32())})
        yield pa.record_batch({"id": pa.array(range(10), pa.int64())})
        yield Checkpoint({"at": dt.datetime(2026, 1, 1)})


def test_full_read_names_schema_batch_size_and_checkpoint_faults(tmp_path: Path) -> None:
    source = Sloppy("s", SqliteConfig(type="sqlite", path="x"), SourceContext(root=str(tmp_path)))
    plan = StreamPlan(source.discover()[0], "full_refresh", "merge", None, ("id",), "t")
    read = read_stream(source, plan, checkpoint=None, batch_size=4)
    assert read.problems == [
        "a batch has schema (id int32) where the stream declares (id int64)",
        "a batch holds 10 rows, more than batch_size 4: memory is no longer bounded by the batch size",
        "checkpoint 1 cannot be stored as JSON: Object of type datetime is not JSON serializable",
    ]


def test_format_results_and_exit_status() -> None:
    results = [CheckResult("config", True, "source 's' (sqlite) is configured"),
               CheckResult("full_read", True, "3 records", "orders"),
               CheckResult("kill_and_resume", False, "1 record(s) lost", "orders")]
    assert format_results(results) == (
        "PASS  config                     source 's' (sqlite) is configured\n"
        "PASS  full_read          orders  3 records\n"
        "FAIL  kill_and_resume    orders  1 record(s) lost\n"
        "2 of 3 checks passed; 1 failed")
    assert exit_status(results) == 1
    assert exit_status(results[:2]) == 0


def test_pytest_fixture_passes_a_sound_connector(tmp_path: Path,
                                                 connector_checks: Callable[..., list[CheckResult]]) -> None:
    root = workspace(tmp_path, {**EXAMPLE, "config": {"city": "Porto", "days": 2, "per_day": 5}})
    assert all(r.passed for r in connector_checks(root, "s", stream="readings"))


def test_connector_checks_fail_the_test_with_every_failed_detail(
        tmp_path: Path, connector_checks: Callable[..., list[CheckResult]]) -> None:
    workspace(tmp_path, broken("RereadsFromStart"))
    with pytest.raises(pytest.fail.Exception) as err:
        connector_checks(tmp_path, "s")
    text = str(err.value)
    assert text.startswith("3 connector check(s) failed for source 's':\nFAIL  incremental")
    assert "FAIL  kill_and_resume    events  stopped at checkpoint 2 of 3" in text
    assert "PASS" not in text
