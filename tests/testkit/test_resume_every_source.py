"""`syncline test-connector`'s kill_and_resume check on every source type, full refresh and default.

A source whose full refresh resumes at a checkpoint must lose no record and read none twice;
one that cannot (a Singer tap, whose full-table STATE holds no position) must say so, and the
check then proves the build started over yields every record once.
"""

from __future__ import annotations

import json
import re
import secrets
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import psycopg
import pymysql
import pytest
import yaml

from syncline.config import load_workspace
from syncline.engine.endpoints import open_source
from syncline.testkit import CheckResult, run_checks

from services import HOST, postgres_schema, require_mariadb
from syncfixtures import make_items

TESTS = Path(__file__).parents[1]
sys.path.insert(0, str(TESTS / "sources" / "rest"))

from api_server import ApiServer  # noqa: E402

ROWS = 120
FAKE = [sys.executable, str(TESTS / "sources" / "fake_tap.py")]
RESTARTS = "the source cannot resume a full refresh, so the build restarted from the first record"


def sqlite_source(root: Path) -> Iterator[dict[str, Any]]:
    make_items(root / "src.db", ROWS)
    yield {"type": "sqlite", "path": "src.db"}


def files_source(root: Path) -> Iterator[dict[str, Any]]:
    (root / "inbox").mkdir()
    for day in range(4):
        lines = [json.dumps({"id": day * 30 + i, "amount": i * 1.5}) for i in range(30)]
        (root / "inbox" / f"2026-01-0{day + 1}.jsonl").write_text("\n".join(lines) + "\n")
    yield {"type": "files", "path": "inbox/*.jsonl", "stream": "orders"}


ITEMS = [(i, f"item {i} Zoë", f"2026-01-01 00:{i // 60:02d}:{i % 60:02d}") for i in range(1, ROWS + 1)]


def postgres_source(root: Path) -> Iterator[dict[str, Any]]:
    with postgres_schema("syncline_resume") as schema:
        with psycopg.connect(f"host={HOST} port=5432 user=postgres dbname=test", autocommit=True) as con:
            con.execute(f"CREATE TABLE {schema}.items (id int PRIMARY KEY, name text, "
                        "updated_at timestamp NOT NULL)")
            with con.cursor() as cur:
                cur.executemany(f"INSERT INTO {schema}.items VALUES (%s, %s, %s)", ITEMS)
        yield {"type": "postgres", "host": HOST, "port": 5432, "user": "postgres",
               "database": "test", "schemas": [schema]}


def mariadb_source(root: Path) -> Iterator[dict[str, Any]]:
    require_mariadb()
    con = pymysql.connect(host=HOST, port=3306, user="root", password="", charset="utf8mb4",
                          autocommit=True)
    name = f"syncline_resume_{secrets.token_hex(4)}"
    try:
        with con.cursor() as cur:
            cur.execute(f"CREATE DATABASE {name} CHARACTER SET utf8mb4")
            cur.execute(f"CREATE TABLE {name}.items (id INT PRIMARY KEY, name VARCHAR(40), "
                        "updated_at DATETIME(6) NOT NULL)")
            cur.executemany(f"INSERT INTO {name}.items VALUES (%s, %s, %s)", ITEMS)
        yield {"type": "mysql", "host": HOST, "port": 3306, "user": "root", "database": name,
               "tables": ["items"]}
    finally:
        with con.cursor() as cur:
            cur.execute(f"DROP DATABASE IF EXISTS {name}")
        con.close()


def rest_source(root: Path) -> Iterator[dict[str, Any]]:
    server = ApiServer(items=ROWS, orgs=2).start()
    try:
        yield {"type": "rest", "base_url": server.url, "timeout_s": 2,
               "retry": {"max_attempts": 3, "backoff_base_s": 0.01, "max_backoff_s": 0.05},
               "streams": {"items": {"path": "/items/pages", "primary_key": ["id"],
                                     "pagination": {"type": "page_number", "size_param": "per_page",
                                                    "size": 25}}}}
    finally:
        server.stop()


def python_source(root: Path) -> Iterator[dict[str, Any]]:
    yield {"type": "python", "class": "sdk_example:Weather", "path": str(TESTS / "sources"),
           "config": {"city": "Lisbon", "days": 4, "per_day": 10}}


def singer_source(full_table: bool) -> Callable[[Path], Iterator[dict[str, Any]]]:
    def make(root: Path) -> Iterator[dict[str, Any]]:
        yield {"type": "singer", "command": FAKE, "streams": ["items"],
               "config": {"records": ROWS, "state_every": 25, "full_table": full_table}}
    return make


SOURCES: dict[str, Callable[[Path], Iterator[dict[str, Any]]]] = {
    "sqlite": sqlite_source, "files": files_source, "postgres": postgres_source,
    "mariadb": mariadb_source, "rest": rest_source, "python": python_source,
    "singer": singer_source(full_table=False), "singer-full-table": singer_source(full_table=True),
}


@pytest.fixture(autouse=True)
def _restore_sys_path(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sys, "path", list(sys.path))


def kill_and_resume(root: Path, source: dict[str, Any], mode: str | None) -> dict[str, CheckResult]:
    """The checks of every stream, with the connection's `mode:` set on each (None: the plan's)."""
    doc: dict[str, Any] = {"version": 1, "sources": {"s": source},
                           "destinations": {"wh": {"type": "duckdb", "path": "wh.duckdb"}}}
    (root / "syncline.yaml").write_text(yaml.safe_dump(doc), encoding="utf-8")
    if mode is not None:
        with open_source(load_workspace(root), "s") as opened:
            names = [s.name for s in opened.discover()]
        doc["connections"] = {"c": {"source": "s", "destination": "wh",
                                    "streams": {n: {"mode": mode} for n in names}}}
        (root / "syncline.yaml").write_text(yaml.safe_dump(doc), encoding="utf-8")
    results = run_checks(load_workspace(root), "s", batch_size=10)
    checks = {r.stream or "": r for r in results if r.name == "kill_and_resume"}
    problems = [f"{r.stream}: {r.detail}" for r in checks.values() if not r.passed]
    assert checks and not problems, "\n".join(problems) or results
    return checks


# a full-table tap has no incremental read (its STATE holds no position): full refresh only
CASES = [pytest.param(kind, mode, id=f"{kind}-{mode or 'default-mode'}".replace("_", "-"))
         for kind in SOURCES for mode in (None, "full_refresh")
         if not (kind == "singer-full-table" and mode is None)]


@pytest.mark.parametrize(("kind", "mode"), CASES)
def test_kill_and_resume_loses_nothing_and_reads_nothing_twice(tmp_path: Path, kind: str,
                                                               mode: str | None) -> None:
    made = SOURCES[kind](tmp_path)
    source = next(made)
    try:
        checks = kill_and_resume(tmp_path, source, mode)
    finally:
        made.close()
    resumed = {name: r.detail for name, r in checks.items() if not r.detail.startswith("not applicable")}
    assert resumed, checks  # at least one stream was stopped and resumed
    for detail in resumed.values():
        stop = re.match(r"stopped at checkpoint (\d+) of (\d+) after (\d+) records", detail)
        assert stop, detail  # the kill landed mid-read: records were read before and after it
        assert 0 < int(stop[1]) < int(stop[2]) and 0 < int(stop[3]) < ROWS, detail
        assert "none lost, none twice" in detail, detail
        # the simple, honest rule: no Singer tap's full refresh resumes, whatever its STATE holds
        assert (RESTARTS in detail) == (kind.startswith("singer") and mode == "full_refresh"), detail



def test_a_full_table_tap_says_it_restarts_and_every_record_arrives_once(tmp_path: Path) -> None:
    made = singer_source(full_table=True)(tmp_path)
    detail = kill_and_resume(tmp_path, next(made), "full_refresh")["items"].detail
    assert detail == (f"stopped at checkpoint 3 of 5 after 75 records; {RESTARTS}: all {ROWS} arrived, "
                      "none lost, none twice")
