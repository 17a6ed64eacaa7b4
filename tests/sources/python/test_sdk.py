"""Custom Python sources (syncline.sdk): full and incremental syncs, crashes, config, registration."""

from __future__ import annotations

import datetime as dt
import json
import sys
import textwrap
import uuid
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
import pytest
import yaml

from syncline.config import load_workspace
from syncline.errors import ConfigurationError, SourceError
from syncline.schema import INT64, JSON, TIMESTAMPTZ, Column, StreamSchema
from syncline.sources.python.records import arrow_to_items
from syncline.sources.registry import build_source
from syncline.stream import Checkpoint, ReadRequest

from syncfixtures import dest_query, failpoints_on, run_sync

HERE = Path(__file__).parents[1]  # tests/sources, where sdk_example.py is
EXAMPLE = {"type": "python", "class": "sdk_example:Weather", "path": str(HERE)}


@pytest.fixture(autouse=True)
def _restore_sys_path(monkeypatch: pytest.MonkeyPatch) -> None:
    # the python source adds `path:` folders to sys.path; keep each test's additions to itself
    monkeypatch.setattr(sys, "path", list(sys.path))


def example() -> Any:
    sys.path.insert(0, str(HERE))
    import sdk_example

    return sdk_example


def write_ws(root: Path, source: dict[str, Any], *, streams: Any = None, batch_size: int = 1000,
             max_attempts: int = 1) -> Path:
    conn: dict[str, Any] = {"source": "w", "destination": "wh", "destination_schema": "dst",
                            "batch_size": batch_size, "max_attempts": max_attempts}
    if streams is not None:
        conn["streams"] = streams
    doc = {"version": 1, "sources": {"w": source},
           "destinations": {"wh": {"type": "duckdb", "path": "wh.duckdb"}}, "connections": {"c": conn}}
    (root / "syncline.yaml").write_text(yaml.safe_dump(doc), encoding="utf-8")
    return root


def readings(root: Path) -> list[dict[str, Any]]:
    """Rows of dst.readings as the connector yielded them (same value forms), ordered by id."""
    con = duckdb.connect(str(root / "wh.duckdb"), read_only=True)
    try:
        con.execute("SET TimeZone = 'UTC'")
        rows = con.execute("SELECT id, city, taken_at, temperature, rain, wind, note "
                           "FROM dst.readings ORDER BY id").fetchall()
    finally:
        con.close()
    return [{"id": r[0], "city": r[1], "taken_at": r[2].astimezone(dt.UTC).isoformat().replace("+00:00", "Z"),
             "temperature": r[3], "rain": r[4], "wind": json.loads(r[5]), "note": r[6]} for r in rows]


def expected(city: str, n: int) -> list[dict[str, Any]]:
    return [example().reading(city, i) for i in range(1, n + 1)]


def connector_module(root: Path, body: str) -> str:
    """Write a connector module under root/connectors with a unique name; returns the name."""
    name = f"conn_{uuid.uuid4().hex[:10]}"
    (root / "connectors").mkdir(exist_ok=True)
    (root / "connectors" / f"{name}.py").write_text(textwrap.dedent(body), encoding="utf-8")
    return name


def test_full_sync_lands_every_record_row_by_row(tmp_path: Path) -> None:
    write_ws(tmp_path, {**EXAMPLE, "config": {"city": "Lisbon", "days": 2}}, batch_size=10)
    result = run_sync(tmp_path)
    assert result.status == "succeeded", result.error
    assert {s.stream: (s.mode, s.write, s.rows_committed) for s in result.streams} == {
        "readings": ("incremental", "merge", 48), "stations": ("full_refresh", "merge", 3)}
    assert readings(tmp_path) == expected("Lisbon", 48)
    assert dest_query(tmp_path, "SELECT code, name, lat, elevation_m FROM dst.stations ORDER BY code") == [
        ("FAO", "Faro Airport", 37.01, 7), ("LIS", "Lisbon Airport", 38.77, 114),
        ("OPO", "Porto Airport", 41.24, 70)]
    types = dict(dest_query(tmp_path, "SELECT column_name, data_type FROM information_schema.columns "
                                      "WHERE table_schema = 'dst' AND table_name IN ('readings', 'stations')"))
    assert {k: v for k, v in types.items() if not k.startswith("_syncline")} == {
        "id": "BIGINT", "city": "VARCHAR", "taken_at": "TIMESTAMP WITH TIME ZONE", "temperature": "DOUBLE",
        "rain": "BOOLEAN", "wind": "JSON", "note": "VARCHAR",
        "code": "VARCHAR", "name": "VARCHAR", "lat": "DOUBLE", "elevation_m": "INTEGER"}


def test_incremental_run_gets_the_state_and_reads_only_newer_records(tmp_path: Path) -> None:
    write_ws(tmp_path, {**EXAMPLE, "config": {"city": "Porto", "days": 2}}, streams=["readings"])
    assert run_sync(tmp_path).rows_committed == 48
    write_ws(tmp_path, {**EXAMPLE, "config": {"city": "Porto", "days": 3}}, streams=["readings"])
    second = run_sync(tmp_path)
    assert second.status == "succeeded", second.error
    assert second.rows_read == 24  # the day the API gained, nothing older
    assert readings(tmp_path) == expected("Porto", 72)
    state = dest_query(tmp_path, "SELECT state FROM dst._syncline_state WHERE stream = 'readings'")
    assert json.loads(state[0][0])["source"] == {"state": {"after": "2026-03-03T23:00:00Z"}}
    # a full refresh passes no state: everything is read again
    again = run_sync(tmp_path, full_refresh=True)
    assert again.rows_read == 72 and readings(tmp_path) == expected("Porto", 72)


def test_crash_between_states_then_clean_run_lands_every_record_once(tmp_path: Path) -> None:
    source = {**EXAMPLE, "config": {"city": "Faro", "days": 4, "per_day": 10}}
    write_ws(tmp_path, source, streams={"readings": {"write": "merge"}}, batch_size=1000)
    with failpoints_on("after_commit:2=raise"):
        crashed = run_sync(tmp_path)
    assert crashed.status == "failed" and crashed.error is not None
    assert dest_query(tmp_path, "SELECT count(*) FROM dst.readings") == [(20,)]  # two pages committed
    resumed = run_sync(tmp_path)
    assert resumed.status == "succeeded", resumed.error
    assert resumed.rows_read == 20  # from the second state on, not from the start
    assert dest_query(tmp_path, "SELECT count(*), count(DISTINCT id) FROM dst.readings") == [(40, 40)]
    assert readings(tmp_path) == expected("Faro", 40)


def test_killed_full_refresh_resumes_its_build_from_the_last_state(tmp_path: Path) -> None:
    source = {**EXAMPLE, "config": {"city": "Faro", "days": 4, "per_day": 10}}
    write_ws(tmp_path, source, streams={"readings": {"mode": "full_refresh", "write": "replace"}})
    with failpoints_on("after_commit:3=raise"):
        assert run_sync(tmp_path).status == "failed"
    resumed = run_sync(tmp_path)
    assert resumed.status == "succeeded", resumed.error
    assert resumed.rows_read == 10  # the build continues after its third page
    assert readings(tmp_path) == expected("Faro", 40)


def test_batches_hold_at_most_batch_size_rows_and_states_become_checkpoints(tmp_path: Path) -> None:
    write_ws(tmp_path, {**EXAMPLE, "config": {"city": "Lisbon", "days": 2, "per_day": 10}})
    source = build_source("w", load_workspace(tmp_path).source("w"), str(tmp_path))
    stream = source.discover()[0]
    items = list(source.read(ReadRequest(stream=stream, mode="incremental", batch_size=4)))
    shape = [i.value["state"]["after"] if isinstance(i, Checkpoint) else i.num_rows for i in items]
    assert shape == [4, 4, 2, "2026-03-01T09:00:00Z", 4, 4, 2, "2026-03-01T19:00:00Z"]
    resumed = list(source.read(ReadRequest(stream=stream, mode="incremental", batch_size=4,
                                           checkpoint={"state": {"after": "2026-03-01T09:00:00Z"}})))
    assert [r["id"] for i in resumed if not isinstance(i, Checkpoint) for r in i.to_pylist()] == \
        list(range(11, 21))


def test_records_that_do_not_fit_are_quarantined_not_dropped(tmp_path: Path) -> None:
    module = connector_module(tmp_path, """
        import pyarrow as pa
        from syncline.sdk import SimpleSource, State, Stream

        class Payments(SimpleSource):
            def streams(self):
                return [Stream("payments", primary_key=["id"],
                               columns={"id": "int64", "amount": "decimal(10,2)"})]

            def read(self, stream, state):
                yield {"id": 1, "amount": "1.50"}
                yield {"id": 2, "amount": "lots"}
                yield {"id": 3, "amount": 2, "currency": "EUR"}
                yield pa.table({"id": [4, 5], "amount": ["7.25", "7.255"]})
                yield State({"done": True})
    """)
    write_ws(tmp_path, {"type": "python", "class": f"{module}:Payments", "path": "connectors"})
    result = run_sync(tmp_path)
    assert result.status == "warning", result.error  # rows quarantined
    assert (result.rows_read, result.rows_committed, result.rows_quarantined) == (5, 2, 3)
    assert dest_query(tmp_path, "SELECT id, amount::VARCHAR FROM dst.payments ORDER BY id") == [
        (1, "1.50"), (4, "7.25")]
    reasons = [r[0] for r in dest_query(tmp_path, "SELECT error FROM dst._syncline_quarantine ORDER BY 1")]
    assert len(reasons) == 3
    assert any("currency" in r and "not in the stream's columns" in r for r in reasons)
    assert sum("column amount" in r for r in reasons) == 2


def test_arrow_data_is_cast_to_the_stream_schema_and_invalid_json_set_apart() -> None:
    schema = StreamSchema("t", (Column("id", INT64), Column("meta", JSON), Column("at", TIMESTAMPTZ)))
    table = pa.table({"meta": ['{"a": 1}', "{oops", None], "id": pa.array([1, 2, 3], pa.int32())})
    items = list(arrow_to_items(table, schema, batch_size=10))
    assert [type(i).__name__ for i in items] == ["BadRecord", "RecordBatch"]
    assert items[0].record == {"id": 2, "meta": "{oops", "at": None} and "column meta" in items[0].error
    assert items[1].schema == schema.arrow_schema()
    assert items[1].to_pylist() == [{"id": 1, "meta": '{"a": 1}', "at": None},
                                    {"id": 3, "meta": None, "at": None}]
    nested = pa.table({"id": [1], "meta": [{"a": [1, 2]}]})  # a struct column becomes JSON text
    assert [b.to_pylist() for b in arrow_to_items(nested, schema, 10)] == [
        [{"id": 1, "meta": '{"a": [1, 2]}', "at": None}]]


def test_connector_exceptions_fail_the_stream_naming_class_stream_and_cause(tmp_path: Path) -> None:
    module = connector_module(tmp_path, """
        from syncline.sdk import SimpleSource, State, Stream, TransientError

        class Flaky(SimpleSource):
            def streams(self):
                return [Stream("events", primary_key=["id"], columns={"id": "int64"}),
                        Stream("busy", columns={"id": "int64"})]

            def read(self, stream, state):
                yield {"id": 1}
                if stream == "busy":
                    raise TransientError("the API answered 503")
                raise KeyError("cursor")
    """)
    write_ws(tmp_path, {"type": "python", "class": f"{module}:Flaky", "path": "connectors"},
             streams=["events"])
    result = run_sync(tmp_path)
    assert result.status == "failed" and isinstance(result.error, SourceError)
    text = str(result.error)
    assert f"{module}.Flaky.read() raised KeyError: 'cursor'" in text
    assert "stream 'events'" in text and f"{module}.py:" in text
    write_ws(tmp_path, {"type": "python", "class": f"{module}:Flaky", "path": "connectors"},
             streams=["busy"], max_attempts=2)
    busy = run_sync(tmp_path)
    assert busy.attempts == 2 and busy.error is not None  # passed through as transient: retried
    assert busy.error.failure_class == "transient" and "503" in str(busy.error)


def test_config_is_validated_by_the_class_config_model(tmp_path: Path) -> None:
    write_ws(tmp_path, {**EXAMPLE, "config": {"citty": "Lisbon", "days": "lots"}})
    ws = load_workspace(tmp_path)
    with pytest.raises(ConfigurationError) as err:
        build_source("w", ws.source("w"), str(tmp_path))
    text = str(err.value)
    assert "sources.w.config.city: required key is missing" in text
    assert "sources.w.config.citty: unknown key" in text
    assert "sources.w.config.days: got 'lots'" in text
    write_ws(tmp_path, {**EXAMPLE, "config": {}})
    result = run_sync(tmp_path)
    assert result.status == "failed" and isinstance(result.error, ConfigurationError)
    assert result.error.fix == ("add `city:` under sources.w.config "
                                "(City whose readings are replicated.)")
    # a Config that would ignore unknown keys still never lets a typo fall back to a default
    module = connector_module(tmp_path, """
        from pydantic import BaseModel
        from syncline.sdk import SimpleSource

        class Lenient(SimpleSource):
            class Config(BaseModel):
                limit: int = 5

            def streams(self):
                return []

            def read(self, stream, state):
                return []
    """)
    write_ws(tmp_path, {"type": "python", "class": f"{module}:Lenient", "path": "connectors",
                        "config": {"limt": 3}})
    with pytest.raises(ConfigurationError, match=r"sources\.w\.config\.limt: unknown key\n"
                                                 r"  fix: remove it; Lenient takes: limit"):
        build_source("w", load_workspace(tmp_path).source("w"), str(tmp_path))


def test_unknown_class_module_is_a_configuration_error(tmp_path: Path) -> None:
    write_ws(tmp_path, {"type": "python", "class": "no_such_connector_mod:Weather"})
    result = run_sync(tmp_path)
    assert isinstance(result.error, ConfigurationError) and result.attempts == 1
    assert "sources.w.class: no module named 'no_such_connector_mod'" in str(result.error)
    write_ws(tmp_path, {**EXAMPLE, "class": "sdk_example:Wether", "config": {"city": "x"}})
    with pytest.raises(ConfigurationError, match=r"has no 'Wether'\n  fix: use one of its sources: Weather"):
        build_source("w", load_workspace(tmp_path).source("w"), str(tmp_path))
    write_ws(tmp_path, {"type": "python", "class": "nope"})
    with pytest.raises(ConfigurationError, match=r"sources\.w\.class: got 'nope'"):
        load_workspace(tmp_path)


def test_installed_connector_is_found_by_its_entry_point(tmp_path: Path,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    site = tmp_path / "site"
    dist = site / "weather_connector-1.0.dist-info"
    dist.mkdir(parents=True)
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: weather-connector\nVersion: 1.0\n")
    (dist / "entry_points.txt").write_text("[syncline.sources]\nweather = sdk_example:Weather\n")
    monkeypatch.syspath_prepend(str(site))
    monkeypatch.syspath_prepend(str(HERE))  # where the entry point's module is importable
    root = tmp_path / "ws"
    root.mkdir()
    write_ws(root, {"type": "weather", "config": {"city": "Braga", "days": 1}}, streams=["readings"])
    result = run_sync(root)
    assert result.status == "succeeded", result.error
    assert readings(root) == expected("Braga", 24)
    write_ws(root, {"type": "weather", "config": {"town": "Braga"}})
    with pytest.raises(ConfigurationError, match=r"sources\.w\.config\.town: unknown key"):
        build_source("w", load_workspace(root).source("w"), str(root))
    write_ws(root, {"type": "wether"})
    with pytest.raises(ConfigurationError) as err:
        load_workspace(root)
    assert "sources.w.type: got 'wether'; expected one of" in str(err.value)
    assert "'python'" in str(err.value) and "'weather'" in str(err.value)
