"""One SQLite source and a DuckDB or PostgreSQL destination, driven through the `syncline` CLI."""

from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import duckdb
import psycopg
import yaml
from typer.testing import CliRunner

import syncline.cli.app as cli

DSN = "host=127.0.0.1 port=5432 user=postgres dbname=test"


@dataclass
class Warehouse:
    root: Path
    kind: str
    schema: str
    #: the source `streams` writes; SQLite's src.db unless a test sets another
    source_config: dict[str, Any] = field(default_factory=lambda: {"type": "sqlite", "path": "src.db"})

    def streams(self, streams: dict[str, Any] | list[str], **options: Any) -> None:
        """Write the workspace: connection c from the source (src.db) into this destination."""
        dest: dict[str, Any] = ({"type": "duckdb", "path": "wh.duckdb"} if self.kind == "duckdb"
                                else {"type": "postgres", "dsn": DSN})
        doc = {
            "version": 1,
            "sources": {"src": self.source_config},
            "destinations": {"wh": dest},
            "connections": {"c": {"source": "src", "destination": "wh", "max_attempts": 1,
                                  "destination_schema": self.schema, "streams": streams, **options}},
        }
        (self.root / "syncline.yaml").write_text(yaml.safe_dump(doc), encoding="utf-8")

    def source(self, script: str) -> None:
        con = sqlite3.connect(self.root / "src.db")
        con.executescript(script)
        con.commit()
        con.close()

    def sync(self, *args: str) -> tuple[int, str]:
        """Exit code and the whole output (stdout and stderr, on one line per message)."""
        result = CliRunner().invoke(cli.app, ["sync", "c", "--workspace", str(self.root), *args])
        return result.exit_code, " ".join(result.output.split())

    def column_types(self, table: str = "t") -> dict[str, str]:
        """The destination's own type of each column of ``table``."""
        return dict(self.query("SELECT column_name, data_type FROM information_schema.columns "
                               f"WHERE table_schema = '{self.schema}' AND table_name = '{table}'"))

    def last_changes(self) -> list[str]:
        """The schema changes the last run reported for its one stream (`runs --json`)."""
        result = CliRunner().invoke(cli.app, ["runs", "c", "--limit", "1", "--json", "--workspace",
                                              str(self.root)])
        [stream] = json.loads(result.stdout)[0]["streams"]
        return list(stream["schema_changes"])

    def query(self, sql: str) -> list[tuple[Any, ...]]:
        """Run ``sql`` on the destination, ``{s}`` standing for the quoted schema."""
        text = sql.replace("{s}", f'"{self.schema}"')
        if self.kind == "duckdb":
            con = duckdb.connect(str(self.root / "wh.duckdb"), read_only=True)
            try:
                return con.execute(text).fetchall()
            finally:
                con.close()
        with psycopg.connect(DSN, autocommit=True) as pg:
            return pg.execute(text).fetchall()  # type: ignore[arg-type]
