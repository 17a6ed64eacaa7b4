"""Array columns parsed a column at a time hold exactly what the value-by-value path makes of
them; what Arrow's reader refuses is left to that path."""

from __future__ import annotations

import json

import pyarrow as pa
import pytest

from syncline.schema import Column, DataType, StreamSchema
from syncline.sources.postgres.json_lists import parsed_lists
from syncline.sources.postgres.types import per_value

SAME = [
    ("list<int32>", ["[1, 2, null, -2147483648, 2147483647]", None, "[]", "[null]"]),
    ("list<int64>", ["[9223372036854775807, -9223372036854775808, 0]", None]),
    ("list<boolean>", ["[true, false, null]", "[]"]),
    ("list<string>", ['["a", "", null, "é漢字🙂", "q\\"uote\\\\ \\n\\t \\u0001"]', None, '["x"]']),
    ("list<float64>", ["[0.1, -0.0, 1e+308, 5e-324, 1.7976931348623157e+308, 3]", None]),
]

REFUSED = [
    ("list<int32>", ["[2147483648]"]),  # beyond int32: the bad row is named value by value
    ("list<float64>", ['[1.5, "NaN"]']),
    ("list<int32>", ["[[1, 2], [3, 4]]"]),  # nested
    ("list<string>", ["[1, 2]"]),
    ("list<int64>", ["[1.5]"]),
    ("list<date>", ['["2024-01-01"]']),  # an element type left to the value-by-value path
    ("list<decimal(10,2)>", ["[1.25]"]),
]


def canonical(kind: str) -> tuple[DataType, pa.DataType]:
    t = DataType.parse(kind)
    return t, StreamSchema("s", [Column("v", t)]).arrow_schema().field(0).type


@pytest.mark.parametrize(("kind", "texts"), SAME, ids=[k for k, _ in SAME])
def test_parsed_lists_are_what_each_value_converts_to(kind: str, texts: list[str | None]) -> None:
    t, target = canonical(kind)
    values = pa.array(["[0]", *texts], pa.string()).slice(1)  # a slice: offsets not at zero
    parsed = parsed_lists(values, t, target)
    assert parsed is not None
    assert parsed.type == target
    convert = per_value(t)
    expected = [None if v is None else convert(v) for v in texts]
    got = parsed.to_pylist()
    assert json.dumps(got) == json.dumps(expected)  # NaN-free here; -0.0 and nulls compared too


@pytest.mark.parametrize(("kind", "texts"), REFUSED, ids=[f"{k}-{t[0]}" for k, t in REFUSED])
def test_what_the_reader_refuses_is_left_to_the_value_by_value_path(kind: str, texts: list[str]) -> None:
    t, target = canonical(kind)
    assert parsed_lists(pa.array(texts, pa.string()), t, target) is None


def test_a_row_larger_than_a_reader_block_is_parsed_whole() -> None:
    t, target = canonical("list<string>")
    big = json.dumps(["x" * 3_000_000, "y"])
    parsed = parsed_lists(pa.array([big, "[]"], pa.string()), t, target)
    assert parsed is not None and parsed.to_pylist() == [["x" * 3_000_000, "y"], []]
