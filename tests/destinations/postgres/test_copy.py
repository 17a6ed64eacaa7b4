"""What PostgreSQL's COPY cannot take is set apart before it is sent: a NUL in a list's text too."""

from __future__ import annotations

import pyarrow as pa

from syncline.destinations.postgres.copy import set_apart
from syncline.schema import Column, DataType


def test_a_list_element_holding_a_nul_sets_its_row_apart() -> None:
    columns = [Column("id", DataType("int32")), Column("tags", DataType.parse("list<string>"))]
    batch = pa.RecordBatch.from_pylist(
        [{"id": 1, "tags": ["a", "b\x00c"]}, {"id": 2, "tags": None}, {"id": 3, "tags": ["ok", None]},
         {"id": 4, "tags": ["\x00", "\x00"]}],
        schema=pa.schema([c.arrow_field() for c in columns]))
    kept, bad = set_apart(batch, columns, keys=["id"])
    assert kept.column("id").to_pylist() == [2, 3]
    assert [(b.record["id"], b.error) for b in bad] == [
        (1, "column tags: PostgreSQL text cannot hold the NUL character"),
        (4, "column tags: PostgreSQL text cannot hold the NUL character")]
