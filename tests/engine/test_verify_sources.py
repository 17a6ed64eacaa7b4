"""`syncline verify` on real sources and destinations: no false differences, every real one found."""

from __future__ import annotations

import csv
import datetime as dt
import json
import secrets
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import duckdb
import psycopg
import pyarrow as pa
import pymysql
import pytest
import yaml
from psycopg import sql

from syncline.config import load_workspace
from syncline.engine.verify import StreamVerdict, _canonical_json, verify_connection

from services import HOST, require_mariadb, require_postgres
from syncfixtures import run_sync

PG_DSN = f"host={HOST} port=5432 user=postgres dbname=test"
ROWS = 300
UPDATED, DELETED, INSERTED = 40, ROWS, 1000  # the last row: a file's later lines keep their _line
DAMAGE = [  # on the destination: 5 and 6 lost, 10 changed, 20 twice, 99999 never in the source
    "DELETE FROM {t} WHERE id IN (5, 6)",
    "UPDATE {t} SET name = 'tampered' WHERE id = 10",
    "INSERT INTO {t} SELECT * FROM {t} WHERE id = 20",
    "CREATE TEMP TABLE extra AS SELECT * FROM {t} WHERE id = 30",
    "UPDATE extra SET id = 99999",
    "INSERT INTO {t} SELECT * FROM extra",
]
SOURCE_CHANGES = [
    f"UPDATE {{t}} SET name = 'changed at the source' WHERE id = {UPDATED}",
    f"DELETE FROM {{t}} WHERE id = {DELETED}",
    f"INSERT INTO {{t}} (id, name) VALUES ({INSERTED}, 'new at the source')",
]
# key order, spacing and number spellings differ from PostgreSQL's jsonb form on purpose
DOC = '{{"z": [{i}, [true, null, {{"b": 2, "a": [1.50, "ü"]}}]],  "a": {{"y": -1, "x": []}}, "e": [1e2, -0.0, 25E-8]}}'


def pg(*statements: str) -> None:
    with psycopg.connect(PG_DSN, autocommit=True) as con:
        for s in statements:
            con.execute(s.encode())


@pytest.fixture
def pg_schemas() -> Iterator[Callable[[], str]]:
    """Makes uniquely named PostgreSQL schemas, all dropped at the end."""
    require_postgres()
    made: list[str] = []

    def make() -> str:
        made.append(f"syncline_verify_{secrets.token_hex(4)}")
        pg(f"CREATE SCHEMA {made[-1]}")
        return made[-1]

    yield make
    pg(*(f"DROP SCHEMA IF EXISTS {s} CASCADE" for s in made))


@pytest.fixture
def mysql_db() -> Iterator[Any]:
    """A uniquely named MariaDB database, dropped at the end; the connection writes at +05:00."""
    require_mariadb()
    con = pymysql.connect(host=HOST, port=3306, user="root", password="", charset="utf8mb4",
                          autocommit=True)
    name = f"syncline_verify_{secrets.token_hex(4)}"
    with con.cursor() as cur:
        cur.execute(f"CREATE DATABASE {name} CHARACTER SET utf8mb4")
        cur.execute(f"USE {name}")
        cur.execute("SET time_zone = '+05:00'")
    yield con, name
    with con.cursor() as cur:
        cur.execute(f"DROP DATABASE {name}")
    con.close()


# -- sources: each makes a rich table of ROWS rows and returns (config, stream, change) ----------

PG_TABLE = """
CREATE TYPE {s}.mood AS ENUM ('sad', 'ok', 'happy');
CREATE TABLE {s}.rich (
  id integer PRIMARY KEY, big bigint, price numeric(12,2), loose numeric, ratio double precision,
  flag boolean, name text, label varchar(40), born date, clock time(6), seen timestamp(6),
  changed timestamptz, span interval, uid uuid, doc json, docb jsonb, ints integer[], raw bytea,
  mood {s}.mood
);
SET TIME ZONE 'Asia/Kolkata';
INSERT INTO {s}.rich SELECT i, (i - 150)::bigint * 1000000007, (i - 150) * 1.01, (i - 150) / 8.0,
  (i - 150) / 3.0, i % 2 = 0, 'row ' || i || ' Zoë 東京 🎉', 'l' || i, DATE '1999-12-31' + (i - 150) * 40,
  TIME '00:00:00.000001' + i * interval '1.000001 s', TIMESTAMP '2025-01-01' + i * interval '1.000001 s',
  TIMESTAMPTZ '2025-06-01 00:00:00.000001' + i * interval '1 min 0.000001 s',
  i * interval '1 day 1 hour 0.5 s' - interval '3 months', md5(i::text)::uuid,
  format('{doc}', i)::json, format('{doc}', i)::jsonb, ARRAY[i, -i, NULL], decode(md5(i::text), 'hex'),
  (ARRAY['sad', 'ok', 'happy'])[i % 3 + 1]::{s}.mood
FROM generate_series(1, {rows}) i;
UPDATE {s}.rich SET big = NULL, price = NULL, loose = NULL, ratio = NULL, flag = NULL, label = NULL,
  born = NULL, clock = NULL, seen = NULL, changed = NULL, span = NULL, uid = NULL, doc = NULL,
  docb = NULL, ints = NULL, raw = NULL, mood = NULL WHERE id % 13 = 0;
UPDATE {s}.rich SET ratio = 'NaN', loose = 12345678901234567890123456789.123456789, docb = '[]', ints = '{{}}' WHERE id = 3;
UPDATE {s}.rich SET ratio = '-Infinity', loose = '-0.000000001', label = '' WHERE id = 4;
"""


def postgres_source(schema: str) -> tuple[dict[str, Any], str, Callable[[], None]]:
    pg(PG_TABLE.format(s=schema, rows=ROWS, doc=DOC.format(i="%s")))
    config = {"type": "postgres", "host": HOST, "port": 5432, "user": "postgres", "database": "test",
              "schemas": [schema]}
    return config, f"{schema}.rich", lambda: pg(*(s.format(t=f"{schema}.rich") for s in SOURCE_CHANGES))


MYSQL_TABLE = """CREATE TABLE rich (
  id INT UNSIGNED PRIMARY KEY, big BIGINT, price DECIMAL(12,2), ratio DOUBLE, flag TINYINT(1),
  name VARCHAR(100), born DATE, clock TIME(6), seen DATETIME(6), changed TIMESTAMP(6) NULL,
  doc JSON, raw BLOB, mood ENUM('sad', 'ok', 'happy'))"""


def mysql_row(i: int) -> tuple[Any, ...]:
    if i % 13 == 0:
        return (i,) + (None,) * 4 + (f"row {i}",) + (None,) * 7
    stamp = dt.datetime(2025, 1, 1) + i * dt.timedelta(seconds=1, microseconds=1)
    return (i, (i - 150) * 1000000007, Decimal(i - 150) * Decimal("1.01"), (i - 150) / 3, i % 2,
            f"row {i} Zoë 東京 🎉", dt.date(1999, 12, 31) + dt.timedelta(days=(i - 150) * 40),
            dt.time(0, 0, i % 60, i), stamp, stamp + dt.timedelta(days=100), DOC.format(i=i),
            bytes.fromhex("00ff") * i, ("sad", "ok", "happy")[i % 3])


def mysql_source(db: tuple[Any, str]) -> tuple[dict[str, Any], str, Callable[[], None]]:
    con, name = db

    def run(*statements: str) -> None:
        with con.cursor() as cur:
            for s in statements:
                cur.execute(s)

    run(MYSQL_TABLE)
    with con.cursor() as cur:
        cur.executemany(f"INSERT INTO rich VALUES ({', '.join(['%s'] * 13)})",
                        [mysql_row(i) for i in range(1, ROWS + 1)])
    config = {"type": "mysql", "host": HOST, "port": 3306, "user": "root", "database": name,
              "tables": ["rich"]}
    return config, f"{name}.rich", lambda: run(*(s.format(t="rich") for s in SOURCE_CHANGES))


def file_record(i: int) -> dict[str, Any]:
    if i % 13 == 0:
        return {"id": i, "name": f"row {i}"}
    stamp = dt.datetime(2025, 1, 1) + i * dt.timedelta(seconds=1, microseconds=1)
    return {"id": i, "amount": (i - 150) / 3, "name": f'row {i} Zoë, "東京" 🎉', "code": f"{i:05d}",
            "flag": i % 2 == 0, "seen": stamp.isoformat(), "zoned": f"{stamp.isoformat()}+05:00",
            "big": (i - 150) * 1000000007, "doc": json.loads(DOC.format(i=i)), "tags": ["a", None, i]}


def write_file(path: Path, records: list[dict[str, Any]]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.suffix == ".jsonl":
        path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records), "utf-8")
        return
    with open(path, "w", encoding="utf-8", newline="") as f:
        out = csv.DictWriter(f, ["id", "amount", "name", "code", "seen", "zoned", "big"],
                             extrasaction="ignore", lineterminator="\n")
        out.writeheader()
        out.writerows(records)


def files_source(root: Path, ext: str) -> tuple[dict[str, Any], str, Callable[[], None]]:
    path = root / "data" / f"rich.{ext}"
    records = [file_record(i) for i in range(1, ROWS + 1)]
    write_file(path, records)

    def change() -> None:
        records[UPDATED - 1]["name"] = "changed at the source"
        del records[DELETED - 1]
        write_file(path, records + [{"id": INSERTED, "name": "new at the source"}])

    config = {"type": "files", "path": f"data/*.{ext}", "stream": "rich", "primary_key": ["id"]}
    return config, "rich", change


# -- the cases ----------------------------------------------------------------------------------


@dataclass
class Case:
    root: Path
    damage: Callable[[list[str]], None]  # runs statements on the synced table, named {t}
    change_source: Callable[[], None]  # updates UPDATED, deletes DELETED, inserts INSERTED


def duckdb_run(root: Path) -> Callable[[list[str]], None]:
    def run(statements: list[str]) -> None:
        with duckdb.connect(str(root / "wh.duckdb")) as con:
            for s in statements:
                con.execute(s.format(t="dst.rich"))
    return run


def postgres_run(schema: str) -> Callable[[list[str]], None]:
    def run(statements: list[str]) -> None:
        with psycopg.connect(PG_DSN, autocommit=True) as con:
            for s in statements:
                con.execute(s.format(t=sql.Identifier(schema, "rich").as_string(con)).encode())
    return run


@pytest.fixture(params=["postgres-duckdb", "mysql-duckdb", "csv-duckdb", "jsonl-duckdb",
                        "postgres-postgres"])
def case(request: pytest.FixtureRequest, tmp_path: Path) -> Case:
    source_kind, dest_kind = request.param.split("-")
    if source_kind == "postgres":
        source, stream, change = postgres_source(request.getfixturevalue("pg_schemas")())
    elif source_kind == "mysql":
        source, stream, change = mysql_source(request.getfixturevalue("mysql_db"))
    else:
        source, stream, change = files_source(tmp_path, source_kind)
    if dest_kind == "postgres":
        schema = request.getfixturevalue("pg_schemas")()
        destination: dict[str, Any] = {"type": "postgres", "dsn": PG_DSN}
        damage = postgres_run(schema)
    else:
        schema, destination, damage = "dst", {"type": "duckdb", "path": "wh.duckdb"}, duckdb_run(tmp_path)
    doc = {
        "version": 1, "sources": {"src": source}, "destinations": {"wh": destination},
        "connections": {"c": {"source": "src", "destination": "wh", "destination_schema": schema,
                              "batch_size": 64, "max_attempts": 1,
                              "streams": {stream: {"mode": "full_refresh", "write": "replace",
                                                   "table": "rich"}}}},
    }
    (tmp_path / "syncline.yaml").write_text(yaml.safe_dump(doc), encoding="utf-8")
    return Case(tmp_path, damage, change)


def sync(root: Path) -> None:
    result = run_sync(root)
    assert result.status == "succeeded", result.error
    assert result.rows_committed == ROWS


def verify(root: Path) -> StreamVerdict:
    [verdict] = verify_connection(load_workspace(root), "c")
    return verdict


def verify_cli(root: Path) -> tuple[int, dict[str, Any]]:
    out = subprocess.run([sys.executable, "-m", "syncline", "verify", "c", "--json", "-w", str(root)],
                         capture_output=True, text=True, timeout=120)
    [report] = json.loads(out.stdout)
    return out.returncode, report


KINDS = ("missing", "extra", "different", "duplicated")
NOTHING: dict[str, tuple[int, list[Any]]] = {k: (0, []) for k in KINDS}


def found(v: StreamVerdict) -> dict[str, tuple[int, list[Any]]]:
    """What verify reports, by kind: (count, sample keys)."""
    return {k: (v.counts.get(k, 0), getattr(v, k)) for k in KINDS}


# -- the test ----------------------------------------------------------------------------------


def test_verify_finds_no_false_difference_and_every_real_one(case: Case) -> None:
    sync(case.root)
    clean = verify(case.root)
    assert found(clean) == NOTHING  # no false difference from any type conversion
    assert clean.ok and clean.source_rows == clean.destination_rows == ROWS
    code, report = verify_cli(case.root)
    assert (code, report["ok"], report["source_rows"], report["destination_rows"]) == (0, True, ROWS, ROWS)

    case.damage(DAMAGE)
    code, report = verify_cli(case.root)
    assert code == 1 and report["ok"] is False
    assert (report["missing"], report["different"], report["duplicated"], report["extra"]) == (2, 1, 1, 1)
    assert report["samples"] == {"missing": [["5"], ["6"]], "different": [["10"]],
                                 "duplicated": [["20"]], "extra": [["99999"]]}

    sync(case.root)  # a full refresh repairs the destination
    assert verify(case.root).ok
    case.change_source()
    changed = verify(case.root)
    assert found(changed) == {"missing": (1, [[str(INSERTED)]]), "extra": (1, [[str(DELETED)]]),
                              "different": (1, [[str(UPDATED)]]), "duplicated": (0, [])}
    assert (changed.source_rows, changed.destination_rows) == (ROWS, ROWS)


@pytest.mark.parametrize(("source", "destination", "equal"), [
    ('{"b": [1e2, -0.0, 25E-8], "a": 1.50}', '{"a": 1.50, "b": [100, 0.0, 0.00000025]}', True),
    ('[1E400]', f"[1{'0' * 400}]", True),
    ('[100.000000000000000001]', "[100]", False),  # beyond a double: compared exactly
    ('[0.1]', "[0.10000000000000001]", False),
    ('{"a": 1}', '{"a": "1"}', False),
], ids=["jsonb-spelling", "huge-integer", "beyond-double", "double-neighbour", "number-vs-text"])
def test_json_is_compared_by_value_not_by_spelling(source: str, destination: str, equal: bool) -> None:
    a, b = _canonical_json(pa.array([source, destination])).to_pylist()
    assert (a == b) is equal, (a, b)
