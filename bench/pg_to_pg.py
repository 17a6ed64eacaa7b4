"""Benchmark: a 5M-row PostgreSQL table into a PostgreSQL destination: Syncline against the raw
COPY pipe and dlt's two PostgreSQL loaders.

Usage: python bench/pg_to_pg.py [--rows 5000000] [--rebuild] [--skip-peers] [--install-peers]
                                [--rounds 1]

The source is ``bench_pg.events`` of ``pg_to_duckdb.py`` (made and kept the same way); the
destination is schema ``bench_pg_dst`` of the same server (database test). In one run, each
in a fresh process:

* the raw pipe ``psql COPY … TO STDOUT | psql COPY … FROM STDIN`` into an empty table of the
  same columns (the ceiling: no conversion, no staging, no checkpoint);
* Syncline's full load (full_refresh, replace) and its incremental load (cursor updated_at,
  merge on id): the initial one, then after 1% of the rows changed;
* dlt's ``sql_database`` source (connectorx) into dlt's ``postgres`` destination with its
  default loader (``insert_values``) and with its COPY loader (``csv``), replace; and the
  merge of the 1% with the faster of the two.

Before each measurement the server is settled (VACUUM ANALYZE, CHECKPOINT): no autovacuum
of one load runs beside the next. dlt lives in ``bench/.venv-peers`` (``--install-peers``), never in the project's venv.
"""

from __future__ import annotations

import argparse
import sys
import textwrap
from pathlib import Path

import psycopg
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
from pg_to_duckdb import (
    CONNINFO,
    DB,
    HOST,
    PORT,
    SCHEMA,
    URL,
    USER,
    prepare,
    settle,
    update_one_percent,
)

WORK = HERE / ".work" / "pg_to_pg"
DEST = "bench_pg_dst"
PEER_PACKAGES = ["dlt[postgres,sql_database]", "connectorx", "pyarrow", "sqlalchemy", "psycopg2-binary"]
PSQL = f'psql -X -q -h {HOST} -p {PORT} -U {USER} -d {DB}'

RAW_PIPE = REPORT + textwrap.dedent(f"""
    import subprocess, sys, time
    subprocess.run(['psql', '-X', '-q', '-h', '{HOST}', '-p', '{PORT}', '-U', '{USER}', '-d', '{DB}', '-c',
                    'DROP TABLE IF EXISTS {DEST}.raw_events; CREATE SCHEMA IF NOT EXISTS {DEST}; '
                    'CREATE TABLE {DEST}.raw_events (LIKE {SCHEMA}.events)'], check=True)
    t0 = time.perf_counter()
    subprocess.run('{PSQL} -c "COPY {SCHEMA}.events TO STDOUT" | {PSQL} -c "COPY {DEST}.raw_events FROM STDIN"',
                   shell=True, check=True)
    report(int(sys.argv[1]), time.perf_counter() - t0)
""")


DLT_RUN = REPORT + textwrap.dedent(f"""
    import sys, time
    t0 = time.perf_counter()
    import dlt
    from dlt.sources.sql_database import sql_table
    loader, mode, workdir, dataset = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4]
    kwargs = {{"backend_kwargs": {{"conn": "{URL}", "return_type": "arrow_stream"}}}}
    if mode == "incremental":
        kwargs.update(incremental=dlt.sources.incremental("updated_at"), primary_key="id",
                      write_disposition="merge")
    else:
        kwargs.update(write_disposition="replace")
    table = sql_table(credentials="postgresql+psycopg2://{USER}@{HOST}:{PORT}/{DB}", schema="{SCHEMA}",
                      table="events", backend="connectorx", **kwargs)
    # trust authentication: dlt asks for a password, the server ignores it
    pipeline = dlt.pipeline(pipeline_name=f"bench_pg_{{loader}}_{{mode}}", pipelines_dir=workdir + "/pipelines",
                            destination=dlt.destinations.postgres("postgresql://{USER}:trust@{HOST}:{PORT}/{DB}"),
                            dataset_name=dataset)
    info = pipeline.run(table, loader_file_format=loader)
    info.raise_on_failed_jobs()
    rows = pipeline.last_trace.last_normalize_info.row_counts.get("events", 0)
    report(rows, time.perf_counter() - t0)
""")


def syncline_ws(root: Path, mode: str) -> Path:
    fresh_dir(root)
    stream = ("{mode: full_refresh, write: replace}" if mode == "full"
              else "{mode: incremental, cursor: updated_at, write: merge}")
    (root / "syncline.yaml").write_text(textwrap.dedent(f"""
        version: 1
        sources:
          src: {{type: postgres, host: "{HOST}", port: {PORT}, user: {USER}, database: {DB},
                 tables: [{SCHEMA}.events]}}
        destinations: {{wh: {{type: postgres, host: "{HOST}", port: {PORT}, user: {USER}, database: {DB}}}}}
        connections:
          bench:
            source: src
            destination: wh
            destination_schema: {DEST}_{mode}
            streams: {{{SCHEMA}.events: {stream}}}
    """))
    return root


def drop_destinations() -> None:
    with psycopg.connect(CONNINFO, autocommit=True) as conn:
        for name in (DEST, f"{DEST}_full", f"{DEST}_incremental", "dlt_insert_values", "dlt_csv",
                     "dlt_merge"):
            conn.execute(f"DROP SCHEMA IF EXISTS {name} CASCADE")
            conn.execute(f"DROP SCHEMA IF EXISTS {name}_staging CASCADE")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=5_000_000)
    parser.add_argument("--rebuild", action="store_true", help=f"recreate {SCHEMA}.events")
    parser.add_argument("--skip-peers", action="store_true", help="no dlt rows")
    parser.add_argument("--rounds", type=int, default=1, help="interleaved runs of the raw pipe and "
                        "Syncline's full load (their medians are reported)")
    parser.add_argument("--install-peers", action="store_true", help="add dlt's PostgreSQL "
                        "destination to bench/.venv-peers, then run")
    args = parser.parse_args()
    peers = peers_ready(PEER_PACKAGES, args.install_peers, args.skip_peers, "pg_to_pg.py")
    WORK.mkdir(parents=True, exist_ok=True)
    prepare(args.rows, args.rebuild)
    drop_destinations()
    n, py, peer = args.rows, sys.executable, str(PEER_PY)
    taken = Measurements(settle=settle)
    run, wall = taken.run, taken.wall

    for _ in range(args.rounds):
        run("raw COPY pipe (psql)", py, RAW_PIPE, str(n))
        run("syncline full", py, SYNCLINE_RUN, str(syncline_ws(WORK / "syn_full", "full")))
    if peers:
        run("dlt insert_values full", peer, DLT_RUN, "insert_values", "full",
            str(fresh_dir(WORK / "dlt_iv")), "dlt_insert_values")
        run("dlt csv (COPY) full", peer, DLT_RUN, "csv", "full", str(fresh_dir(WORK / "dlt_csv")), "dlt_csv")
    syn_inc = syncline_ws(WORK / "syn_inc", "incremental")
    run("syncline incr. initial", py, SYNCLINE_RUN, str(syn_inc))
    dlt_inc = fresh_dir(WORK / "dlt_merge")
    if peers:
        run("dlt csv incr. initial", peer, DLT_RUN, "csv", "incremental", str(dlt_inc), "dlt_merge")
    touched = update_one_percent(n)
    print(f"updated {touched:,} rows (1%)", file=sys.stderr)
    run("syncline incr. 1%", py, SYNCLINE_RUN, str(syn_inc))
    if peers:
        run("dlt csv incr. 1%", peer, DLT_RUN, "csv", "incremental", str(dlt_inc), "dlt_merge")
    print_results(f"PostgreSQL -> PostgreSQL, {n:,} rows", taken.results())
    if not peers:
        print("(dlt rows skipped)")
    syn, pipe = wall("syncline full"), wall("raw COPY pipe (psql)")
    print()
    if syn and pipe:
        print(f"syncline full / raw COPY pipe:        {syn / pipe:5.2f}x  (goal: <= 1.50x)")
    dlt_best = min((w for w in (wall("dlt insert_values full"), wall("dlt csv (COPY) full")) if w),
                   default=None)
    if syn and dlt_best:
        print(f"dlt faster loader / syncline full:    {dlt_best / syn:5.2f}x  (goal: >= 5.00x)")
    si, di = wall("syncline incr. 1%"), wall("dlt csv incr. 1%")
    if si and di:
        print(f"dlt incr. 1% / syncline incr. 1%:     {di / si:5.2f}x")


if __name__ == "__main__":
    main()
