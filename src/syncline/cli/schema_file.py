"""`syncline schema-file`: the JSON Schema of `syncline.yaml`, for editors and CI."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from syncline.cli.common import console, err_console


def schema_file(
    output: Annotated[Path | None, typer.Option(
        "--output", "-o", help="Write the schema to this file instead of printing it.")] = None,
) -> None:
    """Print the JSON Schema of syncline.yaml (every key, type and default; one branch per
    source and destination type), for an editor's YAML support or a CI check."""
    from syncline.config_schema import workspace_schema

    text = json.dumps(workspace_schema(), indent=2, sort_keys=True) + "\n"
    if output is None:
        typer.echo(text, nl=False)
        return
    output.write_text(text, encoding="utf-8")
    err_console.print(f"wrote {output}")
    console.print(f"add `# yaml-language-server: $schema={output.name}` at the top of "
                  "syncline.yaml for completion and checks as you type")
