"""The published JSON Schema of syncline.yaml accepts what Syncline accepts and flags the
mistakes an editor should underline; docs/syncline.schema.json is the current one."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml
from typer.testing import CliRunner

import syncline.cli.app as cli
from syncline.config import load_workspace
from syncline.config_schema import workspace_schema
from syncline.demo.workspace import write_workspace

DOCS = Path(__file__).resolve().parents[1] / "docs" / "syncline.schema.json"


def _errors(doc: dict[str, Any]) -> list[str]:
    validator = jsonschema.Draft202012Validator(workspace_schema())
    return sorted("/".join(str(p) for p in e.absolute_path) for e in validator.iter_errors(doc))


def test_the_published_schema_is_the_current_one(tmp_path: Path) -> None:
    done = CliRunner().invoke(cli.app, ["schema-file"])
    assert done.exit_code == 0
    assert json.loads(done.stdout) == json.loads(DOCS.read_text(encoding="utf-8")), (
        "docs/syncline.schema.json is stale: run `syncline schema-file -o docs/syncline.schema.json`")
    jsonschema.Draft202012Validator.check_schema(workspace_schema())


@pytest.mark.parametrize("demo", [True, False], ids=["demo", "init-template"])
def test_the_files_syncline_writes_are_valid(tmp_path: Path, demo: bool) -> None:
    file = write_workspace(tmp_path, demo=demo)
    assert _errors(yaml.safe_load(file.read_text(encoding="utf-8")) or {"version": 1}) == []


def test_env_references_connector_files_and_stream_lists_are_valid(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    doc = {"version": 1,
           "sources": {"pg": {"type": "postgres", "host": "db", "port": "${env:PG_PORT}",
                              "user": "u", "database": "d"},
                       "gh": {"connector": "github", "vars": {"owner": "acme"}}},
           "destinations": {"wh": {"type": "duckdb", "path": "wh.duckdb"}},
           "connections": {"c": {"source": "pg", "destination": "wh",
                                 "streams": ["public.orders", "public.items"]},
                           "d": {"source": "pg", "destination": "wh",
                                 "streams": {"public.orders": None,
                                             "public.items": {"mode": "incremental",
                                                              "cursor": "updated_at"}}}}}
    assert _errors(doc) == []
    monkeypatch.setenv("PG_PORT", "5432")  # and Syncline itself takes the same file
    (tmp_path / "syncline.yaml").write_text(yaml.safe_dump(doc), encoding="utf-8")
    assert set(load_workspace(tmp_path).connections) == {"c", "d"}


def test_the_mistakes_an_editor_should_flag_are_errors_at_their_key() -> None:
    doc = {"version": 1,
           "sources": {"shop": {"type": "sqlite", "path": "shop.db", "tabels": ["x"]},
                       "erp": {"type": "oracle"}},
           "destinations": {"wh": {"type": "duckdb"}},
           "connections": {"c": {"source": "shop", "destination": "wh", "max_attempts": 0,
                                 "streams": {"orders": {"mode": "incremantal"}}}}}
    validator = jsonschema.Draft202012Validator(workspace_schema())
    found = {}
    for error in validator.iter_errors(doc):
        best = jsonschema.exceptions.best_match([error])
        found["/".join(str(p) for p in best.absolute_path)] = best.message
    assert found.keys() == {"sources/shop", "sources/erp/type", "destinations/wh",
                            "connections/c/max_attempts", "connections/c/streams/orders/mode"}
    assert "'tabels' was unexpected" in found["sources/shop"]
    assert "'path' is a required property" in found["destinations/wh"]
    assert "'incremantal' is not one of" in found["connections/c/streams/orders/mode"]
    assert _errors({"version": 2}) == ["version"]
