"""Distributed mode on a PostgreSQL store: the tested launch script starts a scheduler and two
Celery workers; a triggered run goes through Celery to one of them, SIGTERM stops all three, and
a worker process killed mid-run loses and doubles no row (on Redis; on RabbitMQ too under
`make faults`)."""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import signal
import sqlite3
import subprocess
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import duckdb
import pytest
import yaml
from celerykit import SYNCLINE, Deployment, redis_broker
from upkit import T0, Up, wait_for
from upkit import workspace as slow_workspace

from syncline import clock
from syncline.errors import ConfigurationError
from syncline.orchestration.celery_queue import PAYLOAD_VERSION, make_app, wake
from syncline.store.store import MetadataStore

from faults.oracle import Expected, compare
from faults.proxy import FaultProxy


def workspace(root: Path) -> Path:
    con = sqlite3.connect(root / "src.db")
    con.executescript("CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT);"
                      "INSERT INTO t VALUES (1, 'x'), (2, 'y'), (3, 'z');")
    con.close()
    (root / "syncline.yaml").write_text(yaml.safe_dump({
        "version": 1, "sources": {"src": {"type": "sqlite", "path": "src.db"}},
        "destinations": {"wh": {"type": "duckdb", "path": "wh.duckdb"}},
        "connections": {"c": {"source": "src", "destination": "wh"}}}))
    return root


def test_a_triggered_run_goes_through_celery_to_a_worker(tmp_path: Path,
                                                         deployment: Callable[[], Deployment]) -> None:
    workspace(tmp_path)
    d = deployment()
    assert {w["queue"] for w in d.workers()} == {"celery"}
    done = d("trigger", "c", "--wait", "--timeout", "60")
    assert done.returncode == 0, done
    runs = json.loads(d("runs", "c", "--json").stdout)
    assert [r["status"] for r in runs] == ["succeeded"], runs
    with duckdb.connect(str(tmp_path / "wh.duckdb"), read_only=True) as con:
        assert con.execute("SELECT id, v FROM c.t ORDER BY id").fetchall() == [
            (1, "x"), (2, "y"), (3, "z")]
    assert d.stop() is not None
    assert "stopped" in d.output() and "Warm shutdown" in d.output(), d.output()
    assert d.workers() == [], d.workers()  # each worker process said it ended


@pytest.mark.parametrize("broker", ["redis", pytest.param("rabbitmq", marks=pytest.mark.faults_full)],
                         indirect=True)
def test_a_worker_killed_mid_run_loses_and_doubles_no_row(tmp_path: Path,
                                                          deployment: Callable[[], Deployment]) -> None:
    slow_workspace(tmp_path, rows=2000, schedule="manual", gate=True, streams={
        "ticks": {"mode": "incremental", "cursor": "id", "write": "append"}})
    d = deployment()
    assert d("trigger", "c").returncode == 0
    running = wait_for(lambda: [w for w in d.workers() if w["run_id"]], "a worker running the run")
    with MetadataStore(d.store) as store:
        wait_for(lambda: store.checkpoints("c"), "the run's first commit")
    os.kill(running[0]["pid"], signal.SIGKILL)
    wait_for(lambda: "c: run 1 lost; queued again as entry 2" in d.output(), d.output)
    (tmp_path / "gate").touch()
    wait_for(lambda: [r["status"] for r in json.loads(d("runs", "c", "--json").stdout)]
             == ["succeeded", "crashed"], lambda: d("runs", "c").stdout, 90)
    again = json.loads(d("runs", "c", "--json").stdout)[0]
    assert 0 < again["rows_read"] < 2000, again  # resumed from the committed checkpoint
    assert d.stop() is not None
    with duckdb.connect(str(tmp_path / "wh.duckdb"), read_only=True) as con:
        rows = [(i, 1, None) for (i,) in con.execute("SELECT id FROM dst.ticks").fetchall()]
    counts = compare(Expected({i: 1 for i in range(1, 2001)}, frozenset()), rows, write="append")
    assert counts.clean, counts.describe()  # the fault oracle: 0 missing, 0 duplicates


def test_a_wake_of_a_newer_payload_is_refused_and_a_broker_must_be_redis_or_rabbitmq() -> None:
    with pytest.raises(ConfigurationError, match=f"this worker knows {PAYLOAD_VERSION}"):
        wake({"v": PAYLOAD_VERSION + 1})
    with pytest.raises(ConfigurationError, match="is not a Redis or RabbitMQ URL"):
        make_app("http://127.0.0.1:6379")
    app = make_app("redis://127.0.0.1:6379/0")  # the settings long runs need
    assert app.conf.task_acks_late and app.conf.task_reject_on_worker_lost
    assert app.conf.worker_prefetch_multiplier == 1


@pytest.mark.faults_full
def test_a_run_longer_than_the_visibility_timeout_runs_once(tmp_path: Path,
                                                            deployment: Callable[..., Deployment]) -> None:
    """Redis hands the run's wake, unacknowledged after 2 s, to the other worker: that delivery
    finds the entry claimed and ends; the run is never run beside itself."""
    slow_workspace(tmp_path, rows=600, schedule="manual", gate=True, streams={
        "ticks": {"mode": "incremental", "cursor": "id", "write": "append"}})
    d = deployment(SYNCLINE_BROKER_VISIBILITY_TIMEOUT="2", SYNCLINE_WORKER_LOG_LEVEL="info")
    done = d("trigger", "c", "--wait", "--timeout", "120")
    assert done.returncode == 0, done
    received = re.findall(r"Task syncline\.wake\[([0-9a-f-]+)\] received", d.output())
    assert len(received) > len(set(received)), d.output()  # one wake was delivered twice
    assert "nothing to claim" in d.output(), d.output()
    assert [r["status"] for r in json.loads(d("runs", "c", "--json").stdout)] == ["succeeded"]
    assert d.stop() is not None
    with duckdb.connect(str(tmp_path / "wh.duckdb"), read_only=True) as con:
        assert con.execute("SELECT count(*), count(DISTINCT id) FROM dst.ticks").fetchall() == [(600, 600)]


def test_a_run_goes_only_to_a_worker_of_its_region(tmp_path: Path,
                                                   deployment: Callable[..., Deployment]) -> None:
    workspace(tmp_path)
    doc = yaml.safe_load((tmp_path / "syncline.yaml").read_text())
    doc["sources"]["src"]["region"] = "eu"
    doc["connections"]["c"]["schedule"] = "every 1h"  # due at once: the scheduler queues it
    (tmp_path / "syncline.yaml").write_text(yaml.safe_dump(doc))
    d = deployment()  # two workers of region default
    why = lambda: [e["why"] for e in json.loads(d("queue", "--json").stdout)]  # noqa: E731
    wait_for(lambda: why() == ["no live worker for region eu"], lambda: str(why()))
    said = d("trigger", "c")
    assert said.returncode == 0 and "no live worker for region eu" in said.stderr, said
    eu = subprocess.Popen([SYNCLINE, "worker", "-w", str(tmp_path), "--region", "eu", "--workers", "1"],
                          env=d.env, stdout=(tmp_path / "eu.log").open("wb"), stderr=subprocess.STDOUT,
                          start_new_session=True)
    try:
        wait_for(lambda: [r["status"] for r in json.loads(d("runs", "c", "--json").stdout)]
                 == ["succeeded"], lambda: d("queue").stdout + (tmp_path / "eu.log").read_text(), 60)
        with MetadataStore(d.store) as store:
            [done] = store.queue().entries(("done",))
            regions = {w.name: w.region for w in store.workers().list(include_ended=True)}
        assert regions[done.worker or ""] == "eu", (done, regions)
    finally:
        eu.send_signal(signal.SIGTERM)
        eu.wait(60)


def test_up_with_a_broker_key_sends_runs_to_celery_and_starts_no_worker(
        tmp_path: Path, broker: str, require_pg_database: str) -> None:
    workspace(tmp_path)
    doc = yaml.safe_load((tmp_path / "syncline.yaml").read_text())
    store = require_pg_database.replace("postgresql://", "postgresql+psycopg://", 1)
    doc.update(broker=broker, metadata=store)
    (tmp_path / "syncline.yaml").write_text(yaml.safe_dump(doc))
    env = {k: v for k, v in os.environ.items() if not k.startswith("SYNCLINE_BROKER")}
    worker = subprocess.Popen([SYNCLINE, "worker", "-w", str(tmp_path), "--workers", "1"], env=env,
                              stdout=(tmp_path / "worker.log").open("wb"), stderr=subprocess.STDOUT,
                              start_new_session=True)  # its broker from syncline.yaml as well
    up = Up(tmp_path, clocked=False, env=env)
    try:
        up.ready()  # the store answers, a revision is applied, a (Celery) worker is alive
        assert "runs on Celery (redis://" in up.output(), up.output()
        done = subprocess.run([SYNCLINE, "trigger", "c", "--wait", "--timeout", "60", "-w", str(tmp_path)],
                              env=env, capture_output=True, text=True, timeout=90)
        assert done.returncode == 0, done
        with MetadataStore(store) as s:
            assert {w.queue for w in s.workers().list()} == {"celery"}  # up started none of its own
    finally:
        assert up.stop() == 0, up.output()
        worker.send_signal(signal.SIGTERM)
        worker.wait(60)


def test_two_schedulers_on_celery_run_each_due_run_once(tmp_path: Path, broker: str, require_pg_database: str,
                                                        deployment: Callable[..., Deployment]) -> None:
    """Two schedulers, one of them killed on the way: each connection runs once a minute on the
    fake clock all processes share, never twice for one tick."""
    workspace(tmp_path)
    doc = yaml.safe_load((tmp_path / "syncline.yaml").read_text())
    doc["connections"] = {n: {"source": "src", "destination": "wh", "schedule": "every 1m"}
                          for n in ("a", "b")}
    (tmp_path / "syncline.yaml").write_text(yaml.safe_dump(doc))
    clock_file = tmp_path / "clock"
    clock.write(clock_file, T0)
    fake = {"SYNCLINE_CLOCK": f"file:{clock_file}"}
    store = require_pg_database.replace("postgresql://", "postgresql+psycopg://", 1)
    first = subprocess.Popen([SYNCLINE, "scheduler", "-w", str(tmp_path)],
                             env={**os.environ, **fake, "SYNCLINE_BROKER_URL": broker,
                                  "SYNCLINE_METADATA_URL": store},
                             stdout=(tmp_path / "first.log").open("wb"), stderr=subprocess.STDOUT)
    try:
        with MetadataStore(store) as s:
            past = T0 - dt.timedelta(days=1)  # asks who leads without taking the role
            leader = lambda: s.leader("scheduler", "probe", dt.timedelta(seconds=1)).hold(past).holder  # noqa: E731
            wait_for(lambda: f"pid {first.pid} " in leader(), "the first scheduler to lead")
            d = deployment(**fake)  # a second scheduler and two workers
            for minute in range(4):
                if minute == 2:  # the leader dies; the other takes over once its lease expires
                    first.kill()
                    first.wait(10)
                clock.write(clock_file, T0 + dt.timedelta(minutes=minute, seconds=1))
                want = 2 * (minute + 1)
                wait_for(lambda want=want: len([r for r in s.runs(limit=100)
                                                if r.status == "succeeded"]) == want,
                         lambda: d("queue").stdout + d.output(), 60)
            runs = s.runs(limit=100)
            assert d.stop() is not None
    finally:
        if first.poll() is None:
            first.kill()
    assert Counter(r.connection for r in runs) == {"a": 4, "b": 4}, runs
    assert {r.status for r in runs} == {"succeeded"}


@pytest.mark.faults_full
def test_a_broker_that_is_down_loses_no_queued_run(tmp_path: Path, require_pg_database: str) -> None:
    workspace(tmp_path)
    store = require_pg_database.replace("postgresql://", "postgresql+psycopg://", 1)
    with redis_broker() as real, FaultProxy("127.0.0.1", int(real.split(":")[2].split("/")[0])) as proxy:
        url = f"redis://127.0.0.1:{proxy.port}/{real.rsplit('/', 1)[1]}"
        env = {**os.environ, "SYNCLINE_BROKER_URL": url, "SYNCLINE_METADATA_URL": store}
        proxy.reset()  # the broker is down: every connection is reset
        log = tmp_path / "scheduler.log"
        scheduler = subprocess.Popen([SYNCLINE, "scheduler", "-w", str(tmp_path)], env=env,
                                     stdout=log.open("wb"), stderr=subprocess.STDOUT)
        worker: subprocess.Popen[bytes] | None = None
        try:
            wait_for(lambda: "cannot wake workers through the broker" in log.read_text(), log.read_text)
            said = log.read_text()
            assert f"redis://127.0.0.1:{proxy.port}" in said and "runs stay queued" in said, said
            queued = subprocess.run([SYNCLINE, "trigger", "c", "-w", str(tmp_path)], env=env,
                                    capture_output=True, text=True, timeout=60)
            assert queued.returncode == 0, queued
            time.sleep(2)  # the scheduler keeps trying; the run waits in the store
            assert [e["state"] for e in json.loads(subprocess.run(
                [SYNCLINE, "queue", "--json", "-w", str(tmp_path)], env=env, capture_output=True,
                text=True, timeout=60).stdout)] == ["queued"]
            proxy.pass_through()  # the broker is back
            worker = subprocess.Popen([SYNCLINE, "worker", "-w", str(tmp_path), "--workers", "1"],
                                      env=env, stdout=(tmp_path / "worker.log").open("wb"),
                                      stderr=subprocess.STDOUT, start_new_session=True)
            wait_for(lambda: "the broker answers again: woke 1 queued run" in log.read_text(),
                     log.read_text)
            assert log.read_text().count("cannot wake workers") == 1, log.read_text()  # said once
            with MetadataStore(store) as s:
                wait_for(lambda: [r.status for r in s.runs()] == ["succeeded"],
                         lambda: (tmp_path / "worker.log").read_text(), 60)
        finally:
            for p in (scheduler, worker):
                if p is not None:
                    p.send_signal(signal.SIGTERM)
                    p.wait(60)


def test_a_worker_names_a_bad_region_and_notes_one_no_connection_is_in(
        tmp_path: Path, broker: str, require_pg_database: str) -> None:
    workspace(tmp_path)
    store = require_pg_database.replace("postgresql://", "postgresql+psycopg://", 1)
    env = {**os.environ, "SYNCLINE_BROKER_URL": broker, "SYNCLINE_METADATA_URL": store}

    def worker(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([SYNCLINE, "worker", "-w", str(tmp_path), *args], env=env,
                              capture_output=True, text=True, timeout=60)

    bad = worker("--region", "EU West")
    assert bad.returncode == 2 and "--region: got 'EU West'; a region is lowercase" in bad.stderr, bad
    bad = worker("--queues", "celery")
    assert bad.returncode == 2 and "'celery' is not a region's queue" in bad.stderr, bad
    assert subprocess.run([SYNCLINE, "apply", "-w", str(tmp_path)], env=env, capture_output=True,
                          timeout=60).returncode == 0
    mars = subprocess.Popen([SYNCLINE, "worker", "-w", str(tmp_path), "--region", "mars"], env=env,
                            stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        assert mars.stderr is not None
        said = mars.stderr.readline() + mars.stderr.readline()
        assert "no connection of config revision 1 is in region mars (its regions: default)" in said, said
    finally:
        mars.send_signal(signal.SIGTERM)
        mars.communicate(timeout=60)


def test_cancel_pause_and_queue_work_on_celery_as_embedded(tmp_path: Path,
                                                          deployment: Callable[..., Deployment]) -> None:
    slow_workspace(tmp_path, rows=2000, schedule="manual", gate=True)
    d = deployment()
    assert d("pause", "c").returncode == 0  # a paused connection's manual run still runs
    assert d("trigger", "c").returncode == 0
    running = wait_for(lambda: [e for e in json.loads(d("queue", "--json").stdout)
                                if e["why"] == "running" and e["run_id"]], "the run to start")
    done = d("cancel", str(running[0]["run_id"]))
    assert done.returncode == 0, done
    wait_for(lambda: [r["status"] for r in json.loads(d("runs", "c", "--json").stdout)] == ["cancelled"],
             lambda: d("runs", "c").stdout, 60)
    [run] = json.loads(d("runs", "c", "--json").stdout)
    assert "cancelled by" in (run["failure_message"] or run.get("note") or ""), run
    time.sleep(2)  # a cancelled run is not run again
    assert json.loads(d("queue", "--json").stdout) == []
    assert [r["status"] for r in json.loads(d("runs", "c", "--json").stdout)] == ["cancelled"]
