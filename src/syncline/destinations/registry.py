"""Destination types by name: their config models and classes, imported on demand."""

from __future__ import annotations

import importlib
from typing import Any

from pydantic import BaseModel

from syncline.destinations.base import Destination

_TYPES: dict[str, str] = {
    "duckdb": "syncline.destinations.duckdb.destination:DuckDBConfig:DuckDBDestination",
    "postgres": "syncline.destinations.postgres.destination:PostgresDestinationConfig:PostgresDestination",
}


def _load(kind: Any) -> tuple[type[BaseModel], type[Destination]]:
    if not isinstance(kind, str) or kind not in _TYPES:
        raise KeyError(", ".join(repr(k) for k in sorted(_TYPES)))
    module, model, cls = _TYPES[kind].split(":")
    mod = importlib.import_module(module)
    return getattr(mod, model), getattr(mod, cls)


def destination_config_model(kind: Any) -> type[BaseModel]:
    return _load(kind)[0]


def build_destination(name: str, config: BaseModel, root: str) -> Destination:
    _, cls = _load(getattr(config, "type", None))
    return cls(name, config, root)
