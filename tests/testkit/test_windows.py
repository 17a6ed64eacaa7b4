"""The test kit on sources that re-read a documented window and on reads with few checkpoints:
re-reading the window is not going back, and a kill always lands mid-read."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from syncline.config import load_workspace
from syncline.testkit import CheckResult, run_checks

from syncfixtures import make_items

TESTS = Path(__file__).parents[1]
sys.path.insert(0, str(TESTS / "sources" / "rest"))

from api_server import ApiServer  # noqa: E402

ITEMS = 120


@pytest.fixture
def api() -> Iterator[ApiServer]:
    server = ApiServer(items=ITEMS, orgs=1).start()
    try:
        yield server
    finally:
        server.stop()


def checks(root: Path, source: dict[str, Any], streams: dict[str, Any] | None = None,
           **kwargs: Any) -> dict[str, CheckResult]:
    doc: dict[str, Any] = {"version": 1, "sources": {"s": source},
                           "destinations": {"wh": {"type": "duckdb", "path": "wh.duckdb"}}}
    if streams is not None:
        doc["connections"] = {"c": {"source": "s", "destination": "wh", "streams": streams}}
    (root / "syncline.yaml").write_text(yaml.safe_dump(doc), encoding="utf-8")
    return {r.name: r for r in run_checks(load_workspace(root), "s", **kwargs)}


def rest(api: ApiServer, param: str) -> dict[str, Any]:
    """Items one second apart, asked for again from 30 s below the last cursor value."""
    return {"type": "rest", "base_url": api.url, "timeout_s": 2,
            "streams": {"items": {
                "path": "/items/pages", "primary_key": ["id"],
                "pagination": {"type": "page_number", "size_param": "per_page", "size": 25},
                "cursor": {"field": "updated_at", "param": param, "format": "iso", "lookback_s": 30}}}}


def test_a_rest_cursor_lookback_is_not_going_back(tmp_path: Path, api: ApiServer) -> None:
    results = checks(tmp_path, rest(api, "updated_since"))
    assert all(r.passed for r in results.values()), results
    detail = results["incremental"].detail
    # the window's 31 items (the last and the 30 s before it), none older
    assert detail.startswith("reading from the final checkpoint yielded 31 record(s), none with "
                             "updated_at below 2026-01-01T00:01:30+00:00, the largest of the full read, "
                             "2026-01-01T00:02:00+00:00, less the 30 s lookback window"), detail


def test_a_source_reading_below_its_window_still_fails(tmp_path: Path, api: ApiServer) -> None:
    results = checks(tmp_path, rest(api, "not_a_filter"))  # the API ignores the cursor
    assert not results["incremental"].passed
    assert ("yielded 89 record(s) with updated_at below 2026-01-01T00:01:30+00:00, the largest of the "
            "full read, 2026-01-01T00:02:00+00:00, less the 30 s lookback window the source documents"
            ) in results["incremental"].detail, results["incremental"].detail


def test_a_sql_lookback_window_is_re_read_as_the_engine_reads_it(tmp_path: Path) -> None:
    make_items(tmp_path / "src.db", ITEMS)
    results = checks(tmp_path, {"type": "sqlite", "path": "src.db"},
                     {"items": {"mode": "incremental", "write": "merge", "cursor": "updated_at",
                                "lookback": "1m"}})
    assert all(r.passed for r in results.values()), results
    detail = results["incremental"].detail
    assert detail.startswith("reading from the final checkpoint yielded 61 record(s), none with "
                             "updated_at below"), detail
    assert "less the 60 s lookback window" in detail, detail
    kill = results["kill_and_resume"].detail  # a resumed read re-reads the window below its checkpoint
    assert kill.startswith("stopped at checkpoint 3 of 5 after 72 records and resumed from"), kill
    assert kill.endswith("(in batches of 24): the other 109 arrived, none lost, 61 re-read in the 60 s "
                         "lookback window"), kill


def test_a_read_with_one_checkpoint_is_killed_mid_read_in_smaller_batches(tmp_path: Path) -> None:
    make_items(tmp_path / "src.db", ITEMS)
    results = checks(tmp_path, {"type": "sqlite", "path": "src.db"}, batch_size=1000)
    assert results["full_read"].detail.startswith(f"{ITEMS} records, 0 bad, 1 checkpoint(s)")
    kill = results["kill_and_resume"]
    assert kill.passed and kill.detail.startswith("stopped at checkpoint 3 of 5 after 72 records"), kill
    assert kill.detail.endswith("(in batches of 24): the other 48 arrived, none lost, none twice"), kill
