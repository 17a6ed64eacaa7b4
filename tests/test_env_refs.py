"""A password written `$NAME` (a shell habit, taken literally) that fails to authenticate gets
the `${env:NAME}` hint, on each database that checks passwords."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from typer.testing import CliRunner

from syncline.cli.app import app
from syncline.env_refs import literal_hint

from services import HOST, require_mariadb, require_postgres


def test_only_a_bare_shell_variable_gets_the_hint() -> None:
    assert "write password: ${env:DB_PASS}" in literal_hint("$DB_PASS")
    assert literal_hint("$ecret-pa$$") == literal_hint("hunter2") == literal_hint(None) == ""


def check(tmp_path: Path, source: dict[str, Any]) -> str:
    (tmp_path / "syncline.yaml").write_text(yaml.safe_dump({"version": 1, "sources": {"db": source}}))
    done = CliRunner().invoke(app, ["check", "db", "-w", str(tmp_path)])
    assert done.exit_code == 2, done.output
    return " ".join(done.output.split())


@pytest.mark.parametrize("kind", ["postgres", "mariadb"])
def test_a_dollar_password_that_fails_says_how_to_read_the_variable(tmp_path: Path, kind: str) -> None:
    if kind == "postgres":  # trust authentication: an unknown role is what fails here
        require_postgres()
        source = {"type": "postgres", "host": HOST, "user": "nobody_here", "database": "test",
                  "password": "$PGPASSWORD_X"}
    else:  # root has no password: one given is refused
        require_mariadb()
        source = {"type": "mysql", "host": HOST, "user": "root", "database": "test",
                  "password": "$MYSQL_PWD_X"}
    shown = check(tmp_path, source)
    name = source["password"][1:]
    assert f"write password: ${{env:{name}}}" in shown
