"""REST API → DuckDB through the engine: every record exactly once despite faults, crashes and drift."""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import psycopg
import pytest
import yaml
from psycopg import sql

from api_server import FAULTS, ApiServer
from services import require_postgres
from syncfixtures import dest_query, failpoints_on, run_sync

PG_DSN = "host=127.0.0.1 port=5432 user=postgres dbname=test"

# Pages of 250 keep the suite fast; test_pagination covers small pages.
PAGES = {"type": "page_number", "size_param": "per_page", "size": 250}
RETRY = {"max_attempts": 6, "backoff_base_s": 0.01, "max_backoff_s": 0.05, "max_retry_after_s": 0.05}


def write_ws(root: Path, api: ApiServer, streams: dict[str, Any], *,
             selected: dict[str, Any] | None = None, max_attempts: int = 1,
             destination: dict[str, Any] | None = None, schema: str = "dst",
             batch_size: int | None = None, **source: Any) -> None:
    doc = {
        "version": 1,
        "sources": {"api": {"type": "rest", "base_url": api.url, "retry": RETRY, "timeout_s": 2,
                            "streams": streams, **source}},
        "destinations": {"wh": destination or {"type": "duckdb", "path": "wh.duckdb"}},
        "connections": {"c": {"source": "api", "destination": "wh", "destination_schema": schema,
                              "max_attempts": max_attempts,
                              **({"batch_size": batch_size} if batch_size else {}),
                              "streams": selected or {name: {"write": "merge"} for name in streams}}},
    }
    (root / "syncline.yaml").write_text(yaml.safe_dump(doc), encoding="utf-8")


def loaded_items(root: Path, table: str) -> list[tuple[Any, ...]]:
    rows = dest_query(root, f"SELECT id, name, price, active, note, meta, version, "
                            f"strftime(updated_at AT TIME ZONE 'UTC', '%Y-%m-%dT%H:%M:%SZ') "
                            f"FROM dst.{table} ORDER BY id")
    return [(*r[:5], json.loads(r[5]), *r[6:]) for r in rows]


def served_items(api: ApiServer) -> list[tuple[Any, ...]]:
    return [(i["id"], i["name"], i["price"], i["active"], i["note"], i["meta"], i["version"],
             i["updated_at"]) for i in api.items]


def test_every_pagination_style_lands_every_record_once_despite_faults(tmp_path: Path,
                                                                        api: ApiServer) -> None:
    streams = {
        "by_page": {"path": "/items/pages", "primary_key": ["id"], "pagination": PAGES},
        "by_offset": {"path": "/items/offset", "primary_key": ["id"],
                      "pagination": {"type": "offset", "limit": 250}},
        "by_cursor": {"path": "/items/cursor", "primary_key": ["id"], "params": {"limit": 250},
                      "pagination": {"type": "cursor", "token_path": "$.meta.next"}},
        "by_link": {"path": "/items/link", "primary_key": ["id"], "params": {"per_page": 250},
                    "pagination": {"type": "link_header"}},
        "by_next": {"path": "/items/next", "primary_key": ["id"], "params": {"per_page": 250},
                    "pagination": {"type": "next_url"}},
    }
    write_ws(tmp_path, api, streams, timeout_s=0.3)
    api.slow_s = 0.5
    api.chaos(every=3, kinds=list(FAULTS))  # 1 request in 3 fails, each kind in turn
    result = run_sync(tmp_path)
    assert result.status == "succeeded", result.error
    assert result.attempts == 1  # absorbed by HTTP retries, not by re-running
    assert api.data_requests >= 5 * 12  # so every fault kind struck at least twice
    for table in streams:
        assert loaded_items(tmp_path, table) == served_items(api), table


def test_incremental_run_fetches_only_records_updated_after_the_cursor(tmp_path: Path,
                                                                       api: ApiServer) -> None:
    cursor = {"field": "updated_at", "param": "updated_since"}
    write_ws(tmp_path, api, {"items": {"path": "/items/pages", "primary_key": ["id"],
                                       "pagination": PAGES, "cursor": cursor}})
    first = run_sync(tmp_path)
    assert first.status == "succeeded" and first.rows_committed == 3000
    api.update_items([5, 1500, 2999], version=1)
    api.add_items(2)
    api.log.clear()
    second = run_sync(tmp_path)
    assert second.status == "succeeded", second.error
    # the 3 updated, the 2 new, and the record at the cursor itself (the API's filter is >=)
    assert second.rows_read == 6
    reads = [q for q in api.requests_to("/items/pages") if "updated_since" in q]
    assert reads and all(q["updated_since"] == "2026-01-01T00:50:00Z" for q in reads)  # item 3000
    assert loaded_items(tmp_path, "items") == served_items(api)
    assert dest_query(tmp_path, "SELECT version FROM dst.items WHERE id = 1500") == [(1,)]
    assert run_sync(tmp_path).rows_read == 1  # only the boundary record again


def test_child_stream_is_read_once_per_parent_record(tmp_path: Path, api: ApiServer) -> None:
    streams = {
        "orgs": {"path": "/orgs", "primary_key": ["id"],
                 "pagination": {"type": "page_number", "size_param": "per_page", "size": 5}},
        "repos": {"path": "/orgs/{org_id}/repos", "primary_key": ["id"],
                  "parent": {"stream": "orgs", "key": "id", "as": "org_id"},
                  "pagination": {"type": "page_number", "size_param": "per_page", "size": 10}},
    }
    write_ws(tmp_path, api, streams)
    result = run_sync(tmp_path)
    assert result.status == "succeeded", result.error
    expected = sorted((r["id"], org, r["name"]) for org, repos in api.repos.items() for r in repos)
    assert len(expected) > 100
    assert dest_query(tmp_path, "SELECT id, org_id, name FROM dst.repos ORDER BY id") == expected
    assert dest_query(tmp_path, "SELECT count(*) FROM dst.orgs") == [(12,)]


@pytest.mark.parametrize("stream", ["items", "repos"])
def test_a_failed_run_resumes_at_the_last_committed_page(tmp_path: Path, api: ApiServer,
                                                         stream: str) -> None:
    streams = {
        "items": {"path": "/items/pages", "primary_key": ["id"], "pagination": PAGES},
        "orgs": {"path": "/orgs", "primary_key": ["id"]},
        "repos": {"path": "/orgs/{org_id}/repos", "primary_key": ["id"],
                  "parent": {"stream": "orgs", "key": "id", "as": "org_id"},
                  "pagination": {"type": "page_number", "size_param": "per_page", "size": 10}},
    }
    # a commit per page (one commit may cover several pages of a batch)
    write_ws(tmp_path, api, streams, selected={stream: {"write": "merge"}}, max_attempts=1,
             batch_size=250 if stream == "items" else 10)
    with failpoints_on("after_commit:4=raise"):
        failed = run_sync(tmp_path)
    assert failed.status == "failed" and failed.error is not None
    assert failed.error.failure_class == "transient"
    committed = dest_query(tmp_path, f"SELECT count(*) FROM dst.{stream}")[0][0]
    assert committed > 0
    resumed = run_sync(tmp_path)
    assert resumed.status == "succeeded", resumed.error
    if stream == "items":
        assert committed == 1000 and resumed.rows_read == 2000
        expected = [(i,) for i in range(1, 3001)]
    else:
        total = sum(len(r) for r in api.repos.values())
        assert resumed.rows_read == total - committed
        expected = sorted((r["id"],) for repos in api.repos.values() for r in repos)
    assert dest_query(tmp_path, f"SELECT id FROM dst.{stream} ORDER BY id") == expected


def test_offset_drift_duplicates_are_merged_away(tmp_path: Path, api: ApiServer) -> None:
    write_ws(tmp_path, api, {"feed": {"path": "/items/feed", "primary_key": ["id"],
                                      "pagination": {"type": "offset", "limit": 250}}})
    api.drift = {500: 3, 1500: 2}  # items added at the head while the client pages through
    first = run_sync(tmp_path)
    assert first.status == "succeeded", first.error
    assert first.rows_read == 3005  # five records were served twice
    assert dest_query(tmp_path, "SELECT count(*), count(DISTINCT id), min(id), max(id) FROM dst.feed") \
        == [(3000, 3000, 1, 3000)]
    second = run_sync(tmp_path)  # the items added mid-read arrive with the next run
    assert second.status == "succeeded"
    assert dest_query(tmp_path, "SELECT count(*), count(DISTINCT id) FROM dst.feed") == [(3005, 3005)]


def test_refused_credentials_fail_the_run_naming_the_auth_key(tmp_path: Path, api: ApiServer,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    api.auth = ("bearer", "right")
    monkeypatch.setenv("API_TOKEN", "wrong-token")
    write_ws(tmp_path, api, {"items": {"path": "/items/all", "primary_key": ["id"]}},
             auth={"type": "bearer", "token": "${env:API_TOKEN}"}, max_attempts=3)
    result = run_sync(tmp_path)
    assert result.status == "failed" and result.error is not None
    assert result.error.failure_class == "configuration" and result.attempts == 1
    assert "sources.api.auth" in str(result.error) and "wrong-token" not in str(result.error)


def test_a_field_beyond_the_sample_page_is_added_as_a_column_and_loaded(
        tmp_path: Path, small_api: ApiServer) -> None:
    small_api.items[250]["coupon"] = "SAVE10"  # on the 3rd page only
    write_ws(tmp_path, small_api, {"items": {"path": "/items/pages", "primary_key": ["id"],
                                             "pagination": PAGES | {"size": 100}}})
    result = run_sync(tmp_path)
    assert result.status == "succeeded", result.error
    assert result.streams[0].schema_changes == [
        "new column coupon string: the field first came on page 3, outside the discovered schema"]
    assert dest_query(tmp_path, "SELECT count(*) FROM dst.items") == [(300,)]
    assert dest_query(tmp_path, "SELECT id, coupon FROM dst.items WHERE coupon IS NOT NULL") \
        == [(251, "SAVE10")]


def _cli_json(root: Path, *args: str) -> Any:
    done = subprocess.run([sys.executable, "-m", "syncline", *args, "--json", "-w", str(root)],
                          capture_output=True, text=True, timeout=120,
                          env={k: v for k, v in os.environ.items() if not k.startswith("SYNCLINE_")})
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


@pytest.fixture(params=["duckdb", "postgres"])
def warehouse(request: pytest.FixtureRequest) -> Iterator[tuple[dict[str, Any], str]]:
    """A destination and a schema of this test alone: DuckDB, or PostgreSQL (dropped after)."""
    if request.param == "duckdb":
        yield {"type": "duckdb", "path": "wh.duckdb"}, "dst"
        return
    require_postgres()
    schema = f"syncline_test_{secrets.token_hex(4)}"
    yield {"type": "postgres", "dsn": PG_DSN}, schema
    with psycopg.connect(PG_DSN, autocommit=True) as con:
        con.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(schema)))


def _query(root: Path, warehouse: tuple[dict[str, Any], str], text: str) -> list[tuple[Any, ...]]:
    destination, schema = warehouse
    text = text.replace("dst.", f"{schema}.")
    if destination["type"] == "duckdb":
        return dest_query(root, text)
    with psycopg.connect(PG_DSN, autocommit=True) as con:
        return [tuple(float(v) if isinstance(v, Decimal) else v for v in row)
                for row in con.execute(text).fetchall()]


def test_a_field_renamed_mid_run_is_loaded_and_the_old_one_reported_vanished(
        tmp_path: Path, small_api: ApiServer, warehouse: tuple[dict[str, Any], str]) -> None:
    for item in small_api.items[150:]:  # the API renames price mid-way through page 2
        item["amount"] = item.pop("price")
    write_ws(tmp_path, small_api, {"items": {"path": "/items/pages", "primary_key": ["id"],
                                             "pagination": PAGES | {"size": 100}}},
             destination=warehouse[0], schema=warehouse[1])
    result = run_sync(tmp_path)
    assert result.status == "warning", result.error
    assert _query(tmp_path, warehouse, "SELECT count(*), count(price), count(amount) FROM dst.items") \
        == [(300, 150, 150)]
    assert _query(tmp_path, warehouse,
                  "SELECT min(id), sum(amount) FROM dst.items WHERE amount IS NOT NULL") \
        == [(151, sum(i * 1.25 for i in range(151, 301)))]
    changes = ["new column amount float64: the field first came on page 2, outside the discovered "
               "schema",
               "vanished field price float64: in no record after page 2, so its column holds null "
               "for the records after it (renamed or dropped by the API?)"]
    run = _cli_json(tmp_path, "runs", "c")[0]
    assert run["status"] == "warning" and run["streams"][0]["schema_changes"] == changes
    status = _cli_json(tmp_path, "status")[0]
    assert status["health"] == "warning"
    assert status["last_run"]["streams"][0]["schema_changes"] == changes


def test_the_cursor_goes_back_exactly_as_the_api_wrote_it(tmp_path: Path, small_api: ApiServer) -> None:
    at = "2026-01-01T00:00:0{}.123456789+00:00"  # an offset, not Z; nanoseconds
    small_api.events = [{"id": i, "updated_at": at.format(i)} for i in range(1, 4)]
    write_ws(tmp_path, small_api, {"events": {"path": "/events", "primary_key": ["id"],
                                              "cursor": {"field": "updated_at", "param": "updated_since"}}})
    assert run_sync(tmp_path).rows_committed == 3
    small_api.events.append({"id": 4, "updated_at": at.format(3)})  # the same instant, seen late
    small_api.log.clear()
    second = run_sync(tmp_path)
    assert second.status == "succeeded", second.error
    sent = [q.get("updated_since") for q in small_api.requests_to("/events")]
    assert sent == [None, at.format(3)]  # discovery's sample page, then the incremental read
    assert dest_query(tmp_path, "SELECT id FROM dst.events ORDER BY id") == [(1,), (2,), (3,), (4,)]


@pytest.mark.parametrize(("token_path", "status", "rows"), [
    ("$.meta.nxt", "warning", 70),
    ("$.meta.next", "succeeded", 300),
], ids=["token-path-typo", "right-token-path"])
def test_a_full_page_without_a_next_token_ends_the_run_as_a_warning(
        tmp_path: Path, small_api: ApiServer, token_path: str, status: str, rows: int) -> None:
    pagination = {"type": "cursor", "token_path": token_path, "size_param": "limit", "size": 70}
    write_ws(tmp_path, small_api, {"items": {"path": "/items/cursor", "records": "$.results[*]",
                                             "primary_key": ["id"], "pagination": pagination}})
    result = run_sync(tmp_path)
    assert (result.status, result.rows_committed) == (status, rows), result.error
    assert all(q["limit"] == "70" for q in small_api.requests_to("/items/cursor"))
    notices = result.streams[0].notices
    if status == "succeeded":
        assert notices == []
        return
    assert len(notices) == 1
    assert "full (70 records, `size: 70`) and names no next page" in notices[0]
    assert "nothing at `$.meta.nxt` in a body holding the top-level keys 'results', 'meta'" \
        in notices[0]
    assert "sources.api.streams.items" in notices[0]


def test_a_field_new_mid_refresh_lands_in_the_rebuilt_table(tmp_path: Path, small_api: ApiServer) -> None:
    streams = {"items": {"path": "/items/pages", "primary_key": ["id"],
                         "pagination": PAGES | {"size": 100}}}
    write_ws(tmp_path, small_api, streams,
             selected={"items": {"mode": "full_refresh", "write": "replace"}})
    assert run_sync(tmp_path).status == "succeeded"
    small_api.items[299]["coupon"] = "LAST"  # on the last page of the next refresh
    second = run_sync(tmp_path)
    assert second.status == "succeeded", second.error
    assert dest_query(tmp_path, "SELECT count(*), max(coupon) FROM dst.items") == [(300, "LAST")]


def test_one_outage_costs_one_retry_budget_of_requests(tmp_path: Path, api: ApiServer) -> None:
    # the engine would make 3 attempts; the client's 6 requests are the whole budget
    write_ws(tmp_path, api, {"items": {"path": "/items/pages", "primary_key": ["id"],
                                       "pagination": PAGES}}, max_attempts=3)
    api.inject("503", "/items", times=100)
    failed = run_sync(tmp_path)
    assert failed.status == "failed" and failed.attempts == 1
    assert failed.error is not None and failed.error.failure_class == "transient"
    assert "failed 6 times" in str(failed.error)
    assert len(api.requests_to("/items")) == RETRY["max_attempts"]
