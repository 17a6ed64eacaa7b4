"""Connector files: a reusable source definition in YAML, merged under a workspace source.

A workspace source may say ``connector: connectors/github.yaml``; the file holds any
keys of a source (usually a whole ``type: rest`` definition) and the workspace entry
overrides them key by key (mappings are merged deeply). ``vars:`` of the file give
defaults for ``{{name}}`` placeholders anywhere in its strings; the workspace entry's
``vars:`` override them.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

import yaml

from syncline.errors import ConfigurationError

_PLACEHOLDER = re.compile(r"\{\{\s*([A-Za-z_][A-Za-z0-9_]*)\s*\}\}")
# Connectors shipped with Syncline: the repository's connectors/ folder.
BUNDLED = Path(__file__).resolve().parents[2] / "connectors"


def resolve_connector(cfg: dict[str, Any], root: Path, file: str, where: str,
                      interpolate: Any) -> dict[str, Any]:
    """The source config with its connector file merged in and placeholders filled."""
    if "connector" not in cfg:
        return cfg
    ref = str(cfg["connector"])
    path = _find(ref, root)
    if path is None:
        raise ConfigurationError(
            f"{file}: {where}.connector: file {ref!r} not found",
            fix="give a path relative to the workspace folder, or the name of a bundled "
            f"connector: {', '.join(sorted(p.stem for p in BUNDLED.glob('*.yaml'))) or '(none)'}",
        )
    try:
        base = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise ConfigurationError(f"{path.name}: not valid YAML ({exc})",
                                 fix=f"fix the connector file {path}") from None
    if not isinstance(base, dict):
        raise ConfigurationError(f"{path.name}: expected a mapping of source keys",
                                 fix=f"fix the connector file {path}")
    base = interpolate(base, (path.name,), path.name)
    local = {k: v for k, v in cfg.items() if k != "connector"}
    variables = {**(base.pop("vars", None) or {}), **(local.pop("vars", None) or {})}
    merged = _merge(base, local)
    filled: dict[str, Any] = _fill(merged, variables, f"{file}: {where}")
    return filled


def _find(ref: str, root: Path) -> Path | None:
    candidate = Path(ref).expanduser()
    candidate = candidate if candidate.is_absolute() else root / candidate
    if candidate.is_file():
        return candidate
    bundled = BUNDLED / f"{ref}.yaml"
    return bundled if os.sep not in ref and bundled.is_file() else None


def _merge(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _merge(out[key], value)
        else:
            out[key] = value
    return out


def _fill(value: Any, variables: dict[str, Any], where: str) -> Any:
    if isinstance(value, dict):
        return {k: _fill(v, variables, where) for k, v in value.items()}
    if isinstance(value, list):
        return [_fill(v, variables, where) for v in value]
    if isinstance(value, str):
        def sub(match: re.Match[str]) -> str:
            name = match.group(1)
            if name not in variables:
                raise ConfigurationError(
                    f"{where}: the connector needs a value for {{{{{name}}}}}",
                    fix=f"add `vars: {{{name}: ...}}` to the source",
                )
            return str(variables[name])

        return _PLACEHOLDER.sub(sub, value)
    return value
