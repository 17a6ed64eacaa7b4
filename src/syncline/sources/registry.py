"""Source types by name: their config models and classes, imported on demand."""

from __future__ import annotations

import importlib
from importlib.metadata import EntryPoint, entry_points
from typing import Any

from pydantic import BaseModel

from syncline.sources.base import Source, SourceContext

# type -> "module:ConfigModel:SourceClass"
_TYPES: dict[str, str] = {
    "sqlite": "syncline.sources.sqlite:SqliteConfig:SqliteSource",
    "files": "syncline.sources.files.source:FilesConfig:FilesSource",
    "postgres": "syncline.sources.postgres.source:PostgresConfig:PostgresSource",
    "mysql": "syncline.sources.mysql.source:MysqlConfig:MysqlSource",
    "rest": "syncline.sources.rest.source:RestConfig:RestSource",
    "python": "syncline.sources.python.source:PythonConfig:PythonSource",
    "singer": "syncline.sources.singer.source:SingerConfig:SingerSource",
}


#: Installed connectors register a syncline.sdk.SimpleSource subclass here, named by their type.
ENTRY_POINT_GROUP = "syncline.sources"


def plugin_entry_point(kind: str) -> EntryPoint | None:
    """The installed connector registered as ``kind`` in the ``syncline.sources`` group, if any."""
    return next(iter(entry_points(group=ENTRY_POINT_GROUP).select(name=kind)), None)


def _load(kind: Any) -> tuple[type[BaseModel], type[Source]]:
    if isinstance(kind, str) and kind not in _TYPES and plugin_entry_point(kind) is not None:
        # the python source runs installed connectors too, with a config model keyed by type
        mod = importlib.import_module(_TYPES["python"].split(":")[0])
        return mod.PluginConfig, mod.PythonSource
    if not isinstance(kind, str) or kind not in _TYPES:
        raise KeyError(", ".join(repr(k) for k in source_types())
                       + f" (or install a connector under the {ENTRY_POINT_GROUP!r} entry point group)")
    module, model, cls = _TYPES[kind].split(":")
    mod = importlib.import_module(module)
    return getattr(mod, model), getattr(mod, cls)


def source_config_model(kind: Any) -> type[BaseModel]:
    return _load(kind)[0]


def build_source(name: str, config: BaseModel, root: str, own_schemas: tuple[str, ...] = (),
                 state_dir: str | None = None) -> Source:
    """A configured source; `own_schemas` are the workspace's destination schemas that a
    database source could see (their tables are never offered as streams), `state_dir` its
    private folder (default: `<root>/.syncline`)."""
    _, cls = _load(getattr(config, "type", None))
    return cls(name, config, SourceContext(root=root, own_schemas=own_schemas, state_dir=state_dir))


def source_types() -> list[str]:
    """Built-in types and the names of installed connectors."""
    return sorted(set(_TYPES) | {ep.name for ep in entry_points(group=ENTRY_POINT_GROUP)})
