"""Failure signatures over real error texts of our sources and destinations: texts of one root
cause (other connections, hosts, ids, numbers, quoted values, paths) share a signature;
texts of different causes (another HTTP status, errno, class, origin) never do."""

from __future__ import annotations

from itertools import combinations

import pytest

from syncline.failure_signature import fix_of, signature

# (group, failure class, message): one group is one root cause
TEXTS = [
    ("api-401", "configuration", "connection 'crm_eu', stream 'contacts': source 'crm_eu': GET "
     "https://eu.api.example.com/v1/contacts?page=2&limit=100 answered HTTP 401 Unauthorized: "
     "{\"error\": \"invalid_token\"}\n  fix: check the credentials of sources.crm_eu.auth"),
    ("api-401", "configuration", "connection 'crm_us', stream 'contacts': source 'crm_us': GET "
     "https://us.api.example.com/v1/contacts?page=7 answered HTTP 401 Unauthorized: "
     "{\"error\": \"invalid_token\"}\n  fix: check the credentials of sources.crm_us.auth"),
    ("api-403", "configuration", "connection 'crm_us', stream 'deals': source 'crm_us': GET "
     "https://us.api.example.com/v1/deals answered HTTP 403 Forbidden: {\"error\": \"scope\"}"),
    ("api-503", "transient", "connection 'crm_eu', stream 'contacts': source 'crm_eu': GET "
     "https://eu.api.example.com/v1/contacts?page=3 failed 6 times; last: HTTP 503 Service Unavailable"),
    ("api-503", "transient", "connection 'billing', stream 'invoices': source 'billing': GET "
     "https://billing.example.com/api/invoices/88812 failed 4 times; last: HTTP 503 Service Unavailable"),
    ("api-gone", "source", "connection 'a', stream 'orders': source 'shopify_a': GET "
     "https://a.myshop.example.com/admin/api/2024-01/orders.json answered HTTP 410 Gone: {}"),
    ("api-gone", "source", "connection 'b', stream 'orders': source 'shopify_b': GET "
     "https://b.myshop.example.com/admin/api/2024-01/orders.json answered HTTP 410 Gone: {}"),
    ("refused", "transient", "connection 'c', stream 'users': source 'api': GET "
     "http://10.0.0.5:8080/v1/users failed 6 times; last: ConnectError: [Errno 111] Connection refused"),
    ("refused", "transient", "connection 'd', stream 'users': source 'api2': GET "
     "http://10.0.0.9:8080/v1/users failed 6 times; last: ConnectError: [Errno 111] Connection refused"),
    ("timeout", "transient", "connection 'd', stream 'users': source 'api2': GET "
     "http://10.0.0.9:8080/v1/users failed 6 times; last: ReadTimeout: timed out"),
    ("pg-down", "transient", "connection 'shop', stream 'public.orders': source 'shop': cannot "
     "connect: connection failed: connection to server at \"10.1.2.3\", port 5432 failed: "
     "Connection refused\n\tIs the server running on that host and accepting TCP/IP connections?"),
    ("pg-down", "transient", "connection 'crm_db': source 'crm_db': cannot connect: connection "
     "failed: connection to server at \"db2.internal\", port 6432 failed: Connection refused"),
    ("pg-auth", "configuration", "connection 'shop': source 'shop': cannot connect: connection "
     "failed: connection to server at \"10.1.2.3\", port 5432 failed: FATAL:  password "
     "authentication failed for user \"etl\"\n  fix: check `user:` and `password:` of source 'shop'"),
    ("pg-auth", "configuration", "connection 'crm': source 'crm_db': cannot connect: connection "
     "failed: connection to server at \"db9.example.com\", port 5432 failed: FATAL:  password "
     "authentication failed for user \"loader\""),
    ("pg-grant", "configuration", "connection 'shop', stream 'public.orders': source 'shop': "
     "permission denied for table orders\n  fix: GRANT SELECT ON public.orders TO etl"),
    ("pg-grant", "configuration", "connection 'shop', stream 'public.customers': source 'shop': "
     "permission denied for table customers\n  fix: GRANT SELECT ON public.customers TO etl"),
    ("pg-slot", "source", "connection 'cdc': source 'shop': replication slot "
     "\"syncline_cdc_a1b2c3\" is active for PID 48213"),
    ("pg-slot", "source", "connection 'cdc2': source 'shop2': replication slot "
     "\"syncline_cdc2_ffe012\" is active for PID 1022"),
    ("mysql-down", "transient", "connection 'erp': source 'erp': cannot connect: (2003, \"Can't "
     "connect to MySQL server on '10.0.0.7' ([Errno 111] Connection refused)\")"),
    ("mysql-down", "transient", "connection 'erp2': source 'erp2': cannot connect: (2003, \"Can't "
     "connect to MySQL server on 'mysql.internal' ([Errno 111] Connection refused)\")"),
    ("mysql-auth", "configuration", "connection 'erp': source 'erp': cannot connect: (1045, \"Access "
     "denied for user 'etl'@'10.0.0.7' (using password: YES)\")"),
    ("mysql-auth", "configuration", "connection 'erp3': source 'erp3': cannot connect: (1045, \"Access "
     "denied for user 'loader'@'172.16.0.2' (using password: YES)\")"),
    ("mysql-binlog", "configuration", "connection 'erp': source 'erp': binlog_format is STATEMENT; "
     "CDC needs ROW\n  fix: SET GLOBAL binlog_format = 'ROW'"),
    ("duckdb-lock", "transient", "connection 'a': destination 'wh' (/data/wh.duckdb): the DuckDB "
     "file /data/wh.duckdb is held by another process (PID 4242); waited 60s"),
    ("duckdb-lock", "transient", "connection 'b': destination 'lake' (/srv/lake/main.duckdb): the "
     "DuckDB file /srv/lake/main.duckdb is held by another process (PID 77); waited 60s"),
    ("duckdb-disk", "destination", "connection 'a': destination 'wh' (/data/wh.duckdb): IO Error: "
     "Could not write file \"/data/wh.duckdb.wal\": No space left on device"),
    ("duckdb-disk", "destination", "connection 'b': destination 'w2' (/mnt/w2.duckdb): IO Error: "
     "Could not write file \"/mnt/w2.duckdb.wal\": No space left on device"),
    ("pg-dest-unique", "destination", "connection 'a', stream 'users': destination 'pg': duplicate "
     "key value violates unique constraint \"users_email_key\"\nDETAIL:  Key (email)=(…) already exists."),
    ("pg-dest-unique", "destination", "connection 'b', stream 'users': destination 'pg2': duplicate "
     "key value violates unique constraint \"users_pkey\"\nDETAIL:  Key (id)=(…) already exists."),
    ("tap-exit-1", "source", "connection 'gh', stream 'issues': source 'github': the tap exited "
     "with code 1: requests.exceptions.HTTPError: 502 Server Error for url: https://api.github.com/repos/a/b"),
    ("tap-exit-1", "source", "connection 'gh2', stream 'issues': source 'github2': the tap exited "
     "with code 1: requests.exceptions.HTTPError: 502 Server Error for url: https://api.github.com/repos/c/d"),
    ("tap-exit-2", "source", "connection 'gh', stream 'issues': source 'github': the tap exited "
     "with code 2: usage: tap-github [-h] --config CONFIG"),
    ("tap-killed", "transient", "connection 'gh', stream 'issues': source 'github': the tap was "
     "killed by SIGKILL (out of memory?)"),
    ("silent", "transient", "connection 'a', stream 'orders': source 'shop': the source sent "
     "nothing for 600s"),
    ("silent", "transient", "connection 'b', stream 'items': source 'erp': the source sent "
     "nothing for 120s"),
    ("crash", "internal", "connection 'a': the process running this sync died (killed or crashed); "
     "the next run resumes from the last committed checkpoint"),
    ("crash", "internal", "connection 'b': the process running this sync died (killed or crashed); "
     "the next run resumes from the last committed checkpoint"),
    ("zero-rows", "data", "connection 'a', stream 'orders': read 0 rows where recent runs read "
     "about 1,500; the existing table is kept"),
    ("zero-rows", "data", "connection 'b', stream 'items': read 0 rows where recent runs read "
     "about 98,211; the existing table is kept"),
    ("env-unset", "configuration", "syncline.yaml: sources.crm.auth.token: the environment variable "
     "CRM_TOKEN is not set\n  fix: export CRM_TOKEN=... before running, or remove the reference"),
    ("not-unique", "data", "connection 'a', stream 'users': the primary key (email) is not unique: "
     "3 key values come 7 times in this read, and nothing of it was committed"),
    ("not-unique", "data", "connection 'z', stream 'people': the primary key (tenant, email) is not "
     "unique: 2 key values come 5 times in this read, and nothing of it was committed"),
]


def test_there_are_enough_real_texts_and_groups() -> None:
    assert len(TEXTS) >= 30 and len({g for g, _, _ in TEXTS}) >= 20


@pytest.mark.parametrize(("a", "b"), [(a, b) for a, b in combinations(range(len(TEXTS)), 2)
                                      if TEXTS[a][0] == TEXTS[b][0]],
                         ids=lambda i: TEXTS[i][0] if isinstance(i, int) else str(i))
def test_texts_of_one_cause_share_a_signature(a: int, b: int) -> None:
    one, two = signature(*TEXTS[a][1:]), signature(*TEXTS[b][1:])
    assert one == two, f"\n{one}\n{two}"


def test_texts_of_different_causes_never_share_one() -> None:
    keys: dict[str, str] = {}
    for group, failure_class, message in TEXTS:
        key = signature(failure_class, message).key
        assert keys.setdefault(key, group) == group, (
            f"{group} and {keys[key]} share {signature(failure_class, message)}")


def first(group: str) -> tuple[str, str]:
    return next((c, m) for g, c, m in TEXTS if g == group)


def test_a_signature_names_origin_and_type_and_keeps_the_fix_apart() -> None:
    sig = signature(*first("api-401"))
    assert (sig.origin, sig.error_type) == ("source", "HTTP 401")
    assert "crm_eu" not in sig.pattern and "page" not in sig.pattern and "fix" not in sig.pattern
    assert signature(*first("duckdb-lock")).origin == "destination"
    assert signature(*first("crash")).origin == "platform"
    assert signature(*first("pg-auth")).origin == "source"  # a source's credentials
    assert signature(*first("env-unset")).origin == "configuration"
    assert fix_of(first("api-401")[1]) == "check the credentials of sources.crm_eu.auth"
    assert fix_of(first("api-403")[1]) is None
