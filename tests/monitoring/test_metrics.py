"""Prometheus metrics come from the store: runs made by `up`'s worker processes show in `up`'s
/metrics and in a separate `syncline metrics serve` alike; labels are bounded."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import httpx
from prometheus_client.parser import text_string_to_metric_families
from upkit import Up, free_port, runs, store_of, wait_for, workspace

from syncline.orchestration.queue import RunRequest


def scrape(url: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    text = httpx.get(url, timeout=10).text
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


def value(found: dict[tuple[str, tuple[tuple[str, str], ...]], float], name: str, **labels: str) -> float:
    return found[(name, tuple(sorted(labels.items())))]


def test_metrics_of_runs_in_worker_processes(tmp_path: Path, running: list[Up]) -> None:
    up = Up(workspace(tmp_path, rows=30, schedule="manual"), clocked=False)
    running.append(up)
    up.ready()
    with store_of(tmp_path) as store:
        for _ in range(2):
            store.queue().put(RunRequest("c", "manual"))
            wait_for(lambda: runs(tmp_path) and runs(tmp_path)[-1].status == "succeeded"
                     and not store.queue().entries(), "a run")
    found = scrape(f"http://127.0.0.1:{up.port}/metrics")
    assert value(found, "syncline_runs_total", connection="c", region="default", status="succeeded") == 2
    assert value(found, "syncline_rows_committed_total", connection="c", region="default") == 30
    assert value(found, "syncline_connection_run_duration_seconds_count", connection="c", region="default") == 2
    assert value(found, "syncline_run_duration_seconds_count", region="default") == 2
    assert value(found, "syncline_run_duration_seconds_bucket", region="default", le="+Inf") == 2
    assert value(found, "syncline_connections", health="healthy", region="default") == 1
    assert value(found, "syncline_failing_connections", region="default") == 0
    assert 0 <= value(found, "syncline_freshness_seconds", connection="c", region="default") < 60
    assert value(found, "syncline_workers", region="default", state="idle") == 1
    assert all(not k.startswith("run") for _, labels in found for k, _ in labels)  # bounded labels
    port = free_port()
    serve = subprocess.Popen([sys.executable, "-m", "syncline", "metrics", "serve", "-w", str(tmp_path),
                              "--port", str(port)], stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        alone = wait_for(lambda: scrape(f"http://127.0.0.1:{port}/metrics"), "metrics serve")
        assert value(alone, "syncline_runs_total", connection="c", region="default", status="succeeded") == 2
    finally:
        serve.terminate()
        assert serve.wait(10) == 0
    assert up.stop() == 0



def test_api_requests_waits_and_cdc_lag_are_metrics(store_url: str) -> None:
    import datetime as dt

    from prometheus_client import generate_latest

    from syncline.monitoring.metrics import registry
    from syncline.store.store import MetadataStore, StreamStats

    with MetadataStore(store_url) as store:
        run_id = store.start_run("api_c")
        now = dt.datetime.now(dt.UTC)
        store.record_stream(run_id, StreamStats(
            stream="orders", table_name="orders", mode="incremental", write="merge",
            status="succeeded", rows_read=2, rows_committed=2, rows_quarantined=0, bytes=10,
            duration_s=1.0, started_at=now, ended_at=now,
            requests={"requests": 3, "retries": 1, "statuses": {"200": 2, "503": 1},
                      "retry_wait_s": 1.5, "rate_limit_wait_s": 0.25}))
        store.end_run(run_id, "succeeded", rows_read=2, rows_committed=2, rows_quarantined=0, attempts=1)
        store.mirror_checkpoint("cdc_c", "public.orders", {"phase": "stream", "lsn": "0/1A", "lag_bytes": 4096})
        text = generate_latest(registry(store)).decode()
    found = {(s.name, tuple(sorted(s.labels.items()))): s.value
             for family in text_string_to_metric_families(text) for s in family.samples}
    assert value(found, "syncline_source_http_requests_total", connection="api_c", region="default",
                 status="503") == 1
    assert value(found, "syncline_source_http_requests_total", connection="api_c", region="default",
                 status="200") == 2
    assert value(found, "syncline_source_retry_wait_seconds_total", connection="api_c", region="default") == 1.5
    assert value(found, "syncline_source_rate_limit_wait_seconds_total", connection="api_c",
                 region="default") == 0.25
    assert value(found, "syncline_cdc_slot_lag_bytes", connection="cdc_c", region="default",
                 stream="public.orders") == 4096
