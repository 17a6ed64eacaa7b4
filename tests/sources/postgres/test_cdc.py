"""PostgreSQL cdc against a private wal_level=logical server: snapshot, changes, crashes, lost slots."""

from __future__ import annotations

import os
import secrets
import shutil
import socket
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import psycopg
import pytest
import yaml

from syncline.sources.postgres.cdc import _Decoder, lsn_int, lsn_text, slot_name

from services import HOST, require_postgres
from syncfixtures import dest_query, run_sync

BIN = Path("/usr/lib/postgresql/15/bin")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="session")
def server() -> Iterator[tuple[str, int]]:
    """(socket dir, port) of a throwaway PostgreSQL 15 with wal_level=logical."""
    if not (BIN / "initdb").exists():
        reason = f"PostgreSQL 15 binaries not found in {BIN}"
        if os.environ.get("SYNCLINE_REQUIRE_SERVICES") == "1":
            pytest.fail(f"{reason}; SYNCLINE_REQUIRE_SERVICES=1 requires them", pytrace=False)
        pytest.skip(reason)
    root = Path(tempfile.mkdtemp(prefix="syncline_cdc_"))
    shutil.chown(root, "postgres")
    data, port = root / "data", _free_port()
    as_pg = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
    try:
        subprocess.run([*as_pg, str(BIN / "initdb"), "-D", str(data), "-A", "trust", "-U", "postgres"],
                       check=True, capture_output=True)
        opts = (f"-p {port} -k {root} -c listen_addresses='' -c wal_level=logical "
                "-c max_replication_slots=10 -c max_wal_senders=10 -c fsync=off")
        subprocess.run([*as_pg, str(BIN / "pg_ctl"), "-D", str(data), "-l", str(root / "log"), "-w",
                        "-o", opts, "start"], check=True, capture_output=True)
        yield str(root), port
    finally:
        subprocess.run([*as_pg, str(BIN / "pg_ctl"), "-D", str(data), "-m", "immediate", "stop"],
                       capture_output=True)
        shutil.rmtree(root, ignore_errors=True)


def pg(server: tuple[str, int], statement: str) -> list[tuple[Any, ...]]:
    with psycopg.connect(host=server[0], port=server[1], user="postgres", dbname="postgres",
                         autocommit=True) as conn:
        cur = conn.execute(statement)
        return cur.fetchall() if cur.description else []


@pytest.fixture
def schema(server: tuple[str, int]) -> Iterator[str]:
    name = f"cdc_{secrets.token_hex(4)}"
    pg(server, f"CREATE SCHEMA {name}")
    yield name
    for (slot,) in pg(server, f"SELECT slot_name FROM pg_replication_slots WHERE slot_name LIKE '{name}%'"):
        pg(server, f"SELECT pg_drop_replication_slot('{slot}')")
    pg(server, f"DROP PUBLICATION IF EXISTS {name}")
    pg(server, f"DROP SCHEMA {name} CASCADE")


def write_ws(root: Path, server: tuple[str, int], schema: str, tables: list[str],
             dest: dict[str, Any] | None = None, write: str | None = None) -> Path:
    src = {"type": "postgres", "host": server[0], "port": server[1], "user": "postgres",
           "database": "postgres", "schemas": [schema], "publication": schema, "slot": schema}
    doc = {
        "version": 1,
        "sources": {"src": src},
        "destinations": {"wh": dest or {"type": "duckdb", "path": "wh.duckdb"}},
        "connections": {"c": {"source": "src", "destination": "wh",
                              "destination_schema": schema if dest else "dst",
                              "batch_size": 3, "max_attempts": 1,
                              "streams": {f"{schema}.{t}": {"mode": "cdc"} | (
                                  {"write": write} if write else {}) for t in tables}}},
    }
    (root / "syncline.yaml").write_text(yaml.safe_dump(doc), encoding="utf-8")
    return root


def assert_mirrors(root: Path, server: tuple[str, int], schema: str, table: str,
                   deleted: set[int], swept: frozenset[int] = frozenset()) -> None:
    """Every live source row once with its latest values; every deleted id a key-only tombstone,
    or (``swept``) a row a full refresh found missing, soft-deleted with its last values."""
    live = sorted(pg(server, f"SELECT id, name, qty, tags::text FROM {schema}.{table}"))
    got = dest_query(root, f"SELECT id, name, qty, tags, _syncline_deleted FROM dst.{table} ORDER BY id")
    ids = [r[0] for r in got]
    assert len(ids) == len(set(ids)), f"duplicates: {got}"
    assert [(i, n, q) for i, n, q, _, d in got if not d] == [(i, n, q) for i, n, q, _ in live]
    assert {r[0] for r in got if r[4]} == deleted | swept
    assert all(d is False or n is None for i, n, _, _, d in got if i not in swept)  # key only
    assert all(n is not None for i, n, _, _, d in got if d and i in swept)


def make_table(server: tuple[str, int], schema: str, table: str = "items", rows: int = 5) -> None:
    pg(server, f"CREATE TABLE {schema}.{table} (id int PRIMARY KEY, name text NOT NULL, qty numeric(10,2),"
               " tags int[])")
    pg(server, f"INSERT INTO {schema}.{table} SELECT g, 'n' || g, g * 1.5, ARRAY[g, g + 1] "
               f"FROM generate_series(1, {rows}) g")


def state(root: Path, stream: str) -> dict[str, Any]:
    import json

    row = dest_query(root, f"SELECT * FROM dst._syncline_state WHERE stream = '{stream}'")
    text = next(v for v in row[0] if isinstance(v, str) and v.startswith("{"))
    source: dict[str, Any] = json.loads(text)["source"]
    return source


def test_snapshot_then_inserts_updates_deletes(server: tuple[str, int], schema: str,
                                               tmp_path: Path) -> None:
    make_table(server, schema)
    root = write_ws(tmp_path, server, schema, ["items"])
    first = run_sync(root)
    assert first.status == "succeeded", first.error
    assert first.rows_committed == 5
    assert state(root, f"{schema}.items")["phase"] == "stream"
    assert dest_query(root, "SELECT tags FROM dst.items WHERE id = 1") == [([1, 2],)]
    pg(server, f"INSERT INTO {schema}.items VALUES (6, 'six', 6, '{{6}}'), (7, 'seven', 7, NULL)")
    pg(server, f"UPDATE {schema}.items SET name = 'first' WHERE id = 2")
    pg(server, f"UPDATE {schema}.items SET name = 'second', qty = NULL WHERE id = 2")
    pg(server, f"DELETE FROM {schema}.items WHERE id IN (3, 7)")
    pg(server, f"UPDATE {schema}.items SET id = 10 WHERE id = 4")  # a moved key leaves a tombstone
    second = run_sync(root)
    assert second.status == "succeeded", second.error
    assert_mirrors(root, server, schema, "items", deleted={3, 4, 7})
    assert dest_query(root, "SELECT tags FROM dst.items WHERE id = 6") == [([6],)]
    cp = state(root, f"{schema}.items")
    assert cp["lag_bytes"] >= 0 and cp["lsn"] > 0
    # the next read confirms the committed LSN to the slot, and reads nothing twice
    third = run_sync(root)
    assert third.status == "succeeded" and third.rows_read == 0
    slot = slot_name(schema, f"{schema}.items")
    (confirmed,) = pg(server, f"SELECT confirmed_flush_lsn::text FROM pg_replication_slots "
                              f"WHERE slot_name = '{slot}'")[0]
    assert lsn_int(confirmed) == cp["lsn"]


@pytest.mark.parametrize("destination", ["duckdb", "postgres"])
def test_history_keeps_every_change_and_closes_deleted_keys(server: tuple[str, int], schema: str,
                                                            tmp_path: Path, destination: str) -> None:
    make_table(server, schema)
    dsn = f"host={HOST} port=5432 user=postgres dbname=test"
    if destination == "postgres":
        require_postgres()
    dest = {"type": "postgres", "dsn": dsn} if destination == "postgres" else None
    root = write_ws(tmp_path, server, schema, ["items"], dest, write="history")

    def query(text: str) -> list[tuple[Any, ...]]:
        if dest is None:
            return dest_query(root, text)
        with psycopg.connect(dsn) as con:
            return con.execute(text.replace("dst.", f"{schema}.")).fetchall()  # type: ignore[arg-type]

    try:
        _history_changes(server, schema, root, query)
    finally:
        if dest is not None:
            with psycopg.connect(dsn, autocommit=True) as con:
                con.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")  # type: ignore[arg-type]


def _history_changes(server: tuple[str, int], schema: str, root: Path,
                     query: Any) -> None:
    assert run_sync(root).status == "succeeded"
    [(before,)] = pg(server, "SELECT clock_timestamp()")
    pg(server, f"UPDATE {schema}.items SET name = 'first' WHERE id = 2")
    [(between,)] = pg(server, "SELECT clock_timestamp()")
    pg(server, f"UPDATE {schema}.items SET name = 'second' WHERE id = 2")
    pg(server, f"UPDATE {schema}.items SET name = name WHERE id = 1")  # the same values again
    pg(server, f"DELETE FROM {schema}.items WHERE id = 3")
    pg(server, f"INSERT INTO {schema}.items VALUES (3, 'back', 1, NULL)")
    pg(server, f"DELETE FROM {schema}.items WHERE id = 5")
    run = run_sync(root)
    assert run.status == "succeeded", run.error
    got = query("SELECT id, name, _syncline_valid_from, _syncline_valid_to, "
                "_syncline_is_current, _syncline_deleted FROM dst.items "
                "ORDER BY id, _syncline_valid_from, _syncline_is_current")
    by_key: dict[int, list[tuple[Any, ...]]] = {}
    for row in got:
        by_key.setdefault(row[0], []).append(row[1:])
    assert [v[0] for v in by_key[2]] == ["n2", "first", "second"]
    # each version starts when its change committed at the source, not when it was read
    assert before < by_key[2][1][1] < between < by_key[2][2][1] == by_key[2][1][2]
    assert [v[0] for v in by_key[1]] == ["n1"]  # an update to the same values adds nothing
    assert [(v[0], v[3], v[4]) for v in by_key[3]] == [("n3", False, True), ("back", True, False)]
    assert [(v[0], v[3], v[4]) for v in by_key[5]] == [("n5", False, True)]  # gone: none current
    for key, vs in by_key.items():
        for older, newer in zip(vs, vs[1:], strict=False):
            assert older[2] is not None and newer[1] >= older[2], key
            assert older[4] or older[2] == newer[1], key  # an update: no gap
    current = sorted((k, vs[-1][0]) for k, vs in by_key.items() if vs[-1][3])
    assert current == sorted(pg(server, f"SELECT id, name FROM {schema}.items"))


def test_kill_between_commit_and_slot_advance(server: tuple[str, int], schema: str,
                                              tmp_path: Path) -> None:
    make_table(server, schema)
    root = write_ws(tmp_path, server, schema, ["items"])
    assert run_sync(root).status == "succeeded"
    pg(server, f"UPDATE {schema}.items SET name = 'x' || id WHERE id <= 2")
    pg(server, f"DELETE FROM {schema}.items WHERE id = 5")
    pg(server, f"INSERT INTO {schema}.items SELECT g, 'm', 1, NULL FROM generate_series(20, 27) g")
    env = {k: v for k, v in os.environ.items() if not k.startswith("SYNCLINE_")}
    env["SYNCLINE_FAILPOINTS"] = "after_commit:1=kill"
    proc = subprocess.run([sys.executable, "-m", "syncline", "sync", "c", "-w", str(root)], env=env,
                          capture_output=True, timeout=120)
    assert proc.returncode == -9, proc.stderr.decode()[-2000:]
    pg(server, f"UPDATE {schema}.items SET name = 'after' WHERE id = 20")
    rerun = run_sync(root)
    assert rerun.status == "succeeded", rerun.error
    assert_mirrors(root, server, schema, "items", deleted={5})


def test_dropped_slot_fails_loudly_and_full_refresh_recovers(server: tuple[str, int], schema: str,
                                                            tmp_path: Path) -> None:
    make_table(server, schema)
    stream = f"{schema}.items"
    root = write_ws(tmp_path, server, schema, ["items"])
    assert run_sync(root).status == "succeeded"
    pg(server, f"SELECT pg_drop_replication_slot('{slot_name(schema, stream)}')")
    pg(server, f"DELETE FROM {schema}.items WHERE id = 1")
    failed = run_sync(root)
    assert failed.status == "failed"
    text = f"{failed.error} {getattr(failed.error, 'fix', '')}"
    assert "does not exist" in text
    assert f"syncline sync <connection> --full-refresh --stream {stream}" in text
    recovered = run_sync(root, full_refresh=True, streams=[stream])
    assert recovered.status == "succeeded", recovered.error
    pg(server, f"UPDATE {schema}.items SET name = 'later' WHERE id = 2")
    assert run_sync(root).status == "succeeded"
    # rebuilt from the snapshot under merge: row 1, deleted meanwhile, is kept soft-deleted
    assert_mirrors(root, server, schema, "items", deleted=set(), swept=frozenset({1}))


def test_one_transaction_over_two_tables_splits_by_stream(server: tuple[str, int], schema: str,
                                                          tmp_path: Path) -> None:
    make_table(server, schema, "a", rows=2)
    make_table(server, schema, "b", rows=2)
    root = write_ws(tmp_path, server, schema, ["a", "b"])
    assert run_sync(root).status == "succeeded"
    pg(server, f"BEGIN; INSERT INTO {schema}.a VALUES (3, 'a3', 1, NULL); "
               f"UPDATE {schema}.b SET name = 'b1' WHERE id = 1; DELETE FROM {schema}.b WHERE id = 2; "
               f"COMMIT")
    result = run_sync(root)
    assert result.status == "succeeded", result.error
    assert {s.stream: s.rows_read for s in result.streams} == {f"{schema}.a": 1, f"{schema}.b": 2}
    assert_mirrors(root, server, schema, "a", deleted=set())
    assert_mirrors(root, server, schema, "b", deleted={2})


def test_truncate_fails_with_the_resnapshot_command(server: tuple[str, int], schema: str,
                                                    tmp_path: Path) -> None:
    make_table(server, schema)
    root = write_ws(tmp_path, server, schema, ["items"])
    assert run_sync(root).status == "succeeded"
    pg(server, f"TRUNCATE {schema}.items")
    failed = run_sync(root)
    assert failed.status == "failed"
    assert "--full-refresh" in f"{failed.error} {getattr(failed.error, 'fix', '')}"


def test_tombstones_reach_a_postgres_destination(server: tuple[str, int], schema: str,
                                                 tmp_path: Path) -> None:
    require_postgres()
    dsn = f"host={HOST} port=5432 user=postgres dbname=test"
    make_table(server, schema)
    root = write_ws(tmp_path, server, schema, ["items"], {"type": "postgres", "dsn": dsn})
    try:
        assert run_sync(root).status == "succeeded"
        pg(server, f"UPDATE {schema}.items SET name = 'u' WHERE id = 1")
        pg(server, f"DELETE FROM {schema}.items WHERE id = 2")
        result = run_sync(root)
        assert result.status == "succeeded", result.error
        with psycopg.connect(dsn) as con:
            got = con.execute(f"SELECT id, name, _syncline_deleted FROM {schema}.items ORDER BY id").fetchall()
        assert got == [(1, "u", False), (2, None, True), (3, "n3", False), (4, "n4", False),
                       (5, "n5", False)]
    finally:
        with psycopg.connect(dsn, autocommit=True) as con:
            con.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")


def test_unchanged_toasted_values_are_kept(server: tuple[str, int], schema: str, tmp_path: Path) -> None:
    pg(server, f"CREATE TABLE {schema}.docs (id int PRIMARY KEY, body text, n int)")
    big = "(SELECT string_agg(md5(g::text || random()::text), '') FROM generate_series(1, 400) g)"
    pg(server, f"INSERT INTO {schema}.docs VALUES (1, {big}, 0), (2, 'small', 0)")
    root = write_ws(tmp_path, server, schema, ["docs"])
    assert run_sync(root).status == "succeeded"
    pg(server, f"UPDATE {schema}.docs SET n = n + 1")  # body is not sent for row 1: unchanged TOAST
    result = run_sync(root)
    assert result.status == "succeeded", result.error
    source = sorted(pg(server, f"SELECT id, body, n FROM {schema}.docs"))
    assert dest_query(root, "SELECT id, body, n FROM dst.docs ORDER BY id") == source
    assert len(source[0][1]) == 12800


def test_changes_keep_uuid_interval_and_numeric_exact(server: tuple[str, int], schema: str,
                                                      tmp_path: Path) -> None:
    """pgoutput's text of each type, decoded as the snapshot's binary read: the same values."""
    pg(server, f"CREATE TABLE {schema}.kinds (id int PRIMARY KEY, uid uuid, span interval, total numeric)")
    pg(server, f"INSERT INTO {schema}.kinds VALUES (1, gen_random_uuid(), '1 mon -2 days 03:00:00.25', 1.5)")
    root = write_ws(tmp_path, server, schema, ["kinds"])
    assert run_sync(root).status == "succeeded"
    pg(server, f"INSERT INTO {schema}.kinds VALUES (2, gen_random_uuid(), '-1 year 00:00:00.000001', "
               f"12345678901234567890123456789.123456789), (3, NULL, '1 day', 1 / 3.0)")
    pg(server, f"UPDATE {schema}.kinds SET span = span + interval '1 mon' WHERE id = 1")
    result = run_sync(root)
    assert result.status == "warning" and result.rows_quarantined == 1  # 1/3: 20 decimal places
    parts = ("date_part('year', span), date_part('month', span), date_part('day', span), "
             "date_part('hour', span), extract(microseconds from span), total")
    got = dest_query(root, f"SELECT id, uid::text, {parts} FROM dst.kinds ORDER BY id")
    want = pg(server, f"SELECT id, uid::text, {parts} FROM {schema}.kinds WHERE id < 3 ORDER BY id")
    assert [tuple(float(v) if isinstance(v, (int, float, Decimal)) and i in (2, 3, 4, 5, 6) else v
                  for i, v in enumerate(r)) for r in got] == \
        [tuple(float(v) if isinstance(v, (int, float, Decimal)) and i in (2, 3, 4, 5, 6) else v
               for i, v in enumerate(r)) for r in want]
    assert got[0][3:6] == (2, -2, 3) and got[1][7] == Decimal("12345678901234567890123456789.123456789")


def test_helpers() -> None:
    assert lsn_text(lsn_int("16/B374D848")) == "16/B374D848"
    assert slot_name("s", "public.t") == "s_t"
    assert slot_name("s", "x.t") == "s_x_t"
    odd = slot_name("s", "x.My-Table")
    assert odd.startswith("s_x_my_table_") and odd != slot_name("s", "x.my_table")
    assert len(slot_name("s" * 60, "x.t")) <= 63
    assert _Decoder("x", "t", "x.t").feed(b"Yignored") is None


def test_plan_of_a_cdc_stream() -> None:
    from syncline.config import ConnectionConfig
    from syncline.engine.plan import CDC_CURSOR, SourceAbilities, plan_connection
    from syncline.errors import ConfigurationError
    from syncline.schema import INT64, Column, StreamSchema
    from syncline.sources.postgres.cdc import LSN_COLUMN

    assert CDC_CURSOR == LSN_COLUMN
    abilities = SourceAbilities(modes=frozenset({"full_refresh", "incremental", "cdc"}))
    keyed = StreamSchema(name="s.t", columns=(Column("id", INT64),), primary_key=("id",))
    conn = ConnectionConfig.model_validate({"source": "a", "destination": "b",
                                            "streams": {"s.t": {"mode": "cdc"}}})
    [plan] = plan_connection("c", conn, [keyed], abilities)
    assert (plan.write, plan.cursor) == ("merge", LSN_COLUMN)
    assert plan.stream.column_names[-1] == LSN_COLUMN
    keyless = StreamSchema(name="s.t", columns=(Column("id", INT64),))
    with pytest.raises(ConfigurationError, match="primary key"):
        plan_connection("c", conn, [keyless], abilities)


def test_a_first_attempt_that_cannot_make_its_slot_leaves_no_publication(
        server: tuple[str, int], schema: str, tmp_path: Path) -> None:
    make_table(server, schema)
    fillers = []
    try:  # every slot the server allows is taken, as by other tools' forgotten slots
        for n in range(20):
            pg(server, f"SELECT pg_create_logical_replication_slot('{schema}_filler{n}', 'pgoutput')")
            fillers.append(f"{schema}_filler{n}")
    except psycopg.errors.ConfigurationLimitExceeded:
        pass
    try:
        root = write_ws(tmp_path, server, schema, ["items"])
        failed = run_sync(root)
        assert failed.status == "failed"
        assert pg(server, f"SELECT count(*) FROM pg_publication WHERE pubname = '{schema}'") == [(0,)]
        assert "all replication slots are in use" in str(failed.error), failed.error
        assert "pg_drop_replication_slot" in str(failed.error), failed.error
    finally:
        for slot in fillers:
            pg(server, f"SELECT pg_drop_replication_slot('{slot}')")
    assert run_sync(root).status == "succeeded"  # once a slot is free, the first sync goes through
    assert pg(server, f"SELECT count(*) FROM pg_publication WHERE pubname = '{schema}'") == [(1,)]
