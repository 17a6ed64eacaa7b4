"""Where a PostgreSQL full refresh resumes, and whether it may: ctid order, fingerprints, checks.

A table is read in physical order and checkpointed by ctid; its checkpoints carry the
fingerprint ``ctid:<filenode>:<rows>:<ctid>:<snapshot>``, and a resume checks only the
rows up to that ctid. Views, partitioned tables and CDC snapshots are read in key order
with the fingerprint ``<count>:<snapshot>`` of the whole table.
"""

from __future__ import annotations

from typing import Any

import psycopg
from psycopg import sql

from syncline.errors import TransientError
from syncline.sources.postgres.read import CTID
from syncline.stream import ReadRequest

# Rows the snapshot %s could not see; the 64-bit id of a row's xmin takes the current epoch.
_UNSEEN_SQL = """
SELECT count(*), count(*) FILTER (WHERE NOT pg_visible_in_snapshot(
    (CASE WHEN e.base + t.xmin::text::bigint > e.next THEN e.base + t.xmin::text::bigint - 4294967296
          ELSE e.base + t.xmin::text::bigint END)::text::xid8, %s::pg_snapshot))
FROM {} AS t, (SELECT (x >> 32) << 32 AS base, x AS next
               FROM (SELECT pg_snapshot_xmax(pg_current_snapshot())::text::bigint AS x) AS s) AS e
"""


def changed(conn: psycopg.Connection[Any], relation: sql.Identifier, fingerprint: str) -> bool:
    """Whether a row was inserted, updated or deleted since `fingerprint`, or, for a read in
    ctid order, in the part of the table read before its checkpoint.

    One scan on the server: a row version written by a transaction that the recorded
    snapshot could not see (committed later, even if it began earlier) is a change; a
    delete alone shows in the count. A row's 32-bit xmin gets the epoch of the current
    transaction counter; a frozen row mistaken for a new one only costs a restart.

    After a ctid-order read the scan covers only the ctids up to the checkpoint: if those
    rows are as they were, the rest of the table is read now, and the result is the table
    as it is now. A new file (VACUUM FULL, CLUSTER, TRUNCATE) is a change.
    """
    try:
        if fingerprint.startswith("ctid:"):
            _, filenode, count, last, snapshot = fingerprint.split(":", 4)
            return prefix_changed(conn, relation, int(filenode), int(count), last, snapshot)
        count, _, snapshot = fingerprint.partition(":")
        row = conn.execute(sql.SQL(_UNSEEN_SQL).format(relation), [snapshot]).fetchone()
    except psycopg.errors.UndefinedFunction:
        return True  # before PostgreSQL 13 there is no snapshot test: restart to be exact
    return row is None or str(row[0]) != count or bool(row[1])


def count_fingerprint(conn: psycopg.Connection[Any], relation: sql.Identifier) -> str | None:
    row = conn.execute(sql.SQL("SELECT count(*), pg_current_snapshot()::text FROM {}").format(
        relation)).fetchone()
    return f"{row[0]}:{row[1]}" if row else None


def physical_read(conn: psycopg.Connection[Any], req: ReadRequest, relation: sql.Identifier
                   ) -> tuple[int, str] | None:
    """(file node, snapshot) of a full refresh that reads in ctid order, or None where it cannot.

    A sequential scan with no sort is the cheapest read there is, and unlike an index scan
    it stays sequential on a table whose rows are not stored in key order. A ctid names
    a row only in a plain table or materialized view without inheritance children, and
    only while the table keeps its file (VACUUM FULL, CLUSTER and TRUNCATE give it a new
    one, which the fingerprint records). A build begun in key order resumes in key order.
    """
    if req.mode != "full_refresh" or conn.info.server_version < 130000:
        return None  # before PostgreSQL 13 there is no pg_current_snapshot() to fingerprint with
    cp = req.checkpoint
    if cp is not None and cp.get("columns") != [CTID]:
        return None
    row = conn.execute(
        "SELECT c.relkind IN ('r', 'm') AND NOT c.relhassubclass, pg_relation_filenode(c.oid), "
        "pg_current_snapshot()::text FROM pg_class c WHERE c.oid = %s::regclass",
        [relation.as_string(conn)]).fetchone()
    if row is None or not row[0] or row[1] is None:
        return None
    return int(row[1]), str(row[2])


def check_prefix(conn: psycopg.Connection[Any], relation: sql.Identifier, req: ReadRequest, filenode: int
                  ) -> None:
    """A resumed read in ctid order reads only the rows after its checkpoint: make sure, in
    this read's own snapshot, that the rows before it are still those committed (the
    engine checked before the read began; a write may have landed in between)."""
    cp = req.checkpoint or {}
    if cp.get("after") is None or "snapshot" not in cp:
        return
    if prefix_changed(conn, relation, int(cp["filenode"]), int(cp["rows"]), str(cp["after"][0]),
                       str(cp["snapshot"]), now=filenode):
        raise TransientError(
            f"{req.stream.name} changed just before this resumed read began",
            stream=req.stream.name, fix="nothing to do: the next attempt sees the change and starts "
            "the build over")


def prefix_changed(conn: psycopg.Connection[Any], relation: sql.Identifier, filenode: int, rows: int,
                    last: str, snapshot: str, now: int | None = None) -> bool:
    """Whether the table has a new file, or its rows up to ctid `last` differ from the `rows`
    rows `snapshot` saw there: one scan of that part (`now` is the file node if known)."""
    if now is None:
        node = conn.execute("SELECT pg_relation_filenode(%s::regclass)", [relation.as_string(conn)]).fetchone()
        now = None if node is None or node[0] is None else int(node[0])
    if now != filenode:
        return True
    query = sql.SQL(_UNSEEN_SQL).format(relation) + sql.SQL(" WHERE t.ctid <= CAST(%s AS tid)")
    row = conn.execute(query, [snapshot, last]).fetchone()
    return row is None or int(row[0]) != rows or bool(row[1])
