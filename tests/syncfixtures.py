"""Helpers for engine tests: a small typed SQLite source, a workspace, and row comparison."""

from __future__ import annotations

import datetime as dt
import decimal
import json
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import duckdb
import yaml

from syncline import failpoints
from syncline.config import load_workspace
from syncline.engine.run import Runner, RunResult
from syncline.store.store import MetadataStore

ITEMS_DDL = """
CREATE TABLE items (
  id INTEGER PRIMARY KEY,
  name TEXT,
  price DECIMAL(10,2),
  ratio DOUBLE,
  active BOOLEAN,
  meta JSON,
  born DATE,
  created TIMESTAMPTZ,
  updated_at TIMESTAMP NOT NULL
)
"""

NAMES = ["Zoë Ångström", "São Paulo", "東京", "plain", None, "emoji 🎉", "O'Brien", 'quote "x"']


def item_row(i: int, version: int = 0, tie: bool = False) -> tuple[Any, ...]:
    stamp = dt.datetime(2026, 1, 1) + dt.timedelta(seconds=(0 if tie else i) + version * 100_000)
    return (
        i,
        NAMES[i % len(NAMES)],
        None if i % 5 == 0 else f"{(i * 37) % 10000}.{i % 100:02d}",
        None if i % 7 == 0 else i / 3,
        None if i % 11 == 0 else bool(i % 2),
        None if i % 4 == 0 else json.dumps({"k": i, "tags": ["a", "ü"], "v": version}, ensure_ascii=False),
        None if i % 6 == 0 else (dt.date(2000, 1, 1) + dt.timedelta(days=i)).isoformat(),
        None if i % 9 == 0 else (dt.datetime(2025, 6, 1, tzinfo=dt.UTC) + dt.timedelta(minutes=i)).isoformat(),
        stamp.isoformat(sep=" ", timespec="microseconds"),
    )


def make_items(path: Path, n: int, *, tie: bool = False) -> None:
    con = sqlite3.connect(path)
    con.execute(ITEMS_DDL)
    con.executemany("INSERT INTO items VALUES (?,?,?,?,?,?,?,?,?)", [item_row(i, tie=tie) for i in range(1, n + 1)])
    con.commit()
    con.close()


def write_ws(root: Path, streams: dict[str, Any] | None, *, batch_size: int = 1000,
             source_path: str = "src.db", max_attempts: int = 1, metadata: str | None = None) -> Path:
    conn: dict[str, Any] = {
        "source": "src", "destination": "wh", "destination_schema": "dst",
        "batch_size": batch_size, "max_attempts": max_attempts,
    }
    if streams is not None:
        conn["streams"] = streams
    doc = {
        "version": 1,
        "sources": {"src": {"type": "sqlite", "path": source_path}},
        "destinations": {"wh": {"type": "duckdb", "path": "wh.duckdb"}},
        "connections": {"c": conn},
        **({"metadata": metadata} if metadata else {}),
    }
    (root / "syncline.yaml").write_text(yaml.safe_dump(doc), encoding="utf-8")
    return root


def sqlite_script(db: Path, script: str) -> None:
    """Run `script` on the SQLite source file `db` (made if missing) and commit it."""
    con = sqlite3.connect(db)
    con.executescript(script)
    con.commit()
    con.close()


def rebuild_t(db: Path, ddl: str, keep: str, new_rows: str) -> None:
    """Table `t` of `db` made again as `ddl`: its rows copied by the SELECT list `keep`, then `new_rows`."""
    sqlite_script(db, f"ALTER TABLE t RENAME TO old; {ddl}; INSERT INTO t SELECT {keep} FROM old; "
                      f"DROP TABLE old; INSERT INTO t VALUES {new_rows};")



def run_sync(root: Path, **kwargs: Any) -> RunResult:
    ws = load_workspace(root)
    store = MetadataStore(ws.metadata_url())
    try:
        return Runner(ws, store).sync("c", **kwargs)
    finally:
        store.close()


def expected_items(path: Path) -> dict[int, tuple[Any, ...]]:
    """Source rows as the destination must hold them: canonical Python values."""
    con = sqlite3.connect(path)
    out = {}
    for r in con.execute("SELECT * FROM items ORDER BY id"):
        out[r[0]] = (
            r[0], r[1],
            None if r[2] is None else decimal.Decimal(repr(r[2]) if isinstance(r[2], float) else str(r[2])).quantize(decimal.Decimal("0.01")),
            r[3], None if r[4] is None else bool(r[4]),
            None if r[5] is None else json.loads(r[5]),
            None if r[6] is None else dt.date.fromisoformat(r[6]),
            None if r[7] is None else dt.datetime.fromisoformat(r[7]).astimezone(dt.UTC),
            dt.datetime.fromisoformat(r[8]),
        )
    con.close()
    return out


def dest_items(root: Path, table: str = "items", where: str = "") -> list[tuple[Any, ...]]:
    con = duckdb.connect(str(root / "wh.duckdb"), read_only=True)
    con.execute("SET TimeZone = 'UTC'")
    rows = con.execute(
        f"SELECT id, name, price, ratio, active, meta, born, created, updated_at FROM dst.{table} {where} ORDER BY id"
    ).fetchall()
    con.close()
    return [
        (r[0], r[1], r[2], r[3], r[4], None if r[5] is None else json.loads(r[5]), r[6],
         None if r[7] is None else r[7].astimezone(dt.UTC), r[8])
        for r in rows
    ]


def dest_query(root: Path, sql: str) -> list[tuple[Any, ...]]:
    con = duckdb.connect(str(root / "wh.duckdb"), read_only=True)
    try:
        return con.execute(sql).fetchall()
    finally:
        con.close()


@contextmanager
def failpoints_on(spec: str) -> Iterator[None]:
    """`SYNCLINE_FAILPOINTS` for the runs inside, in this process; cleared afterwards."""
    failpoints.configure(spec)
    try:
        yield
    finally:
        failpoints.configure(None)


@contextmanager
def holding_lock(duckdb_path: Path, seconds: float = 3600,
                 read_only: bool = False) -> Iterator[subprocess.Popen[bytes]]:
    """Another process holds ``duckdb_path`` open (DuckDB's file lock: read-write, or read-only
    as a BI tool keeps it) for ``seconds`` or until the caller kills it."""
    code = ("import duckdb, sys, time\n"
            "con = duckdb.connect(sys.argv[1], read_only=sys.argv[3] == 'ro')\n"
            "print('locked', flush=True)\n"
            "time.sleep(float(sys.argv[2]))\n"
            "con.close()\n")
    proc = subprocess.Popen([sys.executable, "-c", code, str(duckdb_path), str(seconds),
                             "ro" if read_only else "rw"], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        assert proc.stdout is not None and proc.stderr is not None
        if proc.stdout.readline().strip() != b"locked":
            raise AssertionError(f"the lock holder did not start: {proc.stderr.read()!r}")
        yield proc
    finally:
        proc.kill()
        proc.wait()
