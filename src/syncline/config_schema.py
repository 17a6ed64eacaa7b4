"""The JSON Schema of `syncline.yaml`, from the same pydantic models that validate it.

Editors with a YAML language server use it for completion and checks as you type
(`# yaml-language-server: $schema=syncline.schema.json` at the top of the file). Every
source and destination type is one branch, chosen by its `type:`; a source may instead
name a `connector:` file. A number or boolean may also be written as `${env:NAME}`.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel
from pydantic.json_schema import models_json_schema

from syncline.alerting_config import CHANNEL_TYPES
from syncline.config import WorkspaceModel

SCHEMA_ID = "https://syncline.dev/schema/syncline.schema.json"
_ENV_TEXT = {"type": "string", "pattern": r"^\$\{env:[A-Za-z_][A-Za-z0-9_]*\}$"}
_CONNECTOR = {
    "type": "object",
    "required": ["connector"],
    "properties": {
        "connector": {"type": "string",
                      "description": "A connector file (path, or the name of a bundled one); "
                      "the keys here override the file's."},
        "vars": {"type": "object", "description": "Values of the file's {{name}} placeholders."},
    },
}


_MAX_RUNS = {"type": "integer", "minimum": 1, "description": "At most this many runs use it "
             "at once across `up`'s workers (others wait in the queue). Default: no limit; a "
             "DuckDB file always has one writer."}
_REGION = {"type": "string", "pattern": "^[a-z0-9][a-z0-9_-]{0,62}$", "description": "Where its "
           "data lives: a connection using it runs only on workers of this region. Default: none."}


_OWNER = {"type": "string", "description": "The team of `teams:` that owns the connections "
          "using this source (unless a connection names its own `owner:`)."}


def _builtin_models() -> tuple[dict[str, type[BaseModel]], dict[str, type[BaseModel]]]:
    from syncline.destinations.registry import _TYPES as DESTINATIONS
    from syncline.destinations.registry import destination_config_model
    from syncline.sources.registry import _TYPES as SOURCES
    from syncline.sources.registry import source_config_model

    return ({k: source_config_model(k) for k in sorted(SOURCES)},
            {k: destination_config_model(k) for k in sorted(DESTINATIONS)})


def _by_type(models: dict[str, type[BaseModel]], refs: Any, connector: bool,
             what: str = "destination") -> dict[str, Any]:
    """One branch per `type:` (if/then rather than oneOf, so an editor points at the wrong key
    inside the chosen type instead of saying that no branch matched)."""
    when_typed: dict[str, Any] = {"not": {"required": ["connector"]}} if connector else {}
    branches: list[dict[str, Any]] = [
        {"if": {"properties": {"type": {"const": kind}}, "required": ["type"], **when_typed},
         "then": dict(refs[(model, "validation")])} for kind, model in models.items()]
    kinds = {"type": {"enum": list(models), "description": "The type of the "
                      + ("source" if connector else what)}}
    if connector:
        branches.append({"if": {"required": ["connector"]}, "then": _CONNECTOR})
    return {"type": "object", "properties": kinds, "allOf": branches,
            "anyOf": [{"required": ["type"]}, *([{"required": ["connector"]}] if connector else [])]}


def workspace_schema() -> dict[str, Any]:
    """The whole schema: the workspace, one branch per source and destination type."""
    sources, destinations = _builtin_models()
    channels = dict(CHANNEL_TYPES)
    models: list[type[BaseModel]] = [WorkspaceModel, *sources.values(), *destinations.values(),
                                     *channels.values()]
    refs, top = models_json_schema([(m, "validation") for m in models],
                                   ref_template="#/$defs/{model}")
    defs: dict[str, Any] = top.get("$defs", {})
    root = dict(defs.pop(WorkspaceModel.__name__))
    props = dict(root["properties"])
    props["sources"] = {**props["sources"],
                        "additionalProperties": _by_type(sources, refs, connector=True)}
    props["destinations"] = {**props["destinations"],
                             "additionalProperties": _by_type(destinations, refs, connector=False)}
    props["channels"] = {**props["channels"],
                         "additionalProperties": _by_type(channels, refs, False, "channel")}
    root["properties"] = props
    for model in (*sources.values(), *destinations.values()):  # a key of every type
        defs[model.__name__].setdefault("properties", {}).update(
            max_concurrent_runs=_MAX_RUNS, region=_REGION)
    for model in sources.values():
        defs[model.__name__]["properties"]["owner"] = _OWNER
    # `streams:` may also be a list of names, and a stream may be listed with no keys
    streams = defs["ConnectionConfig"]["properties"]["streams"]
    streams["anyOf"] = [
        {"type": "object", "additionalProperties": {
            "anyOf": [{"$ref": "#/$defs/StreamConfig"}, {"type": "null"}]}},
        {"type": "array", "items": {"type": "string"}}, {"type": "null"}]
    schema = {"$schema": "https://json-schema.org/draft/2020-12/schema", "$id": SCHEMA_ID,
              "title": "syncline.yaml", **root, "$defs": defs}
    allowed: dict[str, Any] = _allow_env(schema)
    return allowed


def _allow_env(node: Any) -> Any:
    """`port: ${env:PG_PORT}` is valid: a number or boolean may also be an env reference."""
    if isinstance(node, list):
        return [_allow_env(v) for v in node]
    if not isinstance(node, dict):
        return node
    out = {k: _allow_env(v) for k, v in node.items()}
    if out.get("type") in ("integer", "number", "boolean"):
        return {"anyOf": [out, _ENV_TEXT]}
    return out
