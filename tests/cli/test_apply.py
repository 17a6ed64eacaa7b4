"""`syncline apply` makes the workspace file the store's newest config revision: `--plan` says
what would change (for CI: exit 1 when it differs), an invalid file applies nothing, the
revision keeps `${env:...}` as written, and every sync records the revision it ran."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from typer.testing import CliRunner, Result

import syncline.cli.app as cli
from syncline.store.store import MetadataStore

from syncfixtures import make_items, write_ws

STREAMS = {"items": {"mode": "incremental", "write": "merge", "cursor": "updated_at"}}


def run(*args: str | Path, env: dict[str, str] | None = None) -> Result:
    return CliRunner().invoke(cli.app, [str(a) for a in args], env=env)


def edit(root: Path, change: Any) -> None:
    doc = yaml.safe_load((root / "syncline.yaml").read_text())
    change(doc)
    (root / "syncline.yaml").write_text(yaml.safe_dump(doc))


def revisions(root: Path) -> list[dict[str, Any]]:
    with MetadataStore(f"sqlite:///{root / '.syncline' / 'metadata.db'}") as store:
        r = store.revisions()
        return [r.get(n).document for n in range(1, r.count() + 1)]  # type: ignore[union-attr]


@pytest.fixture
def ws(tmp_path: Path) -> Path:
    make_items(tmp_path / "src.db", 5)
    return write_ws(tmp_path, STREAMS)


def test_plan_then_apply_then_nothing_to_apply(ws: Path) -> None:
    planned = run("apply", "-w", ws, "--plan", "--json")
    assert planned.exit_code == 1, planned.output
    body = json.loads(planned.stdout)
    assert (body["current_revision"], body["applied"], body["differs"]) == (None, False, True)
    assert {c["path"] for c in body["changes"]} == {"version", "sources.src", "destinations.wh",
                                                    "connections.c"}
    assert revisions(ws) == []
    applied = run("apply", "-w", ws)
    assert applied.exit_code == 0 and "applied revision 1" in applied.stdout
    again = run("apply", "-w", ws, "--plan")
    assert again.exit_code == 0 and "revision 1 is current" in again.stdout
    assert len(revisions(ws)) == 1


def test_plan_names_the_keys_that_changed_never_their_values(ws: Path) -> None:
    assert run("apply", "-w", ws).exit_code == 0

    def change(doc: dict[str, Any]) -> None:
        doc["connections"]["c"]["schedule"] = "every 5m"
        doc["destinations"]["wh"]["path"] = "s3cr3t-looking.duckdb"
        doc["sources"]["extra"] = {"type": "sqlite", "path": "src.db"}

    edit(ws, change)
    planned = run("apply", "-w", ws, "--plan")
    assert planned.exit_code == 1
    lines = [line.strip() for line in planned.stdout.splitlines()]
    assert "~ connections.c: schedule" in lines
    assert "~ destinations.wh: path" in lines
    assert "+ sources.extra" in lines
    assert "s3cr3t" not in planned.stdout and "every 5m" not in planned.stdout


def test_an_invalid_file_applies_nothing_and_names_the_key(ws: Path) -> None:
    assert run("apply", "-w", ws).exit_code == 0
    edit(ws, lambda doc: doc["connections"]["c"].update(schedule="every tuesday"))
    bad = run("apply", "-w", ws)
    assert bad.exit_code == 2
    assert "connections.c.schedule" in bad.output
    assert len(revisions(ws)) == 1
    (ws / "syncline.yaml").write_text("version: 1\nconnections: [\n")
    assert run("apply", "-w", ws).exit_code == 2
    assert len(revisions(ws)) == 1


def test_a_revision_keeps_env_references_as_written(ws: Path) -> None:
    edit(ws, lambda doc: doc["destinations"]["wh"].update(path="${env:WH_FILE}"))
    done = run("apply", "-w", ws, env={"WH_FILE": "secret-name.duckdb"})
    assert done.exit_code == 0, done.output
    [stored] = revisions(ws)
    assert stored["destinations"]["wh"]["path"] == "${env:WH_FILE}"
    assert "secret-name" not in json.dumps(stored)


def test_every_sync_runs_the_newest_revision_and_records_it(ws: Path) -> None:
    first = run("sync", "c", "-w", ws, "--json")
    assert first.exit_code == 0, first.output
    assert json.loads(first.stdout)["revision"] == 1
    again = run("sync", "c", "-w", ws, "--json")
    assert json.loads(again.stdout)["revision"] == 1  # the file did not change
    edit(ws, lambda doc: doc["connections"]["c"].update(schedule="every 5m"))
    changed = run("sync", "c", "-w", ws, "--json")
    assert json.loads(changed.stdout)["revision"] == 2
    shown = run("runs", "show", str(json.loads(changed.stdout)["id"]), "-w", ws)
    assert "config revision 2" in shown.stdout
    assert revisions(ws)[1]["connections"]["c"]["schedule"] == "every 5m"


def test_a_revision_holds_the_connector_file_merged_in(ws: Path) -> None:
    (ws / "conn.yaml").write_text("type: sqlite\npath: '{{file}}'\nvars: {file: other.db}\n")
    edit(ws, lambda doc: doc["sources"].update(src={"connector": "conn.yaml",
                                                    "vars": {"file": "src.db"}}))
    done = run("sync", "c", "-w", ws, "--json")
    assert done.exit_code == 0, done.output
    [stored] = revisions(ws)
    assert stored["sources"]["src"] == {"type": "sqlite", "path": "src.db"}
    (ws / "conn.yaml").write_text("type: sqlite\npath: missing.db\n")  # a run uses the file as applied again
    planned = run("apply", "-w", ws, "--plan")
    assert planned.exit_code == 1 and "~ sources.src: path" in planned.stdout
