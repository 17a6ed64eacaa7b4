"""Configuration mistakes a user makes, and the message that must lead them to the fix:
the file, the key path, what was expected. Plus the error tree every message comes from."""

from __future__ import annotations

import datetime as dt
import socket
import sqlite3
from pathlib import Path

import pytest

from syncline.config import load_workspace
from syncline.errors import (
    ConfigurationError,
    ContractError,
    DataError,
    DestinationError,
    IntegrityError,
    InternalError,
    SourceError,
    SynclineError,
    TransientError,
)
from syncline.schedule import Schedule

from syncfixtures import make_items, run_sync, write_ws

SOURCES = """\
version: 1
sources:
  shop:
    type: sqlite
    path: shop.db
destinations:
  wh:
    type: duckdb
    path: wh.duckdb
"""


def workspace(tmp_path: Path, connection: str = "", *, head: str = SOURCES) -> Path:
    """syncline.yaml with the shop source, the wh destination and connection ``c``."""
    text = head + "connections:\n  c:\n    source: shop\n    destination: wh\n" + connection
    (tmp_path / "syncline.yaml").write_text(text, encoding="utf-8")
    return tmp_path


def load_error(root: Path) -> str:
    with pytest.raises(ConfigurationError) as info:
        load_workspace(root)
    return str(info.value)


# -- the file itself ---------------------------------------------------------------------


def test_unknown_key_names_file_key_path_and_fix(tmp_path: Path) -> None:
    workspace(tmp_path, "    streams:\n      orders:\n        mod: full_refresh\n")
    msg = load_error(tmp_path)
    assert msg.startswith("syncline.yaml: connections.c.streams.orders.mod: unknown key 'mod'")
    assert "fix: remove it or check its spelling" in msg


def test_a_broker_that_is_not_redis_or_rabbitmq_is_named_without_its_password(tmp_path: Path) -> None:
    (tmp_path / "syncline.yaml").write_text(
        SOURCES + "broker: http://ops:hunter2@mq.example.com:6379\n", encoding="utf-8")
    msg = load_error(tmp_path)
    assert "syncline.yaml: broker: expected a Redis or RabbitMQ URL" in msg, msg
    assert "hunter2" not in msg
    (tmp_path / "syncline.yaml").write_text(SOURCES + "broker: redis://127.0.0.1:6379/0\n")
    assert load_workspace(tmp_path).broker_url() == "redis://127.0.0.1:6379/0"


def test_unknown_top_level_key(tmp_path: Path) -> None:
    (tmp_path / "syncline.yaml").write_text(SOURCES + "connection: {}\n", encoding="utf-8")
    msg = load_error(tmp_path)
    assert "syncline.yaml: connection: unknown key 'connection'" in msg


def test_missing_required_field(tmp_path: Path) -> None:
    workspace(tmp_path, head=SOURCES.replace("    path: shop.db\n", ""))
    msg = load_error(tmp_path)
    assert "syncline.yaml: sources.shop.path: required key is missing" in msg
    assert "fix: add it" in msg


@pytest.mark.parametrize(
    ("key", "wrong", "allowed"),
    [
        ("mode", "incremantal", ["'full_refresh'", "'incremental'", "'cdc'"]),
        ("write", "upsert", ["'append'", "'merge'", "'replace'"]),
    ],
    ids=["mode", "write"],
)
def test_wrong_enum_value_lists_allowed_values(tmp_path: Path, key: str, wrong: str, allowed: list[str]) -> None:
    workspace(tmp_path, f"    streams:\n      orders:\n        {key}: {wrong}\n")
    msg = load_error(tmp_path)
    assert f"syncline.yaml: connections.c.streams.orders.{key}: got '{wrong}'" in msg
    for value in allowed:
        assert value in msg
    assert "fix:" in msg


def test_unknown_source_type_lists_supported_types(tmp_path: Path) -> None:
    workspace(tmp_path, head=SOURCES.replace("type: sqlite", "type: postgress"))
    msg = load_error(tmp_path)
    assert "syncline.yaml: sources.shop.type: got 'postgress'" in msg
    assert "'sqlite'" in msg and "'files'" in msg
    assert "fix: set `type:` of sources.shop" in msg


def test_unknown_key_inside_a_typed_source(tmp_path: Path) -> None:
    workspace(tmp_path, head=SOURCES.replace("    path: shop.db\n", "    path: shop.db\n    file: x.db\n"))
    assert "syncline.yaml: sources.shop.file: unknown key 'file'" in load_error(tmp_path)


@pytest.mark.parametrize(
    ("key", "defined", "section"),
    [("source", "shop", "sources"), ("destination", "wh", "destinations")],
    ids=["source", "destination"],
)
def test_connection_referencing_an_undefined_name(tmp_path: Path, key: str, defined: str, section: str) -> None:
    text = SOURCES + "connections:\n  c:\n    source: shop\n    destination: wh\n"
    text = text.replace(f"    {key}: {defined}\n", f"    {key}: nowhere\n")
    (tmp_path / "syncline.yaml").write_text(text, encoding="utf-8")
    msg = load_error(tmp_path)
    assert f"syncline.yaml: connections.c.{key}: 'nowhere' is not defined" in msg
    assert f"fix: define it under `{section}:` or use one of: {defined}" in msg


def test_undefined_env_variable_blocks_only_what_opens_that_source(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SHOP_DB_PATH", raising=False)
    monkeypatch.delenv("WH_PORT", raising=False)
    head = SOURCES.replace("path: shop.db", "path: ${env:SHOP_DB_PATH}") + (
        "  pg:\n    type: postgres\n    host: 127.0.0.1\n    port: ${env:WH_PORT}\n"
        "    user: postgres\n    database: test\n")
    workspace(tmp_path, head=head)
    ws = load_workspace(tmp_path)  # status, runs and the other sources keep working
    assert ws.destination("wh").type == "duckdb"  # type: ignore[attr-defined]
    with pytest.raises(ConfigurationError) as info:
        ws.source("shop")
    msg = str(info.value)
    assert ("syncline.yaml: sources.shop.path: environment variable SHOP_DB_PATH is not set on "
            f"{socket.gethostname()}") in msg  # a worker elsewhere says which machine lacks it
    assert "fix: export SHOP_DB_PATH=" in msg
    with pytest.raises(ConfigurationError, match="destinations.pg.port: environment variable "
                       "WH_PORT is not set"):  # not "'${env:WH_PORT}' is not an integer"
        ws.destination("pg")


def test_undefined_env_variable_outside_a_source_fails_the_load(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("META_URL", raising=False)
    workspace(tmp_path, head=SOURCES.replace("version: 1\n", "version: 1\nmetadata: ${env:META_URL}\n"))
    assert "metadata: environment variable META_URL is not set" in load_error(tmp_path)


def test_a_shell_style_reference_is_an_error_suggesting_env(tmp_path: Path,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SHOP_DB_PATH", "/data/shop.db")  # set: the value must still not be used silently
    workspace(tmp_path, head=SOURCES.replace("path: shop.db", "path: ${SHOP_DB_PATH}"))
    msg = load_error(tmp_path)
    assert "syncline.yaml: sources.shop.path: ${SHOP_DB_PATH} is not a reference Syncline reads" in msg
    assert "fix: write ${env:SHOP_DB_PATH} to use the environment variable SHOP_DB_PATH" in msg


def test_set_env_variable_is_substituted(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SHOP_DIR", "/data/shops")
    monkeypatch.setenv("WH_MEMORY", "2GB")
    workspace(tmp_path, head=SOURCES.replace("path: shop.db", "path: ${env:SHOP_DIR}/shop.db")
              .replace("path: wh.duckdb", "path: wh.duckdb\n    memory_limit: ${env:WH_MEMORY}"))
    ws = load_workspace(tmp_path)
    assert ws.sources["shop"].path == "/data/shops/shop.db"  # type: ignore[attr-defined]
    assert ws.destinations["wh"].memory_limit == "2GB"  # type: ignore[attr-defined]


def test_invalid_yaml_names_the_line(tmp_path: Path) -> None:
    lines = SOURCES.splitlines()
    lines.insert(5, "    tables: [orders, customers")  # line 6: an unclosed list
    (tmp_path / "syncline.yaml").write_text("\n".join(lines) + "\n", encoding="utf-8")
    msg = load_error(tmp_path)
    assert msg.startswith("syncline.yaml at line ")
    line = int(msg.split("at line ")[1].split(",")[0])
    assert 6 <= line <= 7  # the parser notices at the end of the list or the next line
    assert "not valid YAML" in msg and "fix:" in msg


def test_top_level_that_is_not_a_mapping(tmp_path: Path) -> None:
    (tmp_path / "syncline.yaml").write_text("- version: 1\n", encoding="utf-8")
    assert "expected a mapping with `version: 1`" in load_error(tmp_path)


@pytest.mark.parametrize("schedule", ["every 5x", "every 0m", "hourly", "61 * * * *"],
                         ids=["bad-unit", "zero-interval", "word", "cron-out-of-range"])
def test_invalid_schedule_shows_the_accepted_forms(tmp_path: Path, schedule: str) -> None:
    workspace(tmp_path, f"    schedule: '{schedule}'\n")
    msg = load_error(tmp_path)
    assert f"syncline.yaml: connections.c.schedule: got '{schedule}'" in msg
    assert "fix:" in msg
    if schedule != "every 0m":
        assert "'manual'" in msg and "0 */6 * * *" in msg


@pytest.mark.parametrize(("key", "value", "expected"), [
    ("schedule_timezone", "Europe/Pariss", "'Europe/Pariss' is not an IANA time zone"),
    ("schedule_jitter", "30 seconds", "'30 seconds' is not a duration"),
])
def test_schedule_timezone_and_jitter_errors_name_the_key(tmp_path: Path, key: str, value: str,
                                                          expected: str) -> None:
    workspace(tmp_path, f"    schedule: '0 9 * * *'\n    {key}: '{value}'\n")
    msg = load_error(tmp_path)
    assert f"syncline.yaml: connections.c.{key}: got '{value}'" in msg and expected in msg


def test_schedule_error_quotes_the_value_as_written(tmp_path: Path) -> None:
    workspace(tmp_path, "    schedule: Every 5X\n")
    msg = load_error(tmp_path)
    assert "'Every 5X' is not a schedule" in msg
    assert "every <N>s|m|h|d" in msg


@pytest.mark.parametrize(
    ("schedule", "after"),
    [
        ("every 15m", dt.datetime(2026, 1, 1, 0, 15, tzinfo=dt.UTC)),
        ("0 */6 * * *", dt.datetime(2026, 1, 1, 6, 0, tzinfo=dt.UTC)),
        ("manual", None),
    ],
    ids=["interval", "cron", "manual"],
)
def test_valid_schedules_load_and_give_the_next_run(tmp_path: Path, schedule: str, after: dt.datetime | None) -> None:
    workspace(tmp_path, f"    schedule: '{schedule}'\n")
    ws = load_workspace(tmp_path)
    assert ws.connections["c"].schedule == schedule
    start = dt.datetime(2026, 1, 1, 0, 0, tzinfo=dt.UTC)
    assert Schedule.parse(ws.connections["c"].schedule).next_after(start) == after


def test_missing_workspace_file_suggests_init(tmp_path: Path) -> None:
    msg = load_error(tmp_path)
    assert f"no syncline.yaml in {tmp_path.resolve()}" in msg
    assert "fix: run `syncline init`" in msg


def test_unknown_connection_lists_the_defined_ones(tmp_path: Path) -> None:
    ws = load_workspace(workspace(tmp_path))
    with pytest.raises(ConfigurationError) as info:
        ws.connection("shop_to_wh")
    assert "no connection named 'shop_to_wh' in syncline.yaml" in str(info.value)
    assert "fix: use one of: c" in str(info.value)


# -- mistakes only a sync can find ---------------------------------------------------------


def sync_error(root: Path) -> ConfigurationError:
    result = run_sync(root)
    assert result.status == "failed"
    assert isinstance(result.error, ConfigurationError), result.error
    assert result.error.connection == "c"
    return result.error


def test_missing_sqlite_file_at_sync_time_is_a_configuration_error(tmp_path: Path) -> None:
    write_ws(tmp_path, None, source_path="data/shop.db")
    err = sync_error(tmp_path)
    assert f"database file {tmp_path / 'data' / 'shop.db'} does not exist" in str(err)
    assert "fix: check `path:` of source 'src'" in str(err)
    assert not (tmp_path / "data").exists()  # the sync did not create anything on the source side


def test_stream_the_source_does_not_have(tmp_path: Path) -> None:
    make_items(tmp_path / "src.db", 3)
    write_ws(tmp_path, {"orders": {}})
    err = str(sync_error(tmp_path))
    assert "connection 'c', stream 'orders': source 'src' has no such stream (renamed or dropped?)" in err
    assert "fix: use discovered streams: items; see `syncline discover src`" in err


def _no_key_table(path: Path) -> None:
    con = sqlite3.connect(path)
    con.execute("CREATE TABLE events (name TEXT, updated_at TIMESTAMP)")
    con.execute("INSERT INTO events VALUES ('a', '2026-01-01 00:00:00')")
    con.commit()
    con.close()


def test_merge_without_primary_key(tmp_path: Path) -> None:
    _no_key_table(tmp_path / "src.db")
    write_ws(tmp_path, {"events": {"mode": "incremental", "write": "merge"}})
    err = sync_error(tmp_path)
    assert err.stream == "events"
    assert "write: merge needs a primary key and the stream has none" in str(err)
    assert "fix: set `primary_key: [col, ...]`, or use write: append" in str(err)


def test_replace_with_incremental(tmp_path: Path) -> None:
    make_items(tmp_path / "src.db", 3)
    write_ws(tmp_path, {"items": {"mode": "incremental", "write": "replace"}})
    err = sync_error(tmp_path)
    assert "connection 'c', stream 'items': write: replace only goes with mode: full_refresh" in str(err)
    assert "fix: use write: merge or append, or mode: full_refresh" in str(err)


def test_cursor_column_that_does_not_exist(tmp_path: Path) -> None:
    make_items(tmp_path / "src.db", 3)
    write_ws(tmp_path, {"items": {"mode": "incremental", "cursor": "modified"}})
    err = str(sync_error(tmp_path))
    assert "stream 'items': cursor column 'modified' does not exist" in err
    assert "fix: use one of: updated_at" in err


def test_incremental_without_any_cursor_candidate(tmp_path: Path) -> None:
    con = sqlite3.connect(tmp_path / "src.db")
    con.execute("CREATE TABLE tags (id INTEGER PRIMARY KEY, name TEXT)")
    con.commit()
    con.close()
    write_ws(tmp_path, {"tags": {"mode": "incremental"}})
    err = str(sync_error(tmp_path))
    assert "incremental mode needs a cursor column" in err
    assert "mode: full_refresh" in err


def test_configuration_error_at_sync_time_writes_nothing(tmp_path: Path) -> None:
    make_items(tmp_path / "src.db", 3)
    write_ws(tmp_path, {"items": {"mode": "incremental", "write": "replace"}})
    sync_error(tmp_path)
    assert not (tmp_path / "wh.duckdb").exists() or _tables(tmp_path / "wh.duckdb") == []


def _tables(path: Path) -> list[str]:
    import duckdb

    con = duckdb.connect(str(path), read_only=True)
    try:
        return [r[0] for r in con.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = 'dst'").fetchall()]
    finally:
        con.close()


# -- the error tree ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("cls", "failure_class", "retryable"),
    [
        (ConfigurationError, "configuration", False),
        (TransientError, "transient", True),
        (SourceError, "source", False),
        (DestinationError, "destination", False),
        (DataError, "data", False),
        (ContractError, "contract", False),
        (InternalError, "internal", False),
        (IntegrityError, "integrity", False),
    ],
    ids=lambda v: v.__name__ if isinstance(v, type) else None,
)
def test_error_classes(cls: type[SynclineError], failure_class: str, retryable: bool) -> None:
    err = cls("something broke", connection="shop_to_wh", stream="orders", fix="do this")
    assert isinstance(err, SynclineError)
    assert err.failure_class == failure_class
    assert err.retryable is retryable
    assert str(err) == "connection 'shop_to_wh', stream 'orders': something broke\n  fix: do this"


def test_integrity_error_is_an_internal_error() -> None:
    with pytest.raises(InternalError):
        raise IntegrityError("rows read and rows committed disagree")


def test_at_fills_in_where_without_overwriting() -> None:
    err = SourceError("cannot read", stream="orders")
    assert str(err) == "stream 'orders': cannot read"
    err.at(connection="c", stream="other")
    assert str(err) == "connection 'c', stream 'orders': cannot read"
    assert err.args == (str(err),)  # what a traceback shows
