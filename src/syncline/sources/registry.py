"""Source types by name: their config models and classes, imported on demand."""

from __future__ import annotations

import importlib
from typing import Any

from pydantic import BaseModel

from syncline.sources.base import Source, SourceContext

# type -> "module:ConfigModel:SourceClass"
_TYPES: dict[str, str] = {
    "sqlite": "syncline.sources.sqlite:SqliteConfig:SqliteSource",
    "files": "syncline.sources.files:FilesConfig:FilesSource",
    "postgres": "syncline.sources.postgres:PostgresConfig:PostgresSource",
    "mysql": "syncline.sources.mysql:MysqlConfig:MysqlSource",
    "rest": "syncline.sources.rest.source:RestConfig:RestSource",
    "python": "syncline.sources.python:PythonConfig:PythonSource",
    "singer": "syncline.sources.singer:SingerConfig:SingerSource",
}


def _load(kind: Any) -> tuple[type[BaseModel], type[Source]]:
    if not isinstance(kind, str) or kind not in _TYPES:
        raise KeyError(", ".join(repr(k) for k in sorted(_TYPES)))
    module, model, cls = _TYPES[kind].split(":")
    mod = importlib.import_module(module)
    return getattr(mod, model), getattr(mod, cls)


def source_config_model(kind: Any) -> type[BaseModel]:
    return _load(kind)[0]


def build_source(name: str, config: BaseModel, root: str) -> Source:
    _, cls = _load(getattr(config, "type", None))
    return cls(name, config, SourceContext(root=root))


def source_types() -> list[str]:
    return sorted(_TYPES)
