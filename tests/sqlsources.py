"""The three SQL sources side by side (SQLite, PostgreSQL, MariaDB): a scratch table place,
statements run there as its owner, and the workspace source that reads it as the documented
read-only role."""

from __future__ import annotations

import secrets
import sqlite3
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
import pymysql
import yaml

from services import HOST, mariadb_reader, postgres_reader, postgres_schema, require_mariadb

KINDS = ["sqlite", "postgres", "mariadb"]


@dataclass
class Db:
    """One SQL source: how to run a statement there, and its workspace source and stream."""

    run: Callable[[str], list[tuple[Any, ...]]]
    source: dict[str, Any]
    stream: str
    now: str  # the database's clock, as SQL, in the cursor's type
    minutes_ago: Callable[[int], str]
    #: a date and time column type holding years past 2038 (MariaDB's TIMESTAMP does not)
    datetime: str = "timestamp"


@contextmanager
def sql_source(kind: str, tmp_path: Path) -> Iterator[Db]:
    """A scratch place of the `kind` source, dropped afterwards (SQLite: a file in tmp_path)."""
    if kind == "sqlite":
        path = tmp_path / "src.db"

        def sqlite_run(statement: str) -> list[tuple[Any, ...]]:
            con = sqlite3.connect(path)
            try:
                rows = con.execute(statement).fetchall()
                con.commit()
                return rows
            finally:
                con.close()

        yield Db(sqlite_run, {"type": "sqlite", "path": "src.db"}, "orders",
                 "strftime('%Y-%m-%d %H:%M:%S', 'now')",
                 lambda m: f"strftime('%Y-%m-%d %H:%M:%S', 'now', '-{m} minutes')")
    elif kind == "postgres":
        with postgres_schema("syncline_coarse") as schema:
            def pg_run(statement: str) -> list[tuple[Any, ...]]:
                with psycopg.connect(f"host={HOST} port=5432 user=postgres dbname=test",
                                     autocommit=True) as con:
                    con.execute(f"SET search_path = {schema}")
                    cur = con.execute(statement)
                    return cur.fetchall() if cur.description else []

            yield Db(pg_run, {"type": "postgres", "host": HOST, "user": postgres_reader(schema),
                              "database": "test", "schemas": [schema]}, f"{schema}.orders",
                     "date_trunc('second', localtimestamp)",
                     lambda m: f"date_trunc('second', localtimestamp) - interval '{m} minutes'")
    else:
        require_mariadb()
        name = f"syncline_coarse_{secrets.token_hex(4)}"
        root = pymysql.connect(host=HOST, port=3306, user="root", autocommit=True)
        with root.cursor() as cur:
            cur.execute(f"CREATE DATABASE `{name}`")

        def maria_run(statement: str) -> list[tuple[Any, ...]]:
            with root.cursor() as cur:
                cur.execute(f"USE `{name}`")
                cur.execute(statement)
                return list(cur.fetchall())

        try:
            yield Db(maria_run, {"type": "mysql", "host": HOST, "user": mariadb_reader(name),
                                 "database": name}, f"{name}.orders", "NOW()",
                     lambda m: f"NOW() - INTERVAL {m} MINUTE", "datetime")
        finally:
            with root.cursor() as cur:
                cur.execute(f"DROP DATABASE `{name}`")
            root.close()


def write_ws(root: Path, db: Db, source: dict[str, Any] | None = None,
             connection: dict[str, Any] | None = None, **stream: Any) -> None:
    """A workspace `c` from the source's table `orders` into DuckDB schema `dst`."""
    doc = {
        "version": 1,
        "sources": {"src": {**db.source, **(source or {})}},
        "destinations": {"wh": {"type": "duckdb", "path": "wh.duckdb"}},
        "connections": {"c": {"source": "src", "destination": "wh", "destination_schema": "dst",
                              "max_attempts": 1, "streams": {db.stream: stream},
                              **(connection or {})}},
    }
    (root / "syncline.yaml").write_text(yaml.safe_dump(doc), encoding="utf-8")
