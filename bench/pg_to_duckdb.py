"""Benchmark: a 5M-row PostgreSQL table into DuckDB: Syncline against raw COPY and dlt.

Usage: python bench/pg_to_duckdb.py [--rows 5000000] [--rebuild] [--skip-peers] [--install-peers]
                                    [--memory-limit 256MB] [--rounds 1] [--only NAME ...]

The table ``bench_pg.events`` (on 127.0.0.1:5432, user postgres, database test) is made
server-side with generate_series and kept between runs (``--rebuild`` recreates it). In one
run it times, each in a fresh process so peak RSS belongs to that measurement alone:

* raw ``COPY events TO STDOUT`` into /dev/null, by psql (the ceiling) and by psycopg;
* Syncline's full load (full_refresh, replace) into DuckDB;
* dlt's ``sql_database`` source, pyarrow and connectorx (arrow_stream) backends, replace;
* the initial incremental load (cursor updated_at, merge on id) of both tools, then, after
  1% of the rows are updated, the incremental load of both tools as a whole process.

dlt and connectorx live in their own venv, ``bench/.venv-peers`` (``--install-peers``
creates it); never in the project's venv. Without it the peer rows are skipped.
"""

from __future__ import annotations

import argparse
import sys
import textwrap
import time
from pathlib import Path

import psycopg
from peers import (
    HERE,
    PEER_PY,
    PEERS,
    REPORT,
    SYNCLINE_RUN,
    Measurements,
    fresh_dir,
    peers_ready,
    print_results,
)

WORK = HERE / ".work" / "pg"
PEER_PACKAGES = ["dlt[duckdb,sql_database]", "connectorx", "pyarrow", "sqlalchemy", "psycopg2-binary"]
HOST, PORT, USER, DB, SCHEMA = "127.0.0.1", 5432, "postgres", "test", "bench_pg"
CONNINFO = f"host={HOST} port={PORT} user={USER} dbname={DB}"
URL = f"postgresql://{USER}@{HOST}:{PORT}/{DB}"
SQLA_URL = f"postgresql+psycopg2://{USER}@{HOST}:{PORT}/{DB}"  # dlt's pyarrow backend (SQLAlchemy)
LAYOUT = "v1"  # bump when the table definition below changes: kept tables are rebuilt

DDL = f"""
CREATE TABLE {SCHEMA}.events (
  id bigint PRIMARY KEY, user_id int NOT NULL, event_type text NOT NULL, payload jsonb,
  amount numeric(12,2), is_test boolean, created_at timestamptz NOT NULL,
  updated_at timestamptz NOT NULL, note text)
"""
FILL = f"""
INSERT INTO {SCHEMA}.events
SELECT i, (i %% 50000)::int,
       (ARRAY['view','click','buy','refund','signup','login','logout','search','share','like'])[1 + i %% 10],
       jsonb_build_object('n', i %% 97, 'src', 'web', 'ok', i %% 2 = 0),
       ((i * 7919) %% 10000000) / 100.0,
       i %% 13 = 0,
       timestamptz '2026-01-01 00:00:00+00' + make_interval(secs => i * 0.5),
       timestamptz '2026-01-01 00:00:00+00' + make_interval(secs => i * 0.5 + (i %% 1000) * 0.000001),
       CASE WHEN i %% 3 = 0 THEN NULL ELSE 'note for event ' || lpad(i::text, 9, '0') || ' üñï' END
FROM generate_series(%s::bigint, %s::bigint) AS i
"""


# -- the source table -------------------------------------------------------------------------

def prepare(rows: int, rebuild: bool) -> None:
    marker = f"{LAYOUT} rows={rows}"
    with psycopg.connect(CONNINFO, autocommit=True) as conn:
        conn.execute(f"CREATE SCHEMA IF NOT EXISTS {SCHEMA}")
        row = conn.execute(f"SELECT obj_description(to_regclass('{SCHEMA}.events'), 'pg_class')").fetchone()
        if row and row[0] == marker and not rebuild:
            print(f"reusing {SCHEMA}.events ({rows:,} rows)", file=sys.stderr)
            return
        print(f"building {SCHEMA}.events ({rows:,} rows) ...", file=sys.stderr)
        t0 = time.perf_counter()
        conn.execute(f"DROP TABLE IF EXISTS {SCHEMA}.events")
        conn.execute(DDL)
        step = 1_000_000
        for lo in range(1, rows + 1, step):
            conn.execute(FILL, [lo, min(lo + step - 1, rows)])
        conn.execute(f"CREATE INDEX events_updated_at ON {SCHEMA}.events (updated_at)")
        conn.execute(f"VACUUM (ANALYZE, FREEZE) {SCHEMA}.events")
        conn.execute(f"COMMENT ON TABLE {SCHEMA}.events IS '{marker}'")
        print(f"built in {time.perf_counter() - t0:.1f}s", file=sys.stderr)


def settle() -> None:
    """A quiet server before a measurement: the tables the last one loaded vacuumed and its WAL
    checkpointed, so no autovacuum the load set off runs beside the next measurement."""
    with psycopg.connect(CONNINFO, autocommit=True) as conn:
        conn.execute("VACUUM (ANALYZE)")
        conn.execute("CHECKPOINT")


def update_one_percent(rows: int) -> int:
    """Touch 1% of the rows (a fresh updated_at beyond every earlier one); the count touched."""
    with psycopg.connect(CONNINFO, autocommit=True) as conn:
        cur = conn.execute(
            f"UPDATE {SCHEMA}.events SET updated_at = clock_timestamp(), amount = amount + 1 "
            f"WHERE id %% 100 = %s", [int(time.time()) % 100])
        n = cur.rowcount
        conn.execute(f"VACUUM ANALYZE {SCHEMA}.events")
    return n


# -- measurements: each one a fresh process printing one JSON line ----------------------------

RAW_PSQL = REPORT + textwrap.dedent(f"""
    import subprocess, sys, time
    t0 = time.perf_counter()
    with open("/dev/null", "wb") as null:
        subprocess.run(["psql", "-X", "-q", "-h", "{HOST}", "-p", "{PORT}", "-U", "{USER}", "-d", "{DB}",
                        "-c", "COPY {SCHEMA}.events TO STDOUT"], stdout=null, check=True)
    report(int(sys.argv[1]), time.perf_counter() - t0)
""")

RAW_PSYCOPG = REPORT + textwrap.dedent(f"""
    import sys, time, psycopg
    t0 = time.perf_counter()
    n = 0
    with psycopg.connect("{CONNINFO}") as conn, open("/dev/null", "wb") as null:
        with conn.cursor().copy("COPY {SCHEMA}.events TO STDOUT") as cp:
            for buf in cp:
                null.write(buf)
    report(int(sys.argv[1]), time.perf_counter() - t0)
""")


DLT_RUN = REPORT + textwrap.dedent(f"""
    import sys, time
    t0 = time.perf_counter()
    import dlt
    from dlt.sources.sql_database import sql_table
    backend, mode, workdir = sys.argv[1], sys.argv[2], sys.argv[3]
    kwargs = {{}}
    if backend == "connectorx":
        kwargs["backend_kwargs"] = {{"conn": "{URL}", "return_type": "arrow_stream"}}
    if mode == "incremental":
        kwargs.update(incremental=dlt.sources.incremental("updated_at"), primary_key="id",
                      write_disposition="merge")
    else:
        kwargs.update(write_disposition="replace")
    table = sql_table(credentials="{SQLA_URL}", schema="{SCHEMA}", table="events", backend=backend, **kwargs)
    pipeline = dlt.pipeline(pipeline_name=f"bench_{{backend}}_{{mode}}", pipelines_dir=workdir + "/pipelines",
                            destination=dlt.destinations.duckdb(workdir + "/wh.duckdb"),
                            dataset_name="bench")
    info = pipeline.run(table)
    info.raise_on_failed_jobs()
    rows = sum(pipeline.last_trace.last_normalize_info.row_counts.get(t, 0) for t in ("events",))
    report(rows, time.perf_counter() - t0)
""")


def syncline_ws(root: Path, mode: str, memory_limit: str) -> Path:
    fresh_dir(root)
    stream = ("{mode: full_refresh, write: replace}" if mode == "full"
              else "{mode: incremental, cursor: updated_at, write: merge}")
    (root / "syncline.yaml").write_text(textwrap.dedent(f"""
        version: 1
        sources:
          src: {{type: postgres, host: "{HOST}", port: {PORT}, user: {USER}, database: {DB},
                 tables: [{SCHEMA}.events]}}
        destinations: {{wh: {{type: duckdb, path: wh.duckdb, memory_limit: {memory_limit}}}}}
        connections:
          bench:
            source: src
            destination: wh
            streams: {{{SCHEMA}.events: {stream}}}
    """))
    return root


def dlt_dir(name: str) -> Path:
    return fresh_dir(WORK / name)


# -- the run ------------------------------------------------------------------------------------

def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=5_000_000)
    parser.add_argument("--rebuild", action="store_true", help="recreate bench_pg.events")
    parser.add_argument("--skip-peers", action="store_true", help="no dlt rows")
    parser.add_argument("--install-peers", action="store_true",
                        help=f"create {PEERS.relative_to(HERE.parent)} with dlt and connectorx, then run")
    parser.add_argument("--memory-limit", default="256MB", help="DuckDB memory_limit of Syncline's destination")
    parser.add_argument("--only", nargs="*", help="measure only these rows (names as printed)")
    parser.add_argument("--rounds", type=int, default=1, help="interleaved runs of the raw COPYs and "
                        "Syncline's full load (their medians are reported)")
    args = parser.parse_args()
    peers = peers_ready(PEER_PACKAGES, args.install_peers, args.skip_peers, "pg_to_duckdb.py")
    WORK.mkdir(parents=True, exist_ok=True)
    prepare(args.rows, args.rebuild)
    n, py, peer = args.rows, sys.executable, str(PEER_PY)
    taken = Measurements(args.only, settle=settle)
    run = taken.run

    for _ in range(args.rounds):
        run("raw COPY (psql)", py, RAW_PSQL, str(n))
        run("raw COPY (psycopg)", py, RAW_PSYCOPG, str(n))
        run("syncline full", py, SYNCLINE_RUN, str(syncline_ws(WORK / "syn_full", "full", args.memory_limit)))
    if peers:
        run("dlt pyarrow full", peer, DLT_RUN, "pyarrow", "full", str(dlt_dir("dlt_pyarrow_full")))
        run("dlt connectorx full", peer, DLT_RUN, "connectorx", "full", str(dlt_dir("dlt_cx_full")))
    syn_inc = syncline_ws(WORK / "syn_inc", "incremental", args.memory_limit)
    run("syncline incr. initial", py, SYNCLINE_RUN, str(syn_inc))
    dlt_inc = dlt_dir("dlt_cx_inc")
    if peers:
        run("dlt cx incr. initial", peer, DLT_RUN, "connectorx", "incremental", str(dlt_inc))
    touched = update_one_percent(n)
    print(f"updated {touched:,} rows (1%)", file=sys.stderr)
    run("syncline incr. 1%", py, SYNCLINE_RUN, str(syn_inc))
    if peers:
        run("dlt cx incr. 1%", peer, DLT_RUN, "connectorx", "incremental", str(dlt_inc))
    print_table(n, taken, peers)


def print_table(n: int, taken: Measurements, peers: bool) -> None:
    print_results(f"PostgreSQL -> DuckDB, {n:,} rows", taken.results())
    if not peers:
        print("(dlt rows skipped)")
    wall = taken.wall

    syn, raw = wall("syncline full"), wall("raw COPY (psql)")
    print()
    if syn and raw:
        print(f"syncline full / raw COPY (psql):      {syn / raw:5.2f}x  (goal: <= 1.10x)")
    if syn and wall("raw COPY (psycopg)"):
        print(f"syncline full / raw COPY (psycopg):   {syn / wall('raw COPY (psycopg)'):5.2f}x")  # type: ignore[operator]
    dlt_best = min((w for w in (wall("dlt pyarrow full"), wall("dlt connectorx full")) if w), default=None)
    if syn and dlt_best:
        print(f"dlt fastest full / syncline full:     {dlt_best / syn:5.2f}x  (goal: >= 2.00x)")
    si, di = wall("syncline incr. 1%"), wall("dlt cx incr. 1%")
    if si and di:
        print(f"dlt incr. 1% / syncline incr. 1%:     {di / si:5.2f}x")


if __name__ == "__main__":
    main()
