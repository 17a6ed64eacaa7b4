"""PostgreSQL change data capture: one logical slot per stream, pgoutput read through the SQL interface."""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import hashlib
import re
import struct
from collections.abc import Iterator
from typing import Any, Protocol

import psycopg
import pyarrow as pa
from psycopg import sql

from syncline.errors import ConfigurationError, SourceError
from syncline.schema import BOOLEAN, INT64, TIMESTAMPTZ, Column, StreamSchema
from syncline.sources.postgres.privileges import quoted
from syncline.sources.postgres.types import text_to_batch
from syncline.stream import Checkpoint, ReadRequest, StreamItem


class CdcSettings(Protocol):
    """The `mode: cdc` keys of a PostgreSQL source's configuration."""

    @property
    def publication(self) -> str | None: ...
    @property
    def slot(self) -> str | None: ...
    @property
    def create_publication(self) -> bool: ...
    @property
    def cdc_max_changes(self) -> int: ...


class CdcHost(Protocol):
    """What the CDC reader needs of the PostgreSQL source that runs it (no import back)."""

    name: str
    _relations: dict[str, tuple[str, str]]

    @property
    def config(self) -> CdcSettings: ...

    def _read(self, conn: psycopg.Connection[Any], req: ReadRequest, fingerprint: bool = False,
              physical: bool = True) -> Iterator[StreamItem]: ...

#: The system cursor of a cdc stream: the commit LSN of a row's transaction (the slot's
#: start LSN for snapshot rows). Kept equal to ``syncline.engine.plan.CDC_CURSOR``.
LSN_COLUMN = "_syncline_lsn"
DELETED = "_syncline_deleted"  # the destinations' soft-delete column; sources do not import them
#: when the change committed at the source; a destination keeping history dates versions by it
CHANGED_AT = "_syncline_changed_at"
#: pgoutput's commit timestamps count microseconds from 2000-01-01 UTC
PG_EPOCH = dt.datetime(2000, 1, 1, tzinfo=dt.UTC)
_MISSING = object()  # an unchanged TOASTed value: pgoutput does not send it


def lsn_int(text: str) -> int:
    high, _, low = text.partition("/")
    return (int(high, 16) << 32) + int(low, 16)


def lsn_text(value: int) -> str:
    return f"{value >> 32:X}/{value & 0xFFFFFFFF:X}"


def slot_name(base: str, stream: str) -> str:
    """`<slot>_<table>` (`<slot>_<schema>_<table>` outside public), made a valid slot name.

    Slot names allow only [a-z0-9_] and 63 bytes: a name that had to be changed gets a
    hash of the original, so two tables never share a slot.
    """
    schema, _, table = stream.partition(".")
    raw = f"{base}_{table}" if schema == "public" else f"{base}_{schema}_{table}"
    name = re.sub(r"[^a-z0-9_]", "_", raw.lower())
    if name != raw or len(name) > 63:
        name = f"{name[:54]}_{hashlib.sha1(raw.encode()).hexdigest()[:8]}"
    return name


def strip_lsn(stream: StreamSchema) -> StreamSchema:
    """The table's own columns: what the COPY snapshot selects."""
    return dataclasses.replace(stream, columns=tuple(c for c in stream.columns if c.name != LSN_COLUMN))


def prerequisites(conn: psycopg.Connection[Any], source: str, stream: str) -> None:
    """What a cdc read needs of the server and its user, checked before any row is read:
    logical decoding on, a replication slot free, the REPLICATION attribute."""
    row = conn.execute(
        "SELECT current_setting('wal_level'), current_setting('max_replication_slots')::int, "
        "r.rolreplication OR r.rolsuper, current_user FROM pg_roles r WHERE r.rolname = current_user"
    ).fetchone()
    assert row is not None
    wal_level, slots, replication, user = row
    if not replication:
        raise ConfigurationError(
            f"source '{source}': mode: cdc needs a user with the REPLICATION attribute, and {user} "
            "has not", stream=stream, fix=f"ALTER ROLE {quoted(user)} REPLICATION; (or use a superuser)")
    if wal_level != "logical" or slots < 1:
        setting = f"wal_level is {wal_level}" if wal_level != "logical" else "max_replication_slots is 0"
        raise ConfigurationError(
            f"source '{source}': mode: cdc needs logical decoding, and the server's {setting}",
            stream=stream, fix="set wal_level = logical (and max_replication_slots > 0) on the server "
            "and restart it")


class CdcReader:
    """One cdc read of one stream: the initial snapshot, or the changes after the checkpoint."""

    def __init__(self, source: CdcHost, req: ReadRequest, conn: psycopg.Connection[Any]) -> None:
        if not req.primary_key:
            raise ConfigurationError("mode: cdc needs a primary key", stream=req.stream.name,
                                     fix="set `primary_key:` for this stream, or use another mode")
        self.src, self.req, self.conn = source, req, conn
        self.base = strip_lsn(req.stream)
        self.schema, self.table = source._relations.get(req.stream.name, _split(req.stream.name))
        cfg = source.config
        self.publication = cfg.publication or f"syncline_{source.name}"
        self.slot = slot_name(cfg.slot or f"syncline_{source.name}", req.stream.name)
        self.resnapshot = (f"run `syncline sync <connection> --full-refresh --stream {req.stream.name}` "
                           "to re-snapshot the table and recreate the slot")

    # -- slot and publication ------------------------------------------------------------

    def _publication(self, create: bool) -> str | None:
        """Make sure the publication holds the table: "created" or "added" when this call
        made it so (for `_undo`), None when it already did."""
        exists, has_table = self.conn.execute(
            "SELECT EXISTS (SELECT 1 FROM pg_publication WHERE pubname = %s), EXISTS (SELECT 1 FROM "
            "pg_publication_tables WHERE pubname = %s AND schemaname = %s AND tablename = %s)",
            [self.publication, self.publication, self.schema, self.table]).fetchone() or (False, False)
        if exists and has_table:
            return None
        rel = sql.Identifier(self.schema, self.table)
        pub = sql.Identifier(self.publication)
        if not create or not self.src.config.create_publication:
            what = "does not exist" if not exists else f"does not include {self.schema}.{self.table}"
            raise ConfigurationError(
                f"publication '{self.publication}' {what}: changes of the table are not captured",
                stream=self.req.stream.name,
                fix=f"CREATE PUBLICATION / ALTER PUBLICATION {self.publication} ADD TABLE "
                f"{self.schema}.{self.table}, then {self.resnapshot}")
        try:
            if exists:
                self.conn.execute(sql.SQL("ALTER PUBLICATION {} ADD TABLE {}").format(pub, rel))
                return "added"
            self.conn.execute(sql.SQL("CREATE PUBLICATION {} FOR TABLE {}").format(pub, rel))
            return "created"
        except psycopg.errors.InsufficientPrivilege as exc:
            raise ConfigurationError(
                f"cannot create publication '{self.publication}': {exc}", stream=self.req.stream.name,
                fix="GRANT CREATE ON DATABASE to the source user (and make it the table owner), or "
                f"create it yourself: CREATE PUBLICATION {self.publication} FOR TABLE "
                f"{self.schema}.{self.table}") from None

    def _undo(self, made: str | None) -> None:
        """Take back what `_publication` did for a read that then failed to start: a failed
        first attempt leaves the database as it found it."""
        pub, rel = sql.Identifier(self.publication), sql.Identifier(self.schema, self.table)
        statement = {"created": sql.SQL("DROP PUBLICATION IF EXISTS {}").format(pub),
                     "added": sql.SQL("ALTER PUBLICATION {} DROP TABLE {}").format(pub, rel)}.get(made or "")
        if statement is not None:
            with contextlib.suppress(psycopg.Error):  # the first failure is the one to report
                self.conn.execute(statement)

    def _recreate_slot(self) -> int:
        """A fresh slot: every change committed after its LSN will be decoded."""
        try:
            self.conn.execute("SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots "
                              "WHERE slot_name = %s", [self.slot])
            row = self.conn.execute("SELECT lsn::text FROM pg_create_logical_replication_slot(%s, "
                                    "'pgoutput')", [self.slot]).fetchone()
        except psycopg.errors.InsufficientPrivilege as exc:
            raise ConfigurationError(
                f"cannot create replication slot '{self.slot}': {exc}", stream=self.req.stream.name,
                fix="ALTER ROLE <source user> REPLICATION (or use a superuser)") from None
        except psycopg.errors.ObjectNotInPrerequisiteState as exc:
            raise ConfigurationError(
                f"cannot create replication slot '{self.slot}': {exc}", stream=self.req.stream.name,
                fix="set wal_level = logical (and max_replication_slots > 0) on the server and "
                "restart it") from None
        except psycopg.errors.ConfigurationLimitExceeded as exc:
            raise ConfigurationError(
                f"cannot create replication slot '{self.slot}': {exc}", stream=self.req.stream.name,
                fix="drop slots no longer used (SELECT slot_name FROM pg_replication_slots WHERE NOT "
                "active; SELECT pg_drop_replication_slot('<name>')) or raise max_replication_slots "
                "on the server and restart it") from None
        assert row is not None
        return lsn_int(row[0])

    def _slot_status(self) -> tuple[int, int]:
        """(confirmed LSN, lag in bytes); fails loudly when the slot's changes are gone."""
        row = self.conn.execute(
            "SELECT confirmed_flush_lsn::text, wal_status, "
            "(pg_current_wal_lsn() - confirmed_flush_lsn)::bigint FROM pg_replication_slots "
            "WHERE slot_name = %s AND database = current_database()", [self.slot]).fetchone()
        if row is None or row[0] is None or row[1] == "lost":
            what = "does not exist (dropped?)" if row is None else "was invalidated (its WAL is gone)"
            raise ConfigurationError(
                f"replication slot '{self.slot}' {what}: changes since the last sync cannot be read",
                stream=self.req.stream.name, fix=self.resnapshot)
        return lsn_int(row[0]), int(row[2] or 0)

    # -- reading -------------------------------------------------------------------------

    def read(self) -> Iterator[StreamItem]:
        cp = self.req.checkpoint
        if cp is None:
            made = self._publication(create=True)
            try:
                start = self._recreate_slot()
            except BaseException:
                self._undo(made)
                raise
            yield from self._snapshot(start, None)
        elif cp.get("phase") == "snapshot":
            self._publication(create=False)
            confirmed, _ = self._slot_status()
            if confirmed != int(cp["slot_lsn"]):
                raise ConfigurationError(
                    f"replication slot '{self.slot}' moved during the initial snapshot",
                    stream=self.req.stream.name, fix=self.resnapshot)
            yield from self._snapshot(int(cp["slot_lsn"]), cp.get("after"))
        else:
            yield from self._changes(int(cp["lsn"]))

    def _snapshot(self, start: int, after: list[Any] | None) -> Iterator[StreamItem]:
        keys = list(self.req.primary_key)
        sub = ReadRequest(stream=self.base, mode="full_refresh", primary_key=self.req.primary_key,
                          checkpoint={"after": after, "columns": keys} if after is not None else None,
                          batch_size=self.req.batch_size)
        self.conn.execute("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
        for item in self.src._read(self.conn, sub, physical=False):  # resumes by key
            if isinstance(item, pa.RecordBatch):
                lsn = pa.array([start] * item.num_rows, type=pa.int64())
                yield item.append_column(LSN_COLUMN, lsn)
            elif isinstance(item, Checkpoint):
                yield Checkpoint({"phase": "snapshot", "after": item.value["after"], "columns": keys,
                                  "slot_lsn": start})
            else:
                yield item
        self.conn.execute("COMMIT")
        _, lag = self._slot_status()
        yield Checkpoint({"phase": "stream", "lsn": start, "lag_bytes": lag})

    def _changes(self, committed: int) -> Iterator[StreamItem]:
        self._publication(create=False)  # a table dropped from the publication loses changes
        confirmed, _ = self._slot_status()
        if confirmed > committed:
            raise ConfigurationError(
                f"replication slot '{self.slot}' is at {lsn_text(confirmed)}, past the last committed "
                f"change {lsn_text(committed)}: changes in between were consumed elsewhere",
                stream=self.req.stream.name, fix=self.resnapshot)
        if committed > confirmed:
            # The destination committed up to here in an earlier run: confirm it now (never
            # before the commit), so the server may recycle that WAL.
            self.conn.execute("SELECT pg_replication_slot_advance(%s, %s::pg_lsn)",
                              [self.slot, lsn_text(committed)])
        _, lag = self._slot_status()
        rows = _Rows(self)
        last = committed
        self.conn.execute("BEGIN")
        with self.conn.cursor(name="syncline_cdc") as cur:
            cur.itersize = 2000
            cur.execute(
                "SELECT data FROM pg_logical_slot_peek_binary_changes(%s, NULL, %s, "
                "'proto_version', '1', 'publication_names', %s)",
                [self.slot, self.src.config.cdc_max_changes, self.publication])
            decoder = _Decoder(self.schema, self.table, self.req.stream.name)
            for (data,) in cur:
                event = decoder.feed(bytes(data))
                if event is None or decoder.commit_lsn <= committed:
                    continue  # skipped: committed to the destination already
                if event == "commit":
                    last = decoder.commit_lsn
                    if len(rows) >= self.req.batch_size:
                        yield from rows.flush()
                        yield Checkpoint({"phase": "stream", "lsn": last, "lag_bytes": lag})
                    continue
                for deleted, values in event:
                    rows.add(values, decoder.commit_lsn, deleted, decoder.commit_at)
                if len(rows) >= 4 * self.req.batch_size:  # a huge transaction: stage, commit later
                    yield from rows.flush()
        self.conn.execute("COMMIT")
        yield from rows.flush()
        yield Checkpoint({"phase": "stream", "lsn": last, "lag_bytes": lag})


def _split(stream: str) -> tuple[str, str]:
    schema, _, table = stream.partition(".")
    return schema, table


class _Rows:
    """Decoded rows as text columns, turned into Arrow batches through the COPY path's conversion."""

    def __init__(self, reader: CdcReader) -> None:
        self.reader = reader
        keys = set(reader.req.primary_key)
        # tombstones carry only the key: every other column may be NULL
        cols = [c if c.name in keys else dataclasses.replace(c, nullable=True) for c in reader.base.columns]
        self.stream = dataclasses.replace(
            reader.base, columns=(*cols, Column(LSN_COLUMN, INT64), Column(DELETED, BOOLEAN),
                                  Column(CHANGED_AT, TIMESTAMPTZ)))
        self.names = [c.name for c in reader.base.columns]
        self.values: list[list[Any]] = []

    def __len__(self) -> int:
        return len(self.values)

    def add(self, row: dict[str, Any], lsn: int, deleted: bool, at: str) -> None:
        self.values.append([*(row.get(n) for n in self.names), str(lsn), "t" if deleted else "f", at])

    def flush(self) -> Iterator[StreamItem]:
        if not self.values:
            return
        rows, self.values = self.values, []
        self._fill_unchanged(rows)
        columns = [list(c) for c in zip(*rows)]
        for i, col in enumerate(self.reader.base.columns):
            if col.type.kind in ("json", "list") and (col.native_type or "").endswith("]"):
                columns[i] = self._to_json(columns[i], col)
        text = pa.table({f"c{i}": pa.array(c, type=pa.string()) for i, c in enumerate(columns)})
        batch, bad = text_to_batch(text, self.stream)
        yield from bad
        yield batch

    def _to_json(self, values: list[Any], col: Column) -> list[Any]:
        """Arrays arrive in PostgreSQL's array text; the snapshot exports them with to_json()."""
        assert col.native_type is not None
        row = self.reader.conn.execute(
            sql.SQL("SELECT array_agg(to_json(CAST(u.x AS {}))::text ORDER BY u.o) "
                    "FROM unnest(%s::text[]) WITH ORDINALITY AS u(x, o)").format(
                sql.SQL(col.native_type)), [values]).fetchone()
        return list(row[0]) if row else values

    def _fill_unchanged(self, rows: list[list[Any]]) -> None:
        """pgoutput omits unchanged TOASTed values: read them from the table.

        The table may hold a newer version by now; a later change of the row then
        follows in the stream with a higher LSN, so the destination still ends right.
        """
        r = self.reader
        keys = list(r.req.primary_key)
        kpos = [self.names.index(k) for k in keys]
        for row in rows:
            missing = [i for i, v in enumerate(row[: len(self.names)]) if v is _MISSING]
            if not missing:
                continue
            query = sql.SQL("SELECT {} FROM {} WHERE ({}) = ({})").format(
                sql.SQL(", ").join(sql.SQL("{}::text").format(sql.Identifier(self.names[i]))
                                   for i in missing),
                sql.Identifier(r.schema, r.table),
                sql.SQL(", ").join(sql.Identifier(k) for k in keys),
                sql.SQL(", ").join(sql.SQL("CAST({} AS {})").format(
                    sql.Literal(row[p]), sql.SQL(r.base.columns[p].native_type or "text")) for p in kpos))
            found = r.conn.execute(query).fetchone()
            for j, i in enumerate(missing):
                row[i] = found[j] if found else None


class _Decoder:
    """pgoutput protocol version 1, one message at a time, for one table."""

    def __init__(self, schema: str, table: str, stream: str) -> None:
        self.schema, self.table, self.stream = schema, table, stream
        self.relations: dict[int, tuple[str, str, list[str], list[bool]]] = {}
        self.commit_lsn = 0
        #: the transaction's commit time, as text
        self.commit_at = ""

    def feed(self, data: bytes) -> Any:
        """None, "commit", or [(deleted, {column: text}), ...] for the stream's table."""
        tag = data[:1]
        if tag == b"B":
            self.commit_lsn, micros = struct.unpack_from(">Qq", data, 1)
            self.commit_at = (PG_EPOCH + dt.timedelta(microseconds=micros)).isoformat()
            return None
        if tag == b"C":
            return "commit"
        if tag == b"R":
            self._relation(data)
            return None
        if tag in (b"I", b"U", b"D"):
            return self._change(tag, data)
        if tag == b"T":
            (n,) = struct.unpack_from(">i", data, 1)
            oids = struct.unpack_from(f">{n}I", data, 6)
            if any(self._ours(o) for o in oids):
                raise SourceError(
                    f"{self.stream} was truncated at {lsn_text(self.commit_lsn)}: a change stream "
                    "cannot express which rows that removed", stream=self.stream,
                    fix=f"run `syncline sync <connection> --full-refresh --stream {self.stream}`")
        return None  # Y (type), O (origin), M (message): nothing to load

    def _ours(self, oid: int) -> bool:
        rel = self.relations.get(oid)
        return rel is not None and rel[0] == self.schema and rel[1] == self.table

    def _relation(self, data: bytes) -> None:
        (oid,) = struct.unpack_from(">I", data, 1)
        pos = 5
        ns, pos = _cstring(data, pos)
        name, pos = _cstring(data, pos)
        pos += 1  # replica identity setting
        (ncols,) = struct.unpack_from(">h", data, pos)
        pos += 2
        names, key = [], []
        for _ in range(ncols):
            flags = data[pos]
            col, pos = _cstring(data, pos + 1)
            pos += 8  # type oid, type modifier
            names.append(col)
            key.append(bool(flags & 1))
        self.relations[oid] = (ns, name, names, key)

    def _change(self, tag: bytes, data: bytes) -> list[tuple[bool, dict[str, Any]]] | None:
        (oid,) = struct.unpack_from(">I", data, 1)
        if not self._ours(oid):
            return None
        names = self.relations[oid][2]
        pos = 5
        old: dict[str, Any] | None = None
        if data[pos:pos + 1] in (b"K", b"O"):
            old, pos = _tuple(data, pos + 1, names)
        keys = self.relations[oid][3]
        if tag == b"D":
            assert old is not None
            return [(True, {n: old[n] for n, k in zip(names, keys) if k})]
        new, pos = _tuple(data, pos + 1, names)  # skip the 'N'
        if old is not None and any(k and old[n] != new[n] for n, k in zip(names, keys)):
            # the primary key changed: the row under the old key is gone
            return [(True, {n: old[n] for n, k in zip(names, keys) if k}), (False, new)]
        return [(False, new)]


def _cstring(data: bytes, pos: int) -> tuple[str, int]:
    end = data.index(b"\x00", pos)
    return data[pos:end].decode(), end + 1


def _tuple(data: bytes, pos: int, names: list[str]) -> tuple[dict[str, Any], int]:
    (n,) = struct.unpack_from(">h", data, pos)
    pos += 2
    out: dict[str, Any] = {}
    for i in range(n):
        kind = data[pos:pos + 1]
        pos += 1
        value: Any = None
        if kind == b"u":
            value = _MISSING
        elif kind == b"t":
            (size,) = struct.unpack_from(">i", data, pos)
            value = data[pos + 4:pos + 4 + size].decode()
            pos += 4 + size
        if i < len(names):
            out[names[i]] = value
    return out, pos
