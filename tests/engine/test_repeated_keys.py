"""A declared primary key that repeats in one read fails the stream before anything is committed,
on every SQL source; `verify` calls such keys duplicated."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from sqlsources import Db, write_ws
from typer.testing import CliRunner

from syncline.cli import app as cli

from syncfixtures import dest_query, run_sync


def orders(db: Db, repeats: bool = True) -> None:
    db.run("CREATE TABLE orders (id integer, line integer NOT NULL, note varchar(20), "
           "updated_at timestamp NOT NULL)")
    lines = 10 if repeats else 1
    db.run("INSERT INTO orders VALUES " + ", ".join(
        f"({7000 + i}, {j}, 'n', {db.minutes_ago(60 - i)})" for i in range(1, 11) for j in range(lines)))


def cli_run(*args: str) -> tuple[int, str, str]:
    done = CliRunner().invoke(cli.app, list(args))
    return done.exit_code, done.stdout, done.stderr


@pytest.mark.parametrize("mode", ["incremental", "full_refresh"])
def test_a_declared_key_that_repeats_fails_the_stream_and_commits_nothing(
        tmp_path: Path, db: Db, mode: str) -> None:
    orders(db)
    write_ws(tmp_path, db, mode=mode, write="merge", primary_key=["id"],
             **({"cursor": "updated_at"} if mode == "incremental" else {}))
    code, _out, err = cli_run("sync", "c", "-w", str(tmp_path))
    assert code == 1
    text = " ".join(err.split())
    assert "data error" in text
    assert "the primary key (id) is not unique: 10 key values come 100 times in this read" in text
    assert "repeated key values: 70" in text  # the command shows samples
    code, out, _ = cli_run("runs", "c", "-w", str(tmp_path), "--json")
    [run] = json.loads(out)
    assert run["failure_class"] == "data" and "7001" not in json.dumps(run)  # the store does not
    tables = dest_query(tmp_path, "SELECT count(*) FROM information_schema.tables "
                                  "WHERE table_schema = 'dst' AND table_name = 'orders'")
    assert tables == [(0,)] or dest_query(tmp_path, "SELECT count(*) FROM dst.orders") == [(0,)]


def test_a_key_the_source_repeats_later_is_reported_duplicated_by_verify(tmp_path: Path, db: Db) -> None:
    orders(db, repeats=False)
    write_ws(tmp_path, db, mode="full_refresh", write="merge", primary_key=["id"])
    assert run_sync(tmp_path).status == "succeeded"
    db.run("INSERT INTO orders VALUES (7003, 1, 'again', " + db.minutes_ago(5) + ")")
    code, out, _ = cli_run("verify", "c", "-w", str(tmp_path), "--json")
    assert code == 1, out
    [verdict] = json.loads(out)
    assert (verdict["duplicated"], verdict["different"], verdict["missing"]) == (1, 0, 0)
