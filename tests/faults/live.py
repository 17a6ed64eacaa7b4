"""Live writers for the fault oracle: application threads that insert and update `events` on a real
PostgreSQL or MariaDB while syncs run and get killed.

Rows are stamped by the database clock (`now()`, `CURRENT_TIMESTAMP(6)`) inside transactions
that stay open a while, so a commit often lands after a row stamped later was already read:
the late commits a cursor read must not skip. The source itself is the oracle's truth at
the end (`expected`): every key at its newest version, nothing deleted.
"""

from __future__ import annotations

import itertools
import random
import threading
import time
from abc import abstractmethod
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import psycopg
import pymysql

from faults.oracle import Expected, SourceTable

HOST = "127.0.0.1"


class LiveTable(SourceTable):
    """`events (id, version, payload, updated_at)` with `updated_at` set by the database clock."""

    @abstractmethod
    def connect(self) -> Any:
        """A connection of the writers' own, not in autocommit."""

    @abstractmethod
    def ddl(self) -> str: ...

    def _stamp(self, tick: int) -> Any:  # never used: the database stamps the rows
        raise NotImplementedError

    def create(self, rows: int, rng: random.Random, payload_bytes: int = 8) -> None:
        self._execute(self.ddl())
        self._executemany(self._sql("INSERT INTO events (id, version, payload) VALUES (?, 1, ?)"),
                          [(i, rng.randbytes(payload_bytes).hex()) for i in range(1, rows + 1)])

    def expected(self) -> Expected:
        versions = {int(k): int(v) for k, v in self._execute("SELECT id, version FROM events")}
        return Expected(versions, frozenset())


class LivePostgresTable(LiveTable):
    mark = "%s"

    def __init__(self, conninfo: str, schema: str) -> None:
        self.conninfo, self.schema = conninfo, schema

    def connect(self) -> psycopg.Connection[Any]:
        con = psycopg.connect(self.conninfo, autocommit=False)
        con.execute(f'SET search_path TO "{self.schema}"')
        return con

    def ddl(self) -> str:
        return ("CREATE TABLE events (id integer PRIMARY KEY, version integer NOT NULL, payload text, "
                "updated_at timestamptz NOT NULL DEFAULT now())")

    def _execute(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        with self.connect() as con:
            cur = con.execute(sql, params)
            return cur.fetchall() if cur.description else []

    def _executemany(self, sql: str, rows: list[tuple[Any, ...]]) -> None:
        with self.connect() as con, con.cursor() as cur:
            cur.executemany(sql, rows)


class LiveMariaTable(LiveTable):
    mark = "%s"

    def __init__(self, database: str) -> None:
        self.database = database

    def connect(self) -> Any:
        return pymysql.connect(host=HOST, port=3306, user="root", database=self.database,
                               autocommit=False)

    def ddl(self) -> str:
        return ("CREATE TABLE events (id int PRIMARY KEY, version int NOT NULL, payload varchar(64), "
                "updated_at datetime NOT NULL DEFAULT CURRENT_TIMESTAMP "
                "ON UPDATE CURRENT_TIMESTAMP)")  # whole seconds: coarse, like most schemas

    def _execute(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        con = self.connect()
        try:
            with con.cursor() as cur:
                cur.execute(sql, params)
                rows = list(cur.fetchall())
            con.commit()
            return rows
        finally:
            con.close()

    def _executemany(self, sql: str, rows: list[tuple[Any, ...]]) -> None:
        con = self.connect()
        try:
            with con.cursor() as cur:
                cur.executemany(sql, rows)
            con.commit()
        finally:
            con.close()


@contextmanager
def live_writers(table: LiveTable, seed: int, threads: int = 3, updates: bool = True,
                 hold_s: float = 0.05) -> Iterator[list[int]]:
    """Writer threads until the block ends; yields a one-item list counting their commits."""
    stop = threading.Event()
    ids = itertools.count(int(table._execute("SELECT max(id) FROM events")[0][0]) + 1)
    lock = threading.Lock()
    commits = [0]
    errors: list[BaseException] = []
    update_now = ("UPDATE events SET version = version + 1, updated_at = now() WHERE id = %s"
                  if isinstance(table, LivePostgresTable)
                  else "UPDATE events SET version = version + 1 WHERE id = %s")

    def write(n: int) -> None:
        rnd = random.Random(seed * 100 + n)
        con = table.connect()
        try:
            while not stop.is_set():
                with lock:
                    new = [next(ids) for _ in range(rnd.randint(1, 3))]
                # updates in key order, so two writers never wait on each other in a cycle
                touched = sorted({rnd.randint(1, new[0] - 1) for _ in new if updates and rnd.random() < 0.5})
                with con.cursor() as cur:
                    for key in touched:
                        cur.execute(update_now, [key])
                    for key in new[len(touched):]:
                        cur.execute("INSERT INTO events (id, version, payload) VALUES (%s, 1, 'live')",
                                    [key])
                time.sleep(rnd.uniform(0, hold_s))  # stamped, not yet committed
                con.commit()
                with lock:
                    commits[0] += 1
        except BaseException as exc:  # surfaced when the block ends
            errors.append(exc)
        finally:
            con.close()

    workers = [threading.Thread(target=write, args=(n,), daemon=True) for n in range(threads)]
    for w in workers:
        w.start()
    try:
        yield commits
    finally:
        stop.set()
        for w in workers:
            w.join()
    if errors:
        raise AssertionError(f"a live writer failed: {errors[0]!r}")
