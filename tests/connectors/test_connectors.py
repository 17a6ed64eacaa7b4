"""The shipped declarative connectors (connectors/*.yaml) against recorded API responses."""

from __future__ import annotations

import json
from pathlib import Path

import duckdb
import yaml

from syncline.config import load_workspace
from syncline.engine.run import Runner
from syncline.store.store import MetadataStore

from replay_server import RECORDINGS, Replay, replay_server


def _workspace(root: Path, source: dict[str, object]) -> None:
    (root / "syncline.yaml").write_text(yaml.safe_dump({
        "version": 1,
        "sources": {"api": source},
        "destinations": {"wh": {"type": "duckdb", "path": "wh.duckdb"}},
        "connections": {"c": {"source": "api", "destination": "wh", "max_attempts": 1}},
    }))


def _sync(root: Path) -> tuple[str, int]:
    ws = load_workspace(root)
    store = MetadataStore(ws.metadata_url())
    try:
        result = Runner(ws, store).sync("c")
        assert result.error is None, result.error
        return result.status, result.rows_read
    finally:
        store.close()


def _query(root: Path, sql: str) -> list[tuple[object, ...]]:
    con = duckdb.connect(str(root / "wh.duckdb"), read_only=True)
    try:
        return con.execute(sql).fetchall()
    finally:
        con.close()


def test_github_connector_loads_repositories_and_issues_then_only_updates(tmp_path: Path) -> None:
    repos = json.loads((RECORDINGS / "github/orgs_acme_repos.json").read_text())
    issues = [i for f in sorted((RECORDINGS / "github").glob("issues_*.json"))
              for i in json.loads(f.read_text())]
    with replay_server() as url:
        _workspace(tmp_path, {"connector": "github", "base_url": url, "vars": {"org": "acme"},
                              "auth": {"type": "bearer", "token": "test-token"}})
        status, _ = _sync(tmp_path)
        assert status == "succeeded"
        assert any("page=2" in r for r in Replay.requests)  # Link-header pagination was followed
        assert _query(tmp_path, "SELECT count(*), count(DISTINCT id) FROM c.repositories") == [(130, 130)]
        assert _query(tmp_path, "SELECT count(*), count(DISTINCT id) FROM c.issues") == [
            (len(issues), len(issues))]
        first = repos[0]
        assert _query(tmp_path, f"SELECT full_name, description, stargazers_count FROM c.repositories "
                                f"WHERE id = {first['id']}") == [
            (first["full_name"], first["description"], first["stargazers_count"])]
        Replay.requests.clear()
        _, second_rows = _sync(tmp_path)  # incremental: `since` = the newest updated_at loaded
        issue_calls = [r for r in Replay.requests if "/issues" in r]
        # the first call is discovery's sample page; every read request carries `since`
        assert len(issue_calls) > 130 and all("since=" in r for r in issue_calls[1:])
        assert second_rows < 130 + len(issues) // 4  # repositories are re-read; issues mostly not
        assert _query(tmp_path, "SELECT count(*), count(DISTINCT id) FROM c.issues") == [
            (len(issues), len(issues))]


def test_pokeapi_connector_follows_next_urls_for_every_stream(tmp_path: Path) -> None:
    with replay_server() as url:
        _workspace(tmp_path, {"connector": "pokeapi", "base_url": f"{url}/api/v2"})
        status, rows = _sync(tmp_path)
    assert status == "succeeded"
    expected = {k: len(json.loads((RECORDINGS / f"pokeapi/{k}.json").read_text()))
                for k in ("pokemon", "berry", "type")}
    assert rows == sum(expected.values())
    for table, kind in (("pokemon", "pokemon"), ("berries", "berry"), ("types", "type")):
        assert _query(tmp_path, f"SELECT count(*), count(DISTINCT name) FROM c.{table}") == [
            (expected[kind], expected[kind])]
    assert _query(tmp_path, "SELECT name FROM c.pokemon ORDER BY name DESC LIMIT 1") == [("pokemon-0251",)]


def test_a_connector_var_left_unset_is_a_configuration_error(tmp_path: Path) -> None:
    import pytest

    from syncline.errors import ConfigurationError

    text = (Path(__file__).resolve().parents[2] / "connectors" / "github.yaml").read_text()
    (tmp_path / "conn.yaml").write_text(text.replace("vars:\n  org: octo-org\n", ""))
    _workspace(tmp_path, {"connector": "conn.yaml"})
    with pytest.raises(ConfigurationError) as err:
        load_workspace(tmp_path)
    assert "sources.api" in str(err.value) and "{{org}}" in str(err.value) and "vars:" in str(err.value)
