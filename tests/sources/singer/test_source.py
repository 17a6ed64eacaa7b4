"""Singer taps as a source: a real tap (tap-jsonl) end to end, and a fake tap for the faults."""

from __future__ import annotations

import datetime as dt
import importlib.util
import json
import os
import stat
import sys
import time
from decimal import Decimal
from pathlib import Path
from types import ModuleType
from typing import Any

import pyarrow as pa
import pytest
import yaml
from typer.testing import CliRunner

from syncline.cli import app as cli
from syncline.errors import ConfigurationError, SourceError, TransientError
from syncline.schema import (
    BOOLEAN,
    DATE,
    FLOAT64,
    INT64,
    JSON,
    STRING,
    TIME,
    TIMESTAMPTZ,
    DataType,
    StreamSchema,
)
from syncline.sources.base import SourceContext
from syncline.sources.singer.schema import map_type
from syncline.sources.singer.source import SingerConfig, SingerSource
from syncline.store.store import MetadataStore
from syncline.stream import Checkpoint, ReadRequest, StreamItem

from syncfixtures import dest_query, failpoints_on, run_sync

REPO = Path(__file__).resolve().parents[2]
FAKE_TAP = Path(__file__).parents[1] / "fake_tap.py"
FAKE = [sys.executable, str(FAKE_TAP)]


def require_tap_jsonl() -> str:
    """Path of the tap-jsonl executable `make test` installs, else skip (or fail if required)."""
    taps = Path(os.environ.get("SYNCLINE_TEST_TAPS", REPO / ".venv-taps"))
    exe = taps / "tap-jsonl" / "bin" / "tap-jsonl"
    if exe.is_file() and os.access(exe, os.X_OK):
        return str(exe)
    reason = f"tap-jsonl is not installed at {exe}; `make test` installs it"
    if os.environ.get("SYNCLINE_REQUIRE_SERVICES") == "1":
        pytest.fail(f"{reason}; SYNCLINE_REQUIRE_SERVICES=1 requires it", pytrace=False)
    pytest.skip(f"{reason} (set SYNCLINE_TEST_TAPS to its .venv-taps folder)")


def fake_tap() -> ModuleType:
    """The fake tap as a module, for the records and catalog it prints."""
    spec = importlib.util.spec_from_file_location("fake_tap", FAKE_TAP)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def source(root: Path, command: Any = None, **settings: Any) -> SingerSource:
    cfg = SingerConfig.model_validate({"type": "singer", "command": command or FAKE, **settings})
    return SingerSource("tap", cfg, SourceContext(root=str(root)))


def write_ws(root: Path, command: Any, tap_config: dict[str, Any], streams: dict[str, Any],
             **extra: Any) -> None:
    doc = {
        "version": 1,
        "sources": {"tap": {"type": "singer", "command": command, "config": tap_config, **extra}},
        "destinations": {"wh": {"type": "duckdb", "path": "wh.duckdb"}},
        "connections": {"c": {"source": "tap", "destination": "wh", "destination_schema": "dst",
                              "max_attempts": 1, "batch_size": 7, "streams": streams}},
    }
    (root / "syncline.yaml").write_text(yaml.safe_dump(doc, allow_unicode=True), encoding="utf-8")


def read_all(src: SingerSource, name: str = "items", checkpoint: dict[str, Any] | None = None,
             batch_size: int = 1000) -> list[StreamItem]:
    stream = {s.name: s for s in src.discover()}[name]
    request = ReadRequest(stream=stream, mode="incremental", checkpoint=checkpoint,
                          batch_size=batch_size)
    return list(src.read(request))


def invocations(log: Path) -> list[dict[str, Any]]:
    lines = [json.loads(line) for line in log.read_text(encoding="utf-8").splitlines()]
    return [i for i in lines if "argv" in i]  # not the line a hanging tap adds


def rows_of(items: list[StreamItem]) -> list[dict[str, Any]]:
    return [r for i in items if isinstance(i, pa.RecordBatch) for r in i.to_pylist()]


# -- JSON Schema to canonical types ----------------------------------------------------------


@pytest.mark.parametrize(("schema", "expected", "nullable"), [
    ({"type": "integer"}, INT64, False),
    ({"type": ["null", "integer"]}, INT64, True),
    ({"type": ["integer", "null", "number"]}, FLOAT64, True),
    ({"type": "number"}, FLOAT64, False),
    ({"type": "number", "multipleOf": 0.01}, DataType("decimal", 38, 2), False),
    ({"type": "number", "multipleOf": 1e-2, "maximum": 1e10, "exclusiveMaximum": True},
     DataType("decimal", 12, 2), False),
    ({"type": "number", "multipleOf": 0.001, "maximum": 1000}, DataType("decimal", 7, 3), False),
    ({"type": "number", "multipleOf": 0.25}, FLOAT64, False),
    ({"type": ["boolean", "null"]}, BOOLEAN, True),
    ({"type": "string", "format": "date-time"}, TIMESTAMPTZ, False),
    ({"type": "string", "format": "date"}, DATE, False),
    ({"type": "string", "format": "time"}, TIME, False),
    ({"type": "string", "format": "email"}, STRING, False),
    ({"type": ["null", "object"], "properties": {}}, JSON, True),
    ({"type": "array", "items": {"type": "integer"}}, JSON, False),
    ({"anyOf": [{"type": "string", "format": "date-time"}, {"type": "null"}]}, TIMESTAMPTZ, True),
    ({"anyOf": [{"type": "integer"}, {"type": "string"}]}, STRING, False),
    ({"type": ["boolean", "string"]}, STRING, False),
    ({}, JSON, True),
], ids=lambda v: json.dumps(v) if isinstance(v, dict) else str(v))
def test_json_schema_maps_to_canonical_types(schema: dict[str, Any], expected: DataType,
                                             nullable: bool) -> None:
    t, null, _ = map_type(schema)
    assert (t, null) == (expected, nullable)


def test_types_that_do_not_widen_become_text_with_a_note() -> None:
    t, _, note = map_type({"type": ["boolean", "string"]})
    assert t == STRING and note is not None and "boolean" in note


# -- a real tap: tap-jsonl -------------------------------------------------------------------

THINGS = [
    {"id": 1, "name": "Zoë Ångström", "price": 1.5, "active": True,
     "meta": {"k": [1, "ü"], "deep": {"x": None}}, "ts": "2025-01-01T00:00:00Z"},
    {"id": 2, "name": None, "price": 2.25, "active": False, "meta": None,
     "ts": "2025-01-02T00:00:00+02:00"},
    {"id": 3, "name": "東京 🎉", "price": None, "active": None, "meta": {"a": 1}, "ts": None},
    {"id": 4, "name": 'quote "x"\nnewline', "price": -0.125, "active": True, "meta": {"l": []},
     "ts": "2024-02-29T23:59:59.123456Z"},
]


def jsonl_workspace(root: Path, exe: str) -> None:
    (root / "data").mkdir()
    for name, part in (("a", THINGS[:2]), ("b", THINGS[2:])):
        (root / "data" / f"{name}.jsonl").write_text(
            "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in part), encoding="utf-8")
    write_ws(root, exe, {"path": str(root / "data" / "*.jsonl"), "stream_name": "things",
                         "primary_keys": ["id"]}, {"things": {"write": "merge"}})


def test_discovery_of_a_real_tap_gives_streams_types_and_key(tmp_path: Path) -> None:
    exe = require_tap_jsonl()
    jsonl_workspace(tmp_path, exe)
    src = source(tmp_path, exe, config={"path": "data/*.jsonl", "stream_name": "things",
                                        "primary_keys": ["id"]})
    src.check()
    [things] = src.discover()
    assert things.name == "things"
    types = {c.name: c.type for c in things.columns}
    assert {k: types[k] for k in ("id", "name", "price", "active", "meta", "ts")} == {
        "id": INT64, "name": STRING, "price": FLOAT64, "active": BOOLEAN, "meta": JSON,
        "ts": TIMESTAMPTZ}
    assert things.primary_key == ("id",)
    assert "_sdc_last_modified" in things.cursor_candidates


def loaded_things(root: Path) -> list[tuple[Any, ...]]:
    rows = dest_query(root, "SELECT id, name, price, active, meta, ts FROM dst.things ORDER BY id")
    return [(*r[:4], None if r[4] is None else json.loads(r[4]),
             None if r[5] is None else r[5].astimezone(dt.UTC)) for r in rows]


def expected_things() -> list[tuple[Any, ...]]:
    def ts(v: str | None) -> dt.datetime | None:
        return None if v is None else dt.datetime.fromisoformat(v.replace("Z", "+00:00")).astimezone(dt.UTC)
    return [(r["id"], r["name"], r["price"], r["active"], r["meta"], ts(r["ts"])) for r in THINGS]


def test_real_tap_syncs_into_duckdb_row_by_row_with_its_state(tmp_path: Path) -> None:
    jsonl_workspace(tmp_path, require_tap_jsonl())
    first = run_sync(tmp_path)
    assert first.status == "succeeded", first.error
    assert first.rows_committed == len(THINGS)
    assert loaded_things(tmp_path) == expected_things()
    [(text,)] = dest_query(tmp_path, "SELECT state FROM dst._syncline_state WHERE stream = 'things'")
    singer_state = json.loads(text)["source"]["singer_state"]
    partitions = singer_state["bookmarks"]["things"]["partitions"]
    assert sorted(p["context"]["_sdc_filename"] for p in partitions) == [
        str(tmp_path / "data" / "a.jsonl"), str(tmp_path / "data" / "b.jsonl")]
    # tap-jsonl sends every row again even with --state: merge on the key keeps each once
    second = run_sync(tmp_path)
    assert second.status == "succeeded", second.error
    assert loaded_things(tmp_path) == expected_things()
    assert dest_query(tmp_path, "SELECT count(*) FROM dst.things") == [(len(THINGS),)]


# -- the fake tap: state, selection, faults --------------------------------------------------


def test_second_run_passes_the_committed_state_and_reads_only_new_records(tmp_path: Path) -> None:
    log = tmp_path / "argv.log"
    write_ws(tmp_path, FAKE, {"records": 20, "state_every": 5, "log": str(log)},
             {"items": {"write": "append"}}, env={"FAKE_TAP_MARK": "from-env"})
    assert run_sync(tmp_path).rows_committed == 20
    write_ws(tmp_path, FAKE, {"records": 26, "state_every": 5, "log": str(log)},
             {"items": {"write": "append"}}, env={"FAKE_TAP_MARK": "from-env"})
    second = run_sync(tmp_path)
    assert second.status == "succeeded", second.error
    assert second.rows_read == 6
    assert dest_query(tmp_path, "SELECT count(*), count(DISTINCT id), max(id) FROM dst.items") == [
        (26, 26, 25)]
    syncs = [i for i in invocations(log) if "--discover" not in i["argv"]]
    assert [("--state" in i["argv"], i["state"]) for i in syncs] == [
        (False, {}), (True, {"bookmarks": {"items": {"offset": 20}}})]
    assert {i["mark"] for i in syncs} == {"from-env"}
    catalog = {e["tap_stream_id"]: e for e in syncs[0]["catalog"]["streams"]}
    top = {k: [m["metadata"] for m in e["metadata"] if m["breadcrumb"] == []][0]
           for k, e in catalog.items()}
    assert (top["items"]["selected"], top["other"]["selected"]) == (True, False)
    props = [m for m in catalog["items"]["metadata"] if m["breadcrumb"][:1] == ["properties"]]
    assert len(props) == 8 and all(m["metadata"]["selected"] for m in props)


def test_fake_tap_rows_arrive_with_their_types(tmp_path: Path) -> None:
    write_ws(tmp_path, FAKE, {"records": 12, "state_every": 4}, {"items": {"write": "merge"}})
    assert run_sync(tmp_path).status == "succeeded"
    rows = dest_query(tmp_path, "SELECT id, name, amount, ratio, active, meta, born, updated "
                                "FROM dst.items ORDER BY id")
    expected = []
    for i in range(12):
        r = fake_tap().item(i)
        expected.append((i, r["name"], None if r["amount"] is None else Decimal(str(r["amount"])),
                         r["ratio"], r["active"], r["meta"], dt.date.fromisoformat(r["born"]),
                         dt.datetime.fromisoformat(r["updated"])))
    got = [(*r[:5], None if r[5] is None else json.loads(r[5]), r[6], r[7].astimezone(dt.UTC))
           for r in rows]
    assert got == expected


def test_state_is_committed_with_exactly_the_rows_before_it(tmp_path: Path) -> None:
    items = read_all(source(tmp_path, config={"records": 10, "state_every": 3}), batch_size=4)
    seen, marks = 0, []
    for i in items:
        if isinstance(i, pa.RecordBatch):
            assert i.num_rows <= 4
            seen += i.num_rows
        elif isinstance(i, Checkpoint):
            offset = i.value["singer_state"]["bookmarks"]["items"]["offset"]
            assert offset == seen  # never a row after its STATE, never one missing before it
            marks.append(offset)
    assert seen == 10 and marks[-1] == 10


def test_tap_dying_mid_stream_keeps_rows_up_to_its_last_state_and_a_rerun_completes(
        tmp_path: Path) -> None:
    tap = {"records": 50, "state_every": 10, "fail_after": 35}
    write_ws(tmp_path, FAKE, tap, {"items": {"write": "append"}})
    failed = run_sync(tmp_path)
    assert failed.status == "failed" and isinstance(failed.error, SourceError)
    assert "exited with code 1" in str(failed.error)
    assert "lost the connection to the API after 35 records" in str(failed.error)
    assert dest_query(tmp_path, "SELECT count(*), max(id) FROM dst.items") == [(30, 29)]
    with MetadataStore(f"sqlite:///{tmp_path / '.syncline' / 'metadata.db'}") as store:
        said = [(line.stream, line.message) for line in store.run_logs().read(failed.run_id)]
    assert ("items", "tap: fake-tap: lost the connection to the API after 35 records") in said, said
    write_ws(tmp_path, FAKE, {"records": 50, "state_every": 10}, {"items": {"write": "append"}})
    resumed = run_sync(tmp_path)
    assert resumed.status == "succeeded", resumed.error
    assert resumed.rows_read == 20
    assert dest_query(tmp_path, "SELECT count(*), count(DISTINCT id), min(id), max(id) "
                                "FROM dst.items") == [(50, 50, 0, 49)]


def test_tap_killed_by_a_signal_is_transient(tmp_path: Path) -> None:
    src = source(tmp_path, config={"records": 30, "state_every": 10, "kill_self_after": 15})
    items: list[StreamItem] = []
    with pytest.raises(TransientError, match="killed by SIGKILL"):
        for i in src.read(ReadRequest(stream=src.discover()[0], mode="incremental")):
            items.append(i)
    assert len(rows_of(items)) == 10  # only the rows its last STATE covered
    assert isinstance(items[-1], Checkpoint)


@pytest.mark.parametrize(("malformed", "why"), [
    ("this is {not json", "is not JSON"),
    ('["a", "list"]', "is not a Singer message"),
    ('{"type": "RECORD", "stream": "items"}', "is a RECORD without a `record` object"),
    ('{"type": "STATE", "value": 3}', "is a STATE without a `value` object"),
], ids=["not-json", "not-an-object", "record-without-record", "state-without-value"])
def test_malformed_output_fails_naming_the_line(tmp_path: Path, malformed: str, why: str) -> None:
    src = source(tmp_path, config={"records": 10, "state_every": 3, "malformed_after": 4,
                                   "malformed": malformed})
    items: list[StreamItem] = []
    with pytest.raises(SourceError, match=f"line 8 of the tap's output {why}"):
        # lines: SCHEMA, ACTIVATE_VERSION, 3 records, STATE, 1 record, then the bad one
        for i in src.read(ReadRequest(stream=src.discover()[0], mode="incremental")):
            items.append(i)
    assert [r["id"] for r in rows_of(items)] == [0, 1, 2]  # what its STATE covered is kept
    assert isinstance(items[-1], Checkpoint)


def test_batch_messages_are_refused_with_a_fix(tmp_path: Path) -> None:
    with pytest.raises(SourceError, match="BATCH message") as err:
        read_all(source(tmp_path, config={"batch": True}))
    assert "batch_config" in str(err.value)


def test_records_of_other_streams_are_ignored(tmp_path: Path) -> None:
    items = read_all(source(tmp_path, config={"records": 5, "noise": True}))
    assert [r["id"] for r in rows_of(items)] == [0, 1, 2, 3, 4]


def test_bad_values_are_quarantined_and_unknown_fields_reported_once(tmp_path: Path) -> None:
    rows = [{"id": 1, "name": "ok", "surprise": 1}, {"id": "one", "name": "bad id"},
            {"id": 3, "born": "not a date", "surprise": 2}, {"id": 4, "amount": 1.234}]
    write_ws(tmp_path, FAKE, {"rows": rows}, {"items": {"write": "merge"}})
    result = run_sync(tmp_path)
    assert result.status == "warning", result.error
    assert (result.rows_read, result.rows_committed, result.rows_quarantined) == (4, 1, 3)
    notices = [n for s in result.streams for n in s.notices]
    assert len(notices) == 2 and "surprise" in notices[0] and "3 rows quarantined" in notices[1]
    errors = dest_query(tmp_path, "SELECT error FROM dst._syncline_quarantine ORDER BY error")
    assert [e.split(":")[0] for (e,) in errors] == ["column amount", "column born", "column id"]


def test_no_tap_process_is_left_when_the_consumer_stops_early(tmp_path: Path) -> None:
    log = tmp_path / "argv.log"
    src = source(tmp_path, config={"records": 100, "hang_after": 3, "log": str(log)})
    reader = src.read(ReadRequest(stream=src.discover()[0], mode="incremental"))
    started = time.monotonic()
    first = next(reader)  # the 3 rows its STATE covers, after one quiet second
    assert isinstance(first, pa.RecordBatch) and first.num_rows == 3
    [pid] = [i["pid"] for i in invocations(log) if "--discover" not in i["argv"]]
    os.kill(pid, 0)  # still running, asleep
    reader.close()
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)
    assert time.monotonic() - started < 10


def test_command_string_with_a_relative_path_and_properties_flag(tmp_path: Path) -> None:
    (tmp_path / "taps").mkdir()
    script = tmp_path / "taps" / "fake-tap"
    script.write_text(f"#!{sys.executable}\n" + FAKE_TAP.read_text(encoding="utf-8"), encoding="utf-8")
    script.chmod(script.stat().st_mode | stat.S_IXUSR)
    log = tmp_path / "argv.log"
    src = source(tmp_path, "taps/fake-tap --verbose", config={"records": 3, "log": str(log)},
                 catalog_flag="--properties", streams=["items"])
    assert [s.name for s in src.discover()] == ["items"]
    assert len(rows_of(read_all(src))) == 3
    sync = [i for i in invocations(log) if "--discover" not in i["argv"]][0]
    assert sync["argv"][0] == "--verbose" and "--properties" in sync["argv"]


def test_catalog_file_replaces_discovery(tmp_path: Path) -> None:
    (tmp_path / "catalog.json").write_text(json.dumps(fake_tap().CATALOG), encoding="utf-8")
    log = tmp_path / "argv.log"
    src = source(tmp_path, config={"records": 2, "log": str(log)}, catalog="catalog.json")
    streams: list[StreamSchema] = src.discover()
    assert [s.name for s in streams] == ["items", "other"]
    assert not log.exists()  # the tap was never asked to discover


def test_configuration_errors_name_the_problem(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match="not in PATH"):
        source(tmp_path, "tap-that-does-not-exist-anywhere").check()
    with pytest.raises(ConfigurationError, match="does not exist or is not executable"):
        source(tmp_path, "./missing-tap").check()
    with pytest.raises(ConfigurationError, match="has no stream nope"):
        source(tmp_path, streams=["nope"]).discover()


def test_failing_discovery_quotes_the_taps_stderr(tmp_path: Path) -> None:
    bad = tmp_path / "bad-tap"
    bad.write_text("#!/bin/sh\necho 'config is missing api_key' >&2\nexit 2\n", encoding="utf-8")
    bad.chmod(0o755)
    with pytest.raises(SourceError, match="exited with code 2 during discovery") as err:
        source(tmp_path, str(bad)).discover()
    assert "config is missing api_key" in str(err.value)
    with pytest.raises(SourceError, match="config is missing api_key"):  # `check` runs the tap
        source(tmp_path, str(bad)).check()



def test_a_tap_failing_on_a_wrong_setting_shows_its_own_error_first_and_the_setting(
        tmp_path: Path) -> None:
    write_ws(tmp_path, FAKE, {"database": "shop_prod", "password": "hunter2"},
             {"items": {"write": "merge"}})
    for command in ("check", "sync"):
        done = CliRunner().invoke(cli.app, [command, "c", "-w", str(tmp_path), "--json"])
        assert done.exit_code == 1, done.output
        doc = json.loads(done.stdout)
        [failed] = [o for o in doc if o["kind"] == "source"] if command == "check" else [doc]
        message = failed["message"] if command == "check" else failed["failure_message"]
        first, fix = message.split("\n  fix: ")
        assert first.removeprefix("connection 'c': ").startswith("source 'tap': the tap exited with code 1 during discovery "
                                '(--discover): OperationalError: connection to server at '
                                '"127.0.0.1", port 5432 failed: FATAL:  database "shop_prod" does '
                                "not exist (raised at "), first
        assert first.endswith("in connect); the error quotes setting `database` ('shop_prod')"), first
        assert "Traceback" not in message and "hunter2" not in message + fix, message
        assert fix.startswith("check the tap's settings under `sources.tap.config`, starting with "
                              "`database`"), fix


def test_a_real_tap_failing_on_its_config_shows_the_exception_not_the_traceback(
        tmp_path: Path) -> None:
    with pytest.raises(SourceError) as err:
        source(tmp_path, require_tap_jsonl(), config={"path": 5, "stream_name": "things"}).discover()
    text = str(err.value)
    assert ": TypeError: expected str, bytes or os.PathLike object, not int (raised at " in text, text
    assert "Traceback" not in text and "^^^" not in text, text


def test_no_tap_process_is_left_when_the_engine_fails_mid_stream(tmp_path: Path) -> None:
    log = tmp_path / "argv.log"
    write_ws(tmp_path, FAKE, {"records": 100, "hang_after": 3, "log": str(log)},
             {"items": {"write": "append"}})
    with failpoints_on("after_staging:1=raise"):
        failed = run_sync(tmp_path)
    assert failed.status == "failed"
    [pid] = [i["pid"] for i in invocations(log) if "--discover" not in i["argv"]]
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)


def test_discovery_that_hangs_is_stopped_and_transient(tmp_path: Path) -> None:
    slow = tmp_path / "slow-tap"
    slow.write_text("#!/bin/sh\nsleep 30\n", encoding="utf-8")
    slow.chmod(0o755)
    started = time.monotonic()
    with pytest.raises(TransientError, match="did not finish within 0.5s"):
        source(tmp_path, str(slow), discover_timeout_s=0.5).discover()
    assert time.monotonic() - started < 5


def test_full_refresh_runs_the_tap_without_state_and_rebuilds_the_table(tmp_path: Path) -> None:
    log = tmp_path / "argv.log"
    write_ws(tmp_path, FAKE, {"records": 10, "state_every": 4, "log": str(log)},
             {"items": {"write": "append"}})
    assert run_sync(tmp_path).rows_committed == 10
    rebuilt = run_sync(tmp_path, full_refresh=True)
    assert rebuilt.status == "succeeded", rebuilt.error
    assert rebuilt.rows_read == 10
    assert dest_query(tmp_path, "SELECT count(*), count(DISTINCT id) FROM dst.items") == [(10, 10)]
    syncs = [i for i in invocations(log) if "--discover" not in i["argv"]]
    assert ["--state" in i["argv"] for i in syncs] == [False, False]


def test_a_tap_that_cannot_start_is_a_configuration_error(tmp_path: Path) -> None:
    script = tmp_path / "no-shebang-tap"
    script.write_text("echo hi\n", encoding="utf-8")  # executable, but no #! line
    script.chmod(0o755)
    with pytest.raises(ConfigurationError, match="cannot start the tap"):
        source(tmp_path, str(script)).discover()


def _catalog_without_replication_keys(root: Path) -> str:
    catalog = json.loads(json.dumps(fake_tap().CATALOG))
    for entry in catalog["streams"]:
        for item in entry["metadata"]:
            item["metadata"].pop("valid-replication-keys", None)
    (root / "catalog.json").write_text(json.dumps(catalog), encoding="utf-8")
    return "catalog.json"


def test_a_stream_without_a_replication_key_is_planned_as_a_full_refresh(tmp_path: Path) -> None:
    catalog = _catalog_without_replication_keys(tmp_path)
    write_ws(tmp_path, FAKE, {"records": 10, "full_table": True}, {"items": {}}, catalog=catalog)
    checked = CliRunner().invoke(cli.app, ["check", "c", "-w", str(tmp_path), "--json"])
    [plan] = json.loads(checked.stdout)[-1]["plan"]
    assert (plan["mode"], plan["write"]) == ("full_refresh", "merge")
    assert run_sync(tmp_path).rows_committed == 10
    write_ws(tmp_path, FAKE, {"records": 8, "full_table": True}, {"items": {}}, catalog=catalog)
    second = run_sync(tmp_path)  # the last two items are gone at the source
    assert second.status == "succeeded", second.error
    assert dest_query(tmp_path, "SELECT id FROM dst.items WHERE _syncline_deleted ORDER BY id") == [
        (8,), (9,)]


def test_incremental_without_a_cursor_or_replication_key_is_refused_with_the_fix(tmp_path: Path) -> None:
    catalog = _catalog_without_replication_keys(tmp_path)
    write_ws(tmp_path, FAKE, {"records": 3}, {"items": {"mode": "incremental"}}, catalog=catalog)
    result = run_sync(tmp_path)
    assert result.status == "failed" and result.error is not None
    assert "would read the whole stream again on every run" in str(result.error)
    assert "name a `cursor:` for this stream" in str(result.error)
    write_ws(tmp_path, FAKE, {"records": 3}, {"items": {"mode": "incremental", "cursor": "updated"}},
             catalog=catalog)
    assert run_sync(tmp_path).status == "succeeded"
