"""`syncline logs RUN`: the lines a run logged, from the store: the engine's, and one per HTTP
request of a REST source with method, path, status, duration and try; `--level` filters,
`--json` gives the structured fields; a store that cannot take lines never fails the run."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from apikit import json_api
from sqlalchemy import create_engine, text
from typer.testing import CliRunner, Result

import syncline.cli.app as cli

from syncfixtures import make_items


@pytest.fixture
def api() -> Iterator[str]:
    """/orders: a 503 first, then two orders."""
    with json_api(lambda n, _path, _auth: (503, {}) if n == 1 else
                  (200, [{"id": 1, "total": 5}, {"id": 2, "total": 7}])) as url:
        yield url


def run(*args: str | Path) -> Result:
    return CliRunner().invoke(cli.app, [str(a) for a in args])


def workspace(root: Path, api: str) -> Path:
    (root / "syncline.yaml").write_text(yaml.safe_dump({
        "version": 1,
        "sources": {"api": {"type": "rest", "base_url": api,
                            "retry": {"max_attempts": 3, "backoff_base_s": 0.01, "max_backoff_s": 0.01},
                            "streams": {"orders": {"path": "/orders", "primary_key": ["id"]}}}},
        "destinations": {"wh": {"type": "duckdb", "path": "wh.duckdb"}},
        "connections": {"c": {"source": "api", "destination": "wh"}}}))
    return root


def test_logs_show_the_engine_and_every_request_of_a_run(tmp_path: Path, api: str) -> None:
    workspace(tmp_path, api)
    assert run("sync", "c", "-w", tmp_path).exit_code == 0
    done = run("logs", "1", "-w", tmp_path, "--json")
    assert done.exit_code == 0, done.output
    lines = json.loads(done.stdout)
    requests = [line for line in lines if line["logger"] == "syncline.sources.rest.client"]
    # planning samples the stream (a 503, then its retry): the read starts from that page
    assert [(r["fields"]["status"], r["fields"]["try"], r["stream"], r["attempt"]) for r in requests] == [
        (503, 1, "orders", 1), (200, 2, "orders", 1)], requests
    assert requests[0]["level"] == "warning" and requests[0]["fields"]["path"] == "/orders"
    assert requests[0]["fields"]["duration_ms"] >= 0 and requests[0]["fields"]["method"] == "GET"
    said = [line["message"] for line in lines]
    assert said[0] == "run 1 of c started (manual, revision 1)"
    assert any(m.startswith("stream orders finished: 2 rows read, 2 committed") for m in said), said
    assert said[-1].startswith("run 1 succeeded after 1 attempt(s)")
    warned = json.loads(run("logs", "1", "-w", tmp_path, "--json", "--level", "warning").stdout)
    assert [w["message"] for w in warned] == [f"GET /orders -> 503 in {requests[0]['fields']['duration_ms']} ms"]
    table = run("logs", "1", "-w", tmp_path)
    assert "[attempt 1 stream orders] GET /orders -> 200" in table.stdout, table.stdout
    [stream] = json.loads(run("runs", "show", "1", "-w", tmp_path, "--json").stdout)["streams"]
    figures = stream["requests"]  # the run's own account of its requests, per stream
    assert {k: figures[k] for k in ("requests", "retries", "statuses")} == {
        "requests": 2, "retries": 1, "statuses": {"200": 1, "503": 1}}, figures
    assert figures["retry_wait_s"] >= 0 and figures["rate_limit_wait_s"] == 0
    assert "2 requests (1 retries: 200×1, 503×1)" in run("runs", "show", "1", "-w", tmp_path).stdout
    assert run("logs", "9", "-w", tmp_path).exit_code == 2
    assert run("logs", "1", "-w", tmp_path, "--level", "loud").exit_code == 2


def test_a_store_that_cannot_take_log_lines_never_fails_the_run(tmp_path: Path, api: str) -> None:
    workspace(tmp_path, api)
    assert run("apply", "-w", tmp_path).exit_code == 0  # the store made
    engine = create_engine(f"sqlite:///{tmp_path / '.syncline' / 'metadata.db'}")
    with engine.begin() as con:
        con.execute(text("ALTER TABLE run_logs RENAME TO run_logs_away"))
    done = run("sync", "c", "-w", tmp_path)
    assert done.exit_code == 0, done.output
    with engine.begin() as con:
        con.execute(text("ALTER TABLE run_logs_away RENAME TO run_logs"))
    engine.dispose()
    assert json.loads(run("logs", "1", "-w", tmp_path, "--json").stdout) == []  # lost, said nothing


def test_a_database_notice_is_a_line_of_the_run_log(tmp_path: Path, require_pg_database: str) -> None:
    make_items(tmp_path / "src.db", 20)
    dsn = require_pg_database.replace("postgresql+psycopg://", "postgresql://", 1)
    (tmp_path / "syncline.yaml").write_text(yaml.safe_dump({
        "version": 1, "sources": {"src": {"type": "sqlite", "path": "src.db"}},
        "destinations": {"pg": {"type": "postgres", "dsn": dsn}},
        "connections": {"c": {"source": "src", "destination": "pg", "streams": {
            "items": {"mode": "incremental", "cursor": "updated_at", "write": "merge"}}}}}))
    for _ in range(2):
        assert run("sync", "c", "-w", tmp_path).exit_code == 0
    lines = json.loads(run("logs", "2", "-w", tmp_path, "--json").stdout)
    notices = [line for line in lines if line["message"].startswith("postgres notice: ")]
    assert notices and notices[0]["logger"] == "syncline.destinations.postgres.destination", lines
    assert notices[0]["fields"]["sqlstate"] and notices[0]["stream"] == "items"
