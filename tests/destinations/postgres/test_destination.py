"""SQLite → PostgreSQL on a real server: rows, types, merge, replace, evolution, quarantine, crashes."""

from __future__ import annotations

import datetime as dt
import json
import os
import secrets
import signal
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import psycopg
import pyarrow as pa
import pytest
import yaml
from psycopg import sql

from syncline import failpoints
from syncline.config import load_workspace
from syncline.destinations.base import LoadTarget
from syncline.destinations.postgres import loader as postgres_loader
from syncline.destinations.postgres.destination import (
    PostgresDestination,
    PostgresDestinationConfig,
)
from syncline.errors import (
    ConcurrencyError,
    ConfigurationError,
    DestinationError,
    TransientError,
)
from syncline.schema import Column, DataType, StreamSchema
from syncline.store.store import MetadataStore

from services import require_postgres
from syncfixtures import (
    expected_items,
    failpoints_on,
    item_row,
    make_items,
    run_sync,
)

DSN = "host=127.0.0.1 port=5432 user=postgres dbname=test"
ITEM_COLUMNS = "id, name, price, ratio, active, meta, born, created, updated_at"


@pytest.fixture
def schema() -> Iterator[str]:
    """A destination schema of this test alone, dropped at the end."""
    require_postgres()
    name = f"syncline_test_{secrets.token_hex(4)}"
    yield name
    with psycopg.connect(DSN, autocommit=True) as con:
        con.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(name)))


def write_ws(root: Path, schema: str, streams: dict[str, Any], *, batch_size: int = 1000,
             max_attempts: int = 1) -> Path:
    doc = {
        "version": 1,
        "sources": {"src": {"type": "sqlite", "path": "src.db"}},
        "destinations": {"wh": {"type": "postgres", "dsn": DSN}},
        "connections": {"c": {
            "source": "src", "destination": "wh", "destination_schema": schema, "streams": streams,
            "batch_size": batch_size, "max_attempts": max_attempts,
        }},
    }
    (root / "syncline.yaml").write_text(yaml.safe_dump(doc), encoding="utf-8")
    return root


def pg(query: str | sql.Composable, params: list[Any] | None = None) -> list[tuple[Any, ...]]:
    with psycopg.connect(DSN, autocommit=True) as con:
        con.execute("SET TIME ZONE 'UTC'")
        cur = con.execute(query, params)  # type: ignore[arg-type]
        return cur.fetchall() if cur.description else []


def pg_items(schema: str, where: str = "") -> list[tuple[Any, ...]]:
    return pg(sql.SQL("SELECT {} FROM {} {} ORDER BY id").format(
        sql.SQL(ITEM_COLUMNS), sql.Identifier(schema, "items"), sql.SQL(where)))


def count_and_distinct(schema: str, table: str = "items") -> tuple[Any, ...]:
    return pg(sql.SQL("SELECT count(*), count(DISTINCT id) FROM {}").format(
        sql.Identifier(schema, table)))[0]


def update_items(path: Path, ids: list[int], version: int) -> None:
    con = sqlite3.connect(path)
    for i in ids:
        con.execute("DELETE FROM items WHERE id = ?", [i])
        con.execute("INSERT INTO items VALUES (?,?,?,?,?,?,?,?,?)", item_row(i, version=version))
    con.commit()
    con.close()


INCREMENTAL_MERGE = {"items": {"mode": "incremental", "write": "merge", "cursor": "updated_at"}}


def test_full_refresh_lands_every_row_with_exact_types(tmp_path: Path, schema: str) -> None:
    make_items(tmp_path / "src.db", 500)
    write_ws(tmp_path, schema, {"items": {"mode": "full_refresh", "write": "replace"}}, batch_size=64)
    result = run_sync(tmp_path)
    assert result.status == "succeeded", result.error
    assert result.rows_read == result.rows_committed == 500
    assert pg_items(schema) == list(expected_items(tmp_path / "src.db").values())
    types = dict(pg("SELECT a.attname, format_type(a.atttypid, a.atttypmod) FROM pg_attribute a "
                    "WHERE a.attrelid = to_regclass(%s) AND a.attnum > 0 AND NOT a.attisdropped",
                    [f"{schema}.items"]))
    assert types == {
        "id": "bigint", "name": "text", "price": "numeric(10,2)", "ratio": "double precision",
        "active": "boolean", "meta": "jsonb", "born": "date", "created": "timestamp with time zone",
        "updated_at": "timestamp without time zone",
        "_syncline_synced_at": "timestamp with time zone", "_syncline_deleted": "boolean",
    }
    assert pg(sql.SQL("SELECT count(*) FROM {} WHERE _syncline_deleted OR _syncline_synced_at IS NULL")
              .format(sql.Identifier(schema, "items"))) == [(0,)]
    assert run_sync(tmp_path).status == "succeeded"  # a second full refresh replaces
    assert count_and_distinct(schema) == (500, 500)
    assert pg("SELECT count(*) FROM pg_tables WHERE schemaname = %s AND tablename LIKE %s",
              [schema, "%building"]) == [(0,)]


def test_incremental_merge_picks_up_updates_and_inserts_once(tmp_path: Path, schema: str) -> None:
    db = tmp_path / "src.db"
    make_items(db, 300)
    write_ws(tmp_path, schema, INCREMENTAL_MERGE, batch_size=50)
    assert run_sync(tmp_path).rows_committed == 300
    update_items(db, [3, 150, 299], version=1)
    update_items(db, [150], version=2)  # updated twice between syncs: the latest version wins
    con = sqlite3.connect(db)
    con.executemany("INSERT INTO items VALUES (?,?,?,?,?,?,?,?,?)",
                    [item_row(i, version=1) for i in range(301, 306)])
    con.commit()
    con.close()
    second = run_sync(tmp_path)
    assert second.status == "succeeded", second.error
    assert second.rows_read == 9  # 3 updated, 5 new, and the checkpoint's cursor value again
    assert pg_items(schema) == list(expected_items(db).values())
    assert pg_items(schema, "WHERE id = 150")[0][5]["v"] == 2
    assert count_and_distinct(schema) == (305, 305)
    third = run_sync(tmp_path)
    assert third.status == "succeeded" and third.rows_read == 1  # only that value again
    assert count_and_distinct(schema) == (305, 305)


@pytest.mark.parametrize("spill", [False, True], ids=["copy-into-table", "spilled-to-stage"])
def test_append_keeps_every_version(tmp_path: Path, schema: str, spill: bool,
                                    monkeypatch: pytest.MonkeyPatch) -> None:
    if spill:
        monkeypatch.setattr(postgres_loader, "SPILL_BYTES", 1)
    db = tmp_path / "src.db"
    make_items(db, 20)
    write_ws(tmp_path, schema, {"items": {"mode": "incremental", "write": "append",
                                          "cursor": "updated_at"}})
    run_sync(tmp_path)
    update_items(db, [5], version=1)
    assert run_sync(tmp_path).rows_committed == 1
    assert [r[0] for r in pg_items(schema, "WHERE id = 5")] == [5, 5]
    assert count_and_distinct(schema) == (21, 20)
    assert pg_items(schema, "WHERE id <> 5") == [
        row for i, row in expected_items(db).items() if i != 5]
    dest = PostgresDestination("wh", PostgresDestinationConfig(type="postgres", dsn=DSN), ".")
    try:  # what `syncline verify` reads: every live row, or the latest version of each key
        every = list(dest.scan(schema, "items", ["id", "updated_at"], None, 7))
        latest = pa.Table.from_batches(
            dest.scan(schema, "items", ["id", "updated_at"], (("id",), "updated_at"), 7))
    finally:
        dest.close()
    assert len(every) == 3 and sum(b.num_rows for b in every) == 21
    assert latest.num_rows == 20 and latest.schema.field("updated_at").type == pa.timestamp("us")
    newest = dict(zip(latest.column("id").to_pylist(), latest.column("updated_at").to_pylist()))
    assert newest[5] == expected_items(db)[5][8]


def test_append_after_merge_rebuilds_the_table_without_its_key(
        tmp_path: Path, schema: str) -> None:
    make_items(tmp_path / "src.db", 10)
    write_ws(tmp_path, schema, INCREMENTAL_MERGE)
    assert run_sync(tmp_path).status == "succeeded"
    write_ws(tmp_path, schema, {"items": {**INCREMENTAL_MERGE["items"], "write": "append"}})
    rebuilt = run_sync(tmp_path)
    assert rebuilt.status == "warning", rebuilt.error  # said so, in the run's notices
    assert "rebuilt by a full refresh" in rebuilt.streams[0].notices[0]
    assert count_and_distinct(schema) == (10, 10)
    update_items(tmp_path / "src.db", [1, 2], version=1)
    assert run_sync(tmp_path).status == "succeeded"  # appends new versions: no key refuses them
    assert count_and_distinct(schema) == (12, 10)


@pytest.mark.parametrize("point", ["in_commit:3=raise", "in_swap:1=raise"])
def test_failed_full_refresh_keeps_yesterdays_table_then_resumes(
        tmp_path: Path, schema: str, point: str) -> None:
    db = tmp_path / "src.db"
    make_items(db, 200)
    write_ws(tmp_path, schema, {"items": {"mode": "full_refresh", "write": "replace"}}, batch_size=20)
    assert run_sync(tmp_path).status == "succeeded"
    before = pg_items(schema)
    update_items(db, list(range(1, 201)), version=1)
    with failpoints_on(point):
        failed = run_sync(tmp_path)
    assert failed.status == "failed" and failed.error is not None
    assert failed.error.failure_class == "transient"
    assert pg_items(schema) == before  # readers still see yesterday's complete table
    resumed = run_sync(tmp_path)
    assert resumed.status == "succeeded", resumed.error
    assert resumed.rows_read < 200  # resumed from the committed key position
    assert pg_items(schema) == list(expected_items(db).values())


def test_bad_values_are_quarantined_and_counted(tmp_path: Path, schema: str) -> None:
    db = tmp_path / "src.db"
    make_items(db, 30)
    con = sqlite3.connect(db)
    con.execute("UPDATE items SET born = 'not a date' WHERE id = 7")
    con.execute("UPDATE items SET name = ? WHERE id = 8", ["nul\x00byte"])  # PostgreSQL refuses NUL
    con.commit()
    con.close()
    write_ws(tmp_path, schema, INCREMENTAL_MERGE)
    result = run_sync(tmp_path)
    assert result.status == "warning", result.error  # rows quarantined
    assert (result.rows_read, result.rows_committed, result.rows_quarantined) == (30, 28, 2)
    bad = sorted(pg(sql.SQL("SELECT stream, record, error FROM {}").format(
        sql.Identifier(schema, "_syncline_quarantine"))), key=lambda b: b[1])
    records = [json.loads(b[1]) for b in bad]
    assert [(b[0], r["id"]) for b, r in zip(bad, records)] == [("items", 7), ("items", 8)]
    assert records[1]["name"] == "nul\x00byte"  # stored as it came
    assert "born" in bad[0][2] and "NUL" in bad[1][2]
    assert [r[0] for r in pg_items(schema, "WHERE id IN (7, 8)")] == []


@pytest.mark.parametrize("table", ["made-with-primary-key", "made-by-hand-without-key"])
def test_merge_keeps_the_latest_staged_version_and_newer_destination_rows(
        schema: str, table: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(postgres_loader, "SPILL_BYTES", 1)  # every write goes through the stage
    if table == "made-by-hand-without-key":  # merged by DELETE + INSERT, no ON CONFLICT
        pg(sql.SQL("CREATE SCHEMA {0}; CREATE TABLE {1} (k bigint, v text, b bytea, ts bigint)")
           .format(sql.Identifier(schema), sql.Identifier(schema, "kv")))
    stream = StreamSchema("kv", (Column("k", DataType("int64")), Column("v", DataType("string")),
                                 Column("b", DataType("binary")), Column("ts", DataType("int64"))),
                          primary_key=("k",))
    dest = PostgresDestination("wh", PostgresDestinationConfig(type="postgres", dsn=DSN), ".")
    target = LoadTarget(connection="c", schema=schema, table="kv", stream=stream, write="merge",
                        primary_key=("k",), cursor="ts", build_beside=False, run_id=1)

    def batch(rows: list[tuple[Any, ...]]) -> pa.RecordBatch:
        return pa.RecordBatch.from_pylist([dict(zip(["k", "v", "b", "ts"], r)) for r in rows],
                                          schema=stream.arrow_schema())

    try:
        loader = dest.loader(target)
        loader.write(batch([(1, "a1", None, 1), (2, "b5", b"\x00\xff,\"\n", 5)]))
        loader.write(batch([(1, "a2", b"", 2), (3, "", None, 1), (4, None, None, 1),
                            (5, "", b"x", 1)]))
        first = loader.commit({"n": 1})  # key 1's first version is superseded, not written
        assert (first.rows, first.skipped, first.added) == (5, 1, 5)
        loader.write(batch([(2, "b-old", None, 4), (3, "c2", None, 2)]))  # key 2: the table's is newer
        second = loader.commit({"n": 2})
        assert (second.rows, second.skipped, second.added) == (1, 1, 0)
        loader.finish({"n": 3})
        assert dest.query(f'SELECT k, v, b FROM "{schema}".kv ORDER BY k') == [
            (1, "a2", b""), (2, "b5", b"\x00\xff,\"\n"), (3, "c2", None), (4, None, None),
            (5, "", b"x")]
        assert dest.read_state(schema, "kv") == {"n": 3}
        assert dest.query(f'SELECT count(*) FROM "{schema}".kv WHERE _syncline_synced_at IS NULL '
                          "OR _syncline_deleted IS NULL") == [(0,)]
    finally:
        dest.close()


@pytest.mark.parametrize("cursor", ["ts", None], ids=["tied-cursor", "no-cursor"])
@pytest.mark.parametrize("table", ["made-with-primary-key", "made-by-hand-without-key"])
def test_the_last_staged_version_of_a_key_wins_within_one_commit(
        schema: str, table: str, cursor: str | None, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(postgres_loader, "SPILL_BYTES", 1)  # every write goes through the stage
    if table == "made-by-hand-without-key":
        pg(sql.SQL("CREATE SCHEMA {0}; CREATE TABLE {1} (k bigint, v text, ts bigint)")
           .format(sql.Identifier(schema), sql.Identifier(schema, "kv")))
    stream = StreamSchema("kv", (Column("k", DataType("int64")), Column("v", DataType("string")),
                                 Column("ts", DataType("int64"))), primary_key=("k",))
    dest = PostgresDestination("wh", PostgresDestinationConfig(type="postgres", dsn=DSN), ".")
    target = LoadTarget(connection="c", schema=schema, table="kv", stream=stream, write="merge",
                        primary_key=("k",), cursor=cursor, build_beside=False, run_id=1)

    def batch(rows: list[tuple[Any, ...]]) -> pa.RecordBatch:
        return pa.RecordBatch.from_pylist([dict(zip(["k", "v", "ts"], r)) for r in rows],
                                          schema=stream.arrow_schema())

    try:
        loader = dest.loader(target)
        loader.write(batch([(1, "first", 1), (2, "only", 1)]))
        loader.write(batch([(1, "second", 1)]))
        loader.write(batch([(1, "third", 1)]))
        loader.commit({"n": 1})
        loader.write(batch([(2, "again-1", 2), (2, "again-2", 2)]))
        loader.commit({"n": 2})
        loader.finish({"n": 3})
        assert dest.query(f'SELECT k, v, ts FROM "{schema}".kv ORDER BY k') == [
            (1, "third", 1), (2, "again-2", 2)]
    finally:
        dest.close()


AWKWARD: dict[str, tuple[str, list[Any]]] = {
    "s": ("string", ["", None, 'a,"b"\nc\r\nd\\e', "東京 🎉", "NULL", "\\N"]),
    "j": ("json", ['{"a": [1, "ü", {"b": null}], "q": "\\"x\\""}', None, "[]", '"text"', "1.5",
                   "{}"]),
    "d": ("decimal(38,10)", [Decimal("1234567890123456789012345678.0123456789"),
                             Decimal("-0.0000000001"), None, Decimal("0E-10"), Decimal("1.0000000000"),
                             Decimal("-9.9000000000")]),
    "f": ("float64", [float("inf"), float("-inf"), 1e-300, 0.1, None, 1 / 3]),
    "i": ("int64", [-(2**63), 2**63 - 1, 0, None, -1, 1]),
    "n": ("int32", [-(2**31), 2**31 - 1, None, 0, 7, -7]),
    "b": ("boolean", [True, False, None, True, False, None]),
    "dt": ("date", [dt.date(1, 1, 1), dt.date(9999, 12, 31), None, dt.date(2024, 2, 29),
                    dt.date(1970, 1, 1), dt.date(2000, 1, 1)]),
    "tm": ("time", [dt.time(0, 0), dt.time(23, 59, 59, 999999), None, dt.time(12, 0, 0, 1),
                    dt.time(1, 2, 3), dt.time(0, 0, 0, 500000)]),
    "ts": ("timestamp", [dt.datetime(1, 1, 1), dt.datetime(9999, 12, 31, 23, 59, 59, 999999), None,
                         dt.datetime(2026, 3, 29, 2, 30), dt.datetime(1970, 1, 1, 0, 0, 0, 1),
                         dt.datetime(2000, 2, 29, 12)]),
    "tz": ("timestamptz", [dt.datetime(1970, 1, 1, 0, 0, 0, 1, tzinfo=dt.UTC), None,
                           dt.datetime(2026, 3, 29, 1, 30, tzinfo=dt.UTC),
                           dt.datetime(1, 1, 1, tzinfo=dt.UTC),
                           dt.datetime(9999, 12, 31, 23, 59, 59, 999999, tzinfo=dt.UTC),
                           dt.datetime(2026, 10, 25, 1, 0, 0, 123456, tzinfo=dt.UTC)]),
    "by": ("binary", [b"", b"\x00\\,\"\n\xff", None, b"plain", b"\r", bytes(range(256))]),
}


def test_awkward_values_round_trip_exactly(schema: str) -> None:
    stream = StreamSchema("odd", tuple(Column(k, DataType.parse(t)) for k, (t, _) in AWKWARD.items()))
    rows = [dict(zip(AWKWARD, values)) for values in zip(*(v for _, v in AWKWARD.values()))]
    dest = PostgresDestination("wh", PostgresDestinationConfig(type="postgres", dsn=DSN), ".")
    target = LoadTarget(connection="c", schema=schema, table="odd", stream=stream, write="append",
                        primary_key=(), cursor=None, build_beside=False, run_id=1)
    try:
        loader = dest.loader(target)
        loader.write(pa.RecordBatch.from_pylist(rows, schema=stream.arrow_schema()))
        assert loader.commit({}).rows == len(rows)
        got = dest.query(f'SELECT {", ".join(AWKWARD)} FROM "{schema}".odd ORDER BY i NULLS LAST')
    finally:
        dest.close()
    expected = sorted(rows, key=lambda r: (r["i"] is None, r["i"] or 0))
    for row, want in zip(got, expected):
        assert dict(zip(AWKWARD, row)) == {k: json.loads(v) if k == "j" and v else v
                                           for k, v in want.items()}


def test_columns_of_tables_syncline_did_not_make_map_to_canonical_types(schema: str) -> None:
    pg(sql.SQL("CREATE SCHEMA {}; CREATE TABLE {} (a smallint, b real, c varchar(10), d numeric, "
               "e numeric(12,3), f uuid, g timetz, h json, i bytea, j int)").format(
        sql.Identifier(schema), sql.Identifier(schema, "t")))
    dest = PostgresDestination("wh", PostgresDestinationConfig(type="postgres", dsn=DSN), ".")
    try:
        columns = dest.table_columns(schema, "t")
        assert columns is not None
        assert {k: str(v) for k, v in columns.items()} == {
            "a": "int32", "b": "float64", "c": "string", "d": "float64", "e": "decimal(12,3)",
            "f": "uuid", "g": "time", "h": "json", "i": "binary", "j": "int32"}
        assert dest.table_columns(schema, "missing") is None
    finally:
        dest.close()


def test_a_run_whose_lease_was_taken_over_cannot_commit(schema: str) -> None:
    stream = StreamSchema("kv", (Column("k", DataType("int64")),), primary_key=("k",))
    dest = PostgresDestination("wh", PostgresDestinationConfig(type="postgres", dsn=DSN), ".")
    newer = PostgresDestination("wh", PostgresDestinationConfig(type="postgres", dsn=DSN), ".")
    try:
        dest.fence(schema, "c", 1)
        loader = dest.loader(LoadTarget(connection="c", schema=schema, table="kv", stream=stream,
                                        write="merge", primary_key=("k",), cursor=None,
                                        build_beside=False, run_id=1, fence_token=1))
        loader.write(pa.RecordBatch.from_pylist([{"k": 1}], schema=stream.arrow_schema()))
        assert loader.commit({"n": 1}).rows == 1
        newer.fence(schema, "c", 2)  # another worker took the lease over
        loader.write(pa.RecordBatch.from_pylist([{"k": 2}], schema=stream.arrow_schema()))
        with pytest.raises(ConcurrencyError, match="stale"):
            loader.commit({"n": 2})
        with pytest.raises(ConcurrencyError, match="newer run"):
            dest.fence(schema, "c", 1)
        assert dest.query(f'SELECT k FROM "{schema}".kv') == [(1,)]
        assert dest.read_state(schema, "kv") == {"n": 1}
    finally:
        dest.close()
        newer.close()


@pytest.fixture
def role() -> Iterator[str]:
    """A login role without privileges, dropped at the end."""
    require_postgres()
    name = f"syncline_role_{secrets.token_hex(4)}"
    pg(sql.SQL("CREATE ROLE {} LOGIN").format(sql.Identifier(name)))
    yield name
    pg(sql.SQL("DROP OWNED BY {0}; DROP ROLE {0}").format(sql.Identifier(name)))


def test_missing_privileges_fail_with_a_grant_to_run_and_a_granted_schema_suffices(
        schema: str, role: str) -> None:
    stream = StreamSchema("kv", (Column("k", DataType("int64")),), primary_key=("k",))
    target = LoadTarget(connection="c", schema=schema, table="kv", stream=stream, write="merge",
                        primary_key=("k",), cursor=None, build_beside=False, run_id=1)
    config = PostgresDestinationConfig(type="postgres", dsn=f"{DSN} user={role}")
    dest = PostgresDestination("wh", config, ".")
    try:
        with pytest.raises(DestinationError) as caught:
            dest.loader(target)
        assert caught.value.fix is not None and f"TO {role}" in caught.value.fix
        assert "permission denied" in str(caught.value)
        pg(sql.SQL("CREATE SCHEMA {0}; GRANT USAGE, CREATE ON SCHEMA {0} TO {1}").format(
            sql.Identifier(schema), sql.Identifier(role)))
        loader = dest.loader(target)  # no CREATE on the database needed once the schema exists
        loader.write(pa.RecordBatch.from_pylist([{"k": 1}], schema=stream.arrow_schema()))
        assert loader.commit({"n": 1}).rows == 1
    finally:
        dest.close()


def test_lost_connection_mid_commit_is_retried_without_duplicates(
        tmp_path: Path, schema: str, monkeypatch: pytest.MonkeyPatch) -> None:
    db = tmp_path / "src.db"
    make_items(db, 100)
    write_ws(tmp_path, schema, INCREMENTAL_MERGE, batch_size=25, max_attempts=2)
    real = failpoints.failpoint
    hits: list[str] = []

    def cut_connection(name: str) -> None:
        if name == "in_commit" and len(hits) < 2:
            hits.append(name)
            if len(hits) == 2:  # the server goes away inside the second commit
                killed = pg("SELECT pg_terminate_backend(pid) FROM pg_locks WHERE relation = "
                            "to_regclass(%s) AND mode = 'RowExclusiveLock'", [f"{schema}.items"])
                assert killed == [(True,)]
        real(name)

    monkeypatch.setattr(postgres_loader, "failpoint", cut_connection)
    result = run_sync(tmp_path)
    assert result.status == "succeeded", result.error
    assert result.attempts == 2
    assert pg_items(schema) == list(expected_items(db).values())


def test_connection_errors_never_show_the_password(tmp_path: Path) -> None:
    config = PostgresDestinationConfig(type="postgres", host="127.0.0.1", port=1, user="u",
                                       password="s3cret-pw", database="test", connect_timeout_s=2)
    with pytest.raises(TransientError) as caught:
        PostgresDestination("wh", config, str(tmp_path)).check()
    assert "s3cret-pw" not in str(caught.value) and "127.0.0.1:1/test" in str(caught.value)
    assert "s3cret-pw" not in repr(config)
    both = PostgresDestinationConfig(type="postgres", dsn="postgresql://u:s3cret-pw@h/db", port=5)
    with pytest.raises(ConfigurationError, match="both `dsn:` and") as caught_both:
        PostgresDestination("wh", both, str(tmp_path)).check()
    assert "s3cret-pw" not in str(caught_both.value)
    numeric = PostgresDestinationConfig.model_validate(  # YAML reads `password: 123456` as a number
        {"type": "postgres", "database": "test", "password": 123456})
    assert numeric.password is not None and numeric.password.get_secret_value() == "123456"


ROWS = 200_000
BATCH = 20_000


def _make_events(path: Path) -> None:
    con = sqlite3.connect(path)
    con.execute("CREATE TABLE events (id INTEGER PRIMARY KEY, version INTEGER NOT NULL, "
                "payload TEXT, updated_at TIMESTAMP NOT NULL)")
    con.executemany("INSERT INTO events VALUES (?, 0, ?, ?)",
                    ((i, f"payload-{i}-é", f"2026-01-01 00:{(i // 6000) % 60:02d}:{(i // 100) % 60:02d}")
                     for i in range(1, ROWS + 1)))
    con.commit()
    con.close()


def _sync_process(root: Path, failpoint: str | None) -> int:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SYNCLINE_")}
    env["SYNCLINE_RETRY_BASE_S"] = "0"
    if failpoint:
        env["SYNCLINE_FAILPOINTS"] = failpoint
    proc = subprocess.run([sys.executable, "-m", "syncline", "sync", "c", "--workspace", str(root)],
                          env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, timeout=300)
    if failpoint is None:
        assert proc.returncode == 0, proc.stderr.decode()
    return proc.returncode


@pytest.mark.slow
def test_sigkilled_syncs_then_a_clean_run_land_every_row_exactly_once(
        tmp_path: Path, schema: str) -> None:
    source = tmp_path / "src.db"
    _make_events(source)
    write_ws(tmp_path, schema, {"events": {"mode": "incremental", "write": "merge",
                                           "cursor": "updated_at"}}, batch_size=BATCH)
    table = sql.Identifier(schema, "events")
    for n, point in enumerate(["in_commit:2=kill", "after_commit:3=kill"], start=1):
        assert _sync_process(tmp_path, point) == -signal.SIGKILL, point
        assert pg(sql.SQL("SELECT count(*) - count(DISTINCT id) FROM {}").format(table)) == [(0,)]
        con = sqlite3.connect(source)  # the source moves on between runs
        con.execute("UPDATE events SET version = ?, updated_at = ? WHERE id BETWEEN ? AND ?",
                    [n, f"2026-02-0{n} 00:00:00", n * 50_000, n * 50_000 + 9_999])
        con.commit()
        con.close()
    _sync_process(tmp_path, None)
    rows = pg(sql.SQL("SELECT id, version FROM {}").format(table))
    assert len(rows) == len({r[0] for r in rows}) == ROWS
    con = sqlite3.connect(source)
    assert dict(rows) == dict(con.execute("SELECT id, version FROM events"))
    con.close()


@pytest.mark.slow
def test_sigkilled_history_syncs_keep_each_version_once(tmp_path: Path, schema: str) -> None:
    source = tmp_path / "src.db"
    _make_events(source)
    write_ws(tmp_path, schema, {"events": {"mode": "incremental", "write": "history",
                                           "cursor": "updated_at"}}, batch_size=BATCH)
    table = sql.Identifier(schema, "events")
    assert _sync_process(tmp_path, None) == 0  # every row's first version
    for n, point in enumerate(["in_commit:1=kill", "after_commit:1=kill"], start=1):
        con = sqlite3.connect(source)  # the source moves on before each killed run
        con.execute("UPDATE events SET version = ?, updated_at = ? WHERE id BETWEEN ? AND ?",
                    [n, f"2026-02-0{n} 00:00:00", n * 50_000, n * 50_000 + 9_999])
        con.commit()
        con.close()
        assert _sync_process(tmp_path, point) == -signal.SIGKILL, point
    _sync_process(tmp_path, None)
    # every version once: the 200,000 first ones and the 20,000 updates, none twice
    assert pg(sql.SQL("SELECT count(*), count(DISTINCT (id, version)) FROM {}").format(table)) == [
        (ROWS + 20_000, ROWS + 20_000)]
    current = dict(pg(sql.SQL("SELECT id, version FROM {} WHERE _syncline_is_current").format(table)))
    con = sqlite3.connect(source)
    assert current == dict(con.execute("SELECT id, version FROM events"))
    con.close()
    gaps = pg(sql.SQL("SELECT count(*) FROM (SELECT _syncline_valid_to, lead(_syncline_valid_from) "
                      "OVER (PARTITION BY id ORDER BY _syncline_valid_from) AS nxt FROM {}) v "
                      "WHERE nxt IS NOT NULL AND nxt <> _syncline_valid_to").format(table))
    assert gaps == [(0,)]


@pytest.mark.slow
def test_sigkilled_full_refresh_keeps_the_old_table_until_the_swap(
        tmp_path: Path, schema: str) -> None:
    source = tmp_path / "src.db"
    _make_events(source)
    write_ws(tmp_path, schema, {"events": {"mode": "full_refresh", "write": "replace"}},
             batch_size=BATCH)
    _sync_process(tmp_path, None)
    summary = sql.SQL("SELECT count(*), sum(version) FROM {}").format(sql.Identifier(schema, "events"))
    old = pg(summary)
    assert old == [(ROWS, 0)]
    con = sqlite3.connect(source)
    con.execute("UPDATE events SET version = 1")
    con.commit()
    con.close()
    for point in ["in_commit:2=kill", "after_commit:3=kill", "in_swap:1=kill"]:
        assert _sync_process(tmp_path, point) == -signal.SIGKILL, point
        assert pg(summary) == old, f"readers saw a partial table after a kill at {point}"
    _sync_process(tmp_path, None)
    assert pg(summary) == [(ROWS, ROWS)]
    assert pg(sql.SQL("SELECT count(*) - count(DISTINCT id) FROM {}").format(
        sql.Identifier(schema, "events"))) == [(0,)]
    assert pg("SELECT count(*) FROM pg_tables WHERE schemaname = %s AND tablename LIKE %s",
              [schema, "%building"]) == [(0,)]


def test_a_failed_run_records_the_rows_it_committed_from_the_load_records(tmp_path: Path,
                                                                          schema: str) -> None:
    make_items(tmp_path / "src.db", 250)
    write_ws(tmp_path, schema, INCREMENTAL_MERGE, batch_size=50)
    with failpoints_on("after_commit:3=raise"):
        failed = run_sync(tmp_path)
    assert failed.status == "failed"
    ws = load_workspace(tmp_path)
    with MetadataStore(ws.metadata_url()) as store:
        run = store.runs("c", limit=1)[0]
    assert run.rows_committed == 150 == count_and_distinct(schema)[0]
    assert run.streams[0].rows_committed == 150
