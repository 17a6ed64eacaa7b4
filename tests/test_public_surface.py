"""The public surface users build on never shrinks by accident: every name of `syncline.__all__`
and `syncline.sdk.__all__`, the connector entry-point group and the pytest plugin."""

from __future__ import annotations

import importlib
import tomllib
from pathlib import Path

import pytest

import syncline
import syncline.sdk
from syncline.sources.registry import ENTRY_POINT_GROUP, source_config_model, source_types

PUBLIC = {
    "BadRecord", "Checkpoint", "Column", "ConcurrencyError", "ConfigurationError", "ContractError",
    "DataError", "DataType", "Destination", "DestinationError", "IntegrityError", "InternalError",
    "Interrupted", "LoadTarget", "ReadRequest", "Source", "SourceContext", "SourceError",
    "StreamLoader", "StreamSchema", "SynclineError", "TransientError", "Workspace", "__version__",
    "load_workspace",
}
SDK = {"ConfigurationError", "Item", "NoConfig", "Notice", "Record", "SimpleSource", "SourceError",
       "State", "Stream", "TransientError"}
SOURCE_TYPES = {"files", "mysql", "postgres", "python", "rest", "singer", "sqlite"}


@pytest.mark.parametrize("name", sorted(PUBLIC))
def test_every_public_name_is_still_there(name: str) -> None:
    assert name in syncline.__all__
    assert getattr(importlib.import_module("syncline"), name) is not None


@pytest.mark.parametrize("name", sorted(SDK))
def test_every_sdk_name_is_still_there(name: str) -> None:
    assert name in syncline.sdk.__all__ and hasattr(syncline.sdk, name)


def test_every_source_type_still_loads_its_configuration_model() -> None:
    assert SOURCE_TYPES <= set(source_types())
    for kind in SOURCE_TYPES:
        assert source_config_model(kind).model_fields["type"] is not None


def test_the_entry_point_group_and_the_pytest_plugin_stay() -> None:
    assert ENTRY_POINT_GROUP == "syncline.sources"
    project = tomllib.loads((Path(__file__).parents[1] / "pyproject.toml").read_text())
    plugin = project["project"]["entry-points"]["pytest11"]["syncline"]
    assert importlib.import_module(plugin) is not None
