"""Schemas inferred from a sample page, values that do not fit, contract events, config errors."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from pydantic import ValidationError

from syncline.errors import ConfigurationError
from syncline.stream import Notice

from rest_helpers import config, read, source

SAMPLE = [
    {"id": 1, "name": "a", "price": 1.5, "active": True, "at": "2026-01-01T00:00:00Z",
     "local": "2026-01-01T00:00:00", "tags": ["x"], "meta": {"color": "red", "dim": {"w": 2}},
     "note": None},
    {"id": 2, "name": "b", "price": 2, "active": False, "at": "2026-01-02T00:00:00+02:00",
     "local": "2026-01-02T00:00:00", "tags": [], "meta": {"color": "blue", "dim": {"w": 3}},
     "note": None},
]


def fixed(*pages: list[Any]) -> Any:
    """A handler answering page N (`?page=N`, from 1) with pages[N - 1], and [] past them:
    discovery samples page 1, which the read takes again without asking."""
    def handler(request: httpx.Request) -> httpx.Response:
        number = int(request.url.params.get("page", 1))
        return httpx.Response(200, json=pages[number - 1] if number <= len(pages) else [])

    return handler


PAGED = {"type": "page_number"}


def types(src: Any) -> dict[str, str]:
    return {c.name: str(c.type) for c in src.discover()[0].columns}


def test_types_are_inferred_from_the_sample_page() -> None:
    src = source("http://api.test", {"s": {"path": "/s", "primary_key": ["id"]}}, handler=fixed(SAMPLE))
    assert types(src) == {"id": "int64", "name": "string", "price": "float64", "active": "boolean",
                          "at": "timestamptz", "local": "string", "tags": "json", "meta": "json",
                          "note": "string"}
    rows = read(src, "s").rows
    assert rows[1]["meta"] == '{"color": "blue", "dim": {"w": 3}}'
    assert rows[1]["at"].isoformat() == "2026-01-01T22:00:00+00:00"


def test_flatten_makes_nested_objects_columns_and_declared_types_win() -> None:
    src = source("http://api.test", {"s": {"path": "/s", "flatten": True,
                                           "fields": {"price": "decimal(10,2)", "local": "timestamp"}}},
                 handler=fixed(SAMPLE))
    got = types(src)
    assert got["meta__color"] == "string" and got["meta__dim__w"] == "int64" and "meta" not in got
    assert got["price"] == "decimal(10,2)" and got["local"] == "timestamp"
    row = read(src, "s").rows[0]
    assert (row["meta__color"], row["meta__dim__w"], str(row["price"])) == ("red", 2, "1.50")


def test_a_value_that_does_not_fit_is_a_bad_record_and_the_rest_of_the_page_loads() -> None:
    later = [{"id": 3, "price": "cheap", "at": "2026-01-03T00:00:00Z"},
             {"id": 4, "price": 4.0, "at": "yesterday"},
             "not an object",
             {"id": 5, "price": 5.5, "at": "2026-01-05T00:00:00Z"}]
    src = source("http://api.test", {"s": {"path": "/s", "pagination": PAGED}},
                 handler=fixed(SAMPLE, later))
    got = read(src, "s")
    assert got.ids == [1, 2, 5]
    reasons = [b.error for b in got.bad]
    assert len(reasons) == 3
    assert "not an object" in reasons[0]
    assert any("column price" in r for r in reasons) and any("column at" in r for r in reasons)


def test_shape_changes_become_contract_events_and_new_fields_are_loaded() -> None:
    later = [{"id": 3, "name": 7, "price": "9.99", "active": True, "at": "2026-01-03T00:00:00Z",
              "local": "x", "tags": [], "meta": {}, "extra": "new"}]
    src = source("http://api.test", {"s": {"path": "/s", "pagination": PAGED}},
                 handler=fixed(SAMPLE, later))
    got = read(src, "s")
    assert got.rows[-1]["extra"] == "new" and got.rows[-1]["name"] == "7"
    events = {(e["change"], e["field"]): (e["known_type"], e["seen_type"])
              for e in src.contract_events()}
    assert events == {
        ("new_field", "extra"): (None, "string"),
        ("type_changed", "price"): ("float64", "string"),
        ("type_changed", "name"): ("string", "int64"),
        ("vanished_field", "note"): ("string", None),
    }
    assert all(e["stream"] == "s" and e["source"] == "api" for e in src.contract_events())
    notices = [i.message for i in got.items if isinstance(i, Notice)]
    assert len(notices) == 2 and all("holds" in n for n in notices)
    grown, vanished = got.schema_changes
    assert grown.stream is not None and grown.stream.column_names[-1] == "extra"
    assert grown.changes == ("new column extra string: the field first came on page 2, outside "
                             "the discovered schema",)
    assert vanished.stream is None
    assert vanished.changes[0].startswith("vanished field note string: in no record after page 1")


def test_primary_key_missing_from_the_sample_is_a_configuration_error() -> None:
    src = source("http://api.test", {"s": {"path": "/s", "primary_key": ["uuid"]}}, handler=fixed(SAMPLE))
    with pytest.raises(ConfigurationError) as err:
        src.discover()
    assert "uuid" in str(err.value) and "sources.api.streams.s" in str(err.value)


def test_an_empty_sample_still_gives_the_key_and_declared_columns() -> None:
    src = source("http://api.test", {"s": {"path": "/s", "primary_key": ["id"],
                                           "fields": {"id": "int64"}}}, handler=fixed([]))
    schema = src.discover()[0]
    assert [(c.name, str(c.type)) for c in schema.columns] == [("id", "int64")]
    assert schema.notes and "fields:" in schema.notes[0]


@pytest.mark.parametrize(("streams", "message"), [
    ({"s": {"path": "/s", "records": "$.data["}}, "invalid JSONPath"),
    ({"s": {"path": "/orgs/{org_id}/repos"}}, "placeholders ['org_id']"),
    ({"a": {"path": "/a/{x}", "parent": {"stream": "b", "as": "x"}},
      "b": {"path": "/b/{y}", "parent": {"stream": "a", "as": "y"}}}, "cycle"),
    ({"s": {"path": "/s", "pagination": {"type": "pages"}}}, "page_number"),
    ({"s": {"path": "/s", "fields": {"a": "money"}}}, "unknown canonical type"),
], ids=["bad-jsonpath", "placeholder-without-parent", "parent-cycle", "unknown-pagination",
        "unknown-type"])
def test_config_mistakes_are_caught_when_the_file_is_loaded(streams: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationError, match=message.replace("[", r"\[").replace("]", r"\]")):
        config("http://api.test", streams)


def test_secrets_do_not_show_in_the_config_repr() -> None:
    cfg = config("http://api.test", {"s": {"path": "/s"}},
                 auth={"type": "basic", "username": "ann", "password": "hunter2"})
    assert "hunter2" not in repr(cfg) and "hunter2" not in str(cfg.model_dump())
