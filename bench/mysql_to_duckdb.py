"""Benchmark: a 5M-row MariaDB table into DuckDB: Syncline against the mariadb client and dlt.

Usage: python bench/mysql_to_duckdb.py [--rows 5000000] [--rebuild] [--skip-peers] [--install-peers]

The table ``bench_mysql.events`` (on 127.0.0.1:3306, user root) is filled server-side from
MariaDB's sequence engine and kept between runs (``--rebuild`` recreates it). In one run it
times, each in a fresh process so peak RSS belongs to that measurement alone:

* ``mariadb --quick`` writing every row as text to /dev/null (the ceiling of a text read);
* ``CHECKSUM TABLE``: the pass every full refresh made before its read until the read
  checksummed its own rows (what the in-snapshot fingerprint saves);
* Syncline's full load (full_refresh, replace) into DuckDB;
* dlt's ``sql_database`` source, pyarrow (SQLAlchemy + PyMySQL) and connectorx backends,
  replace.

dlt and its backends live in ``bench/.venv-peers`` (``--install-peers`` adds them), never in
the project's venv. Without it the dlt rows are skipped.
"""

from __future__ import annotations

import argparse
import sys
import textwrap
import time
from pathlib import Path

import pymysql
from peers import (
    HERE,
    PEER_PY,
    REPORT,
    SYNCLINE_RUN,
    Measurements,
    fresh_dir,
    peers_ready,
    print_results,
)

WORK = HERE / ".work" / "mysql"
PEER_PACKAGES = ["dlt[duckdb,sql_database]", "connectorx", "pyarrow", "sqlalchemy", "pymysql"]
HOST, PORT, USER, DB = "127.0.0.1", 3306, "root", "bench_mysql"
LAYOUT = "v1"  # bump when the table definition below changes: kept tables are rebuilt

DDL = f"""
CREATE TABLE {DB}.events (
  id BIGINT PRIMARY KEY, user_id INT NOT NULL, event_type VARCHAR(16) NOT NULL, payload JSON,
  amount DECIMAL(12,2), is_test BOOLEAN, created_at DATETIME(6) NOT NULL,
  updated_at DATETIME(6) NOT NULL, note VARCHAR(64)) ENGINE=InnoDB
"""
FILL = f"""
INSERT INTO {DB}.events
SELECT seq, seq % 50000,
       ELT(1 + seq % 10, 'view','click','buy','refund','signup','login','logout','search','share','like'),
       JSON_OBJECT('n', seq % 97, 'src', 'web', 'ok', seq % 2 = 0),
       ((seq * 7919) % 10000000) / 100.0,
       seq % 13 = 0,
       TIMESTAMP '2026-01-01 00:00:00' + INTERVAL (seq * 500000) MICROSECOND,
       TIMESTAMP '2026-01-01 00:00:00' + INTERVAL (seq * 500000 + seq % 1000) MICROSECOND,
       IF(seq % 3 = 0, NULL, CONCAT('note for event ', LPAD(seq, 9, '0'), ' üñï'))
FROM seq_{{lo}}_to_{{hi}}
"""


def connect() -> pymysql.connections.Connection:
    return pymysql.connect(host=HOST, port=PORT, user=USER, password="", autocommit=True,
                           charset="utf8mb4")


def prepare(rows: int, rebuild: bool) -> None:
    marker = f"{LAYOUT} rows={rows}"
    con = connect()
    try:
        with con.cursor() as cur:
            cur.execute(f"CREATE DATABASE IF NOT EXISTS {DB}")
            cur.execute(f"USE {DB}")  # the sequence engine's tables are in every database
            cur.execute("SELECT table_comment FROM information_schema.tables "
                        "WHERE table_schema = %s AND table_name = 'events'", [DB])
            row = cur.fetchone()
            if row and row[0] == marker and not rebuild:
                print(f"reusing {DB}.events ({rows:,} rows)", file=sys.stderr)
                return
            print(f"building {DB}.events ({rows:,} rows) ...", file=sys.stderr)
            t0 = time.perf_counter()
            cur.execute(f"DROP TABLE IF EXISTS {DB}.events")
            cur.execute(DDL)
            step = 500_000
            for lo in range(1, rows + 1, step):
                cur.execute(FILL.format(lo=lo, hi=min(lo + step - 1, rows)))
            cur.execute(f"ANALYZE TABLE {DB}.events")
            cur.execute(f"ALTER TABLE {DB}.events COMMENT = %s", [marker])
            print(f"built in {time.perf_counter() - t0:.1f}s", file=sys.stderr)
    finally:
        con.close()


RAW_CLIENT = REPORT + textwrap.dedent(f"""
    import subprocess, sys, time
    t0 = time.perf_counter()
    with open("/dev/null", "wb") as null:
        subprocess.run(["mariadb", "--quick", "--batch", "--skip-column-names", "-h", "{HOST}",
                        "-P", "{PORT}", "-u", "{USER}", "-e", "SELECT * FROM {DB}.events"],
                       stdout=null, check=True)
    report(int(sys.argv[1]), time.perf_counter() - t0)
""")

CHECKSUM = REPORT + textwrap.dedent(f"""
    import sys, time, pymysql
    con = pymysql.connect(host="{HOST}", port={PORT}, user="{USER}", password="")
    t0 = time.perf_counter()
    with con.cursor() as cur:
        cur.execute("CHECKSUM TABLE {DB}.events")
        cur.fetchall()
    report(0, time.perf_counter() - t0)
""")


DLT_RUN = REPORT + textwrap.dedent(f"""
    import sys, time
    t0 = time.perf_counter()
    import dlt
    from dlt.sources.sql_database import sql_table
    backend, workdir = sys.argv[1], sys.argv[2]
    kwargs = {{}}
    if backend == "connectorx":
        kwargs["backend_kwargs"] = {{"conn": "mysql://{USER}:@{HOST}:{PORT}/{DB}",
                                    "return_type": "arrow_stream"}}
    table = sql_table(credentials="mysql+pymysql://{USER}:@{HOST}:{PORT}/{DB}", table="events",
                      backend=backend, write_disposition="replace", **kwargs)
    pipeline = dlt.pipeline(pipeline_name=f"bench_mysql_{{backend}}", pipelines_dir=workdir + "/pipelines",
                            destination=dlt.destinations.duckdb(workdir + "/wh.duckdb"),
                            dataset_name="bench")
    info = pipeline.run(table)
    info.raise_on_failed_jobs()
    rows = pipeline.last_trace.last_normalize_info.row_counts.get("events", 0)
    report(rows, time.perf_counter() - t0)
""")


def syncline_ws(root: Path, memory_limit: str) -> Path:
    fresh_dir(root)
    (root / "syncline.yaml").write_text(textwrap.dedent(f"""
        version: 1
        sources:
          src: {{type: mysql, host: "{HOST}", port: {PORT}, user: {USER}, database: {DB},
                 tables: [events]}}
        destinations: {{wh: {{type: duckdb, path: wh.duckdb, memory_limit: {memory_limit}}}}}
        connections:
          bench:
            source: src
            destination: wh
            streams: {{{DB}.events: {{mode: full_refresh, write: replace}}}}
    """))
    return root


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=5_000_000)
    parser.add_argument("--rebuild", action="store_true", help=f"recreate {DB}.events")
    parser.add_argument("--skip-peers", action="store_true", help="no dlt rows")
    parser.add_argument("--install-peers", action="store_true", help="add dlt and its backends to "
                        "bench/.venv-peers, then run")
    parser.add_argument("--memory-limit", default="256MB", help="DuckDB memory_limit of Syncline's destination")
    parser.add_argument("--runs", type=int, default=1, help="rounds of the timed rows (the median is shown)")
    args = parser.parse_args()
    peers = peers_ready(PEER_PACKAGES, args.install_peers, args.skip_peers, "mysql_to_duckdb.py")
    WORK.mkdir(parents=True, exist_ok=True)
    prepare(args.rows, args.rebuild)
    n, py, peer = args.rows, sys.executable, str(PEER_PY)
    taken = Measurements()
    run, wall = taken.run, taken.wall

    for _ in range(args.runs):  # interleaved: a busy spell of the machine hits every row alike
        run("raw (mariadb --quick)", py, RAW_CLIENT, str(n))
        run("CHECKSUM TABLE pass", py, CHECKSUM)
        run("syncline full", py, SYNCLINE_RUN, str(syncline_ws(WORK / "syn_full", args.memory_limit)))
        if peers:
            run("dlt pyarrow full", peer, DLT_RUN, "pyarrow", str(fresh_dir(WORK / "dlt_pyarrow")))
            run("dlt connectorx full", peer, DLT_RUN, "connectorx", str(fresh_dir(WORK / "dlt_cx")))
    print_results(f"MariaDB -> DuckDB, {n:,} rows, median of {args.runs}", taken.results())
    if not peers:
        print("(dlt rows skipped)")
    syn, raw, checksum = wall("syncline full"), wall("raw (mariadb --quick)"), wall("CHECKSUM TABLE pass")
    print()
    if syn and raw:
        print(f"syncline full / raw client read:     {syn / raw:5.2f}x")
    if syn and checksum:
        print(f"CHECKSUM TABLE pass no longer made:  {checksum:5.2f}s ({checksum / (syn + checksum):.0%} "
              "of a full refresh that made it)")
    dlt_best = min((w for w in (wall("dlt pyarrow full"), wall("dlt connectorx full")) if w), default=None)
    if syn and dlt_best:
        print(f"dlt fastest full / syncline full:    {dlt_best / syn:5.2f}x")


if __name__ == "__main__":
    main()
