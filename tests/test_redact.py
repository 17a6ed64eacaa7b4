"""The redactor: real error texts of our sources and destinations lose their row values and
secrets and keep what happened, where, and the fix; texts with neither pass unchanged."""

from __future__ import annotations

import pytest

from syncline.redact import redact, redact_all, remember

CASES = [
    ("postgres unique", 'duplicate key value violates unique constraint "users_email_key"\n'
     "DETAIL:  Key (email)=(ann@example.com) already exists.",
     'duplicate key value violates unique constraint "users_email_key"\n'
     "DETAIL:  Key (email)=(…) already exists."),
    ("postgres composite key", "DETAIL:  Key (tenant, email)=(7, ann@example.com) already exists.",
     "DETAIL:  Key (tenant, email)=(…) already exists."),
    ("postgres foreign key", 'insert or update on table "orders" violates foreign key constraint '
     '"orders_customer_id_fkey"\nDETAIL:  Key (customer_id)=(42) is not present in table "customers".',
     'insert or update on table "orders" violates foreign key constraint "orders_customer_id_fkey"\n'
     'DETAIL:  Key (customer_id)=(…) is not present in table "customers".'),
    ("postgres not null", 'null value in column "name" of relation "users" violates not-null '
     "constraint\nDETAIL:  Failing row contains (1, null, ann@example.com).",
     'null value in column "name" of relation "users" violates not-null constraint\n'
     "DETAIL:  Failing row contains (…)."),
    ("postgres input syntax", 'invalid input syntax for type integer: "12abc"',
     'invalid input syntax for type integer: "…"'),
    ("postgres timestamp", 'invalid input syntax for type timestamp with time zone: "yesterday-ish"',
     'invalid input syntax for type timestamp with time zone: "…"'),
    ("postgres enum", 'invalid input value for enum mood: "ecstatic"', 'invalid input value for enum mood: "…"'),
    ("postgres out of range", 'value "99999999999" is out of range for type integer',
     'value "…" is out of range for type integer'),
    ("mysql duplicate", "(1062, \"Duplicate entry 'ann@example.com' for key 'users.email'\")",
     "(1062, \"Duplicate entry '…' for key 'users.email'\")"),
    ("mysql incorrect value", "(1366, \"Incorrect integer value: 'abc' for column 'n' at row 1\")",
     "(1366, \"Incorrect integer value: '…' for column 'n' at row 1\")"),
    ("mysql truncated", "(1292, \"Truncated incorrect DOUBLE value: '1.2.3'\")",
     "(1292, \"Truncated incorrect DOUBLE value: '…'\")"),
    ("duckdb conversion", "Conversion Error: Could not convert string 'abc' to INT32",
     "Conversion Error: Could not convert string '…' to INT32"),
    ("duckdb duplicate", 'Constraint Error: Duplicate key "id: 5" violates primary key constraint.',
     'Constraint Error: Duplicate key "…" violates primary key constraint.'),
    ("url password", "could not connect to postgresql://ann:s3cr3t-pw@db.example.com:5432/shop",
     "could not connect to postgresql://ann:***@db.example.com:5432/shop"),
    ("broker url", "Error 111 connecting to redis://:hunter22@mq:6379/0", "Error 111 connecting to redis://:***@mq:6379/0"),
    ("libpq keywords", "host=db user=ann password=s3cr3t-pw dbname=shop",
     "host=db user=ann password=*** dbname=shop"),
    ("http bearer", 'GET /v1/orders answered HTTP 401 Unauthorized: {"sent": "Bearer abcdef123456"}',
     'GET /v1/orders answered HTTP 401 Unauthorized: {"sent": "Bearer ***"}'),
    ("query token", "GET /v1/orders?api_key=k-123456&page=2 failed", "GET /v1/orders?api_key=***&page=2 failed"),
]
UNCHANGED = [
    "connection 'c', stream 'items': source 'src' has no such stream (renamed or dropped?)",
    "no connection named 'shop' in syncline.yaml\n  fix: use one of: a, b",
    'column "email" does not exist',
    "the DuckDB file /data/wh.duckdb is held by another process (PID 4242); waited 60s",
    "source 'api': GET /v1/orders answered HTTP 503 Service Unavailable",
    "read 0 rows where recent runs read about 1,500",
    "permission denied for table orders\n  fix: GRANT SELECT ON public.orders TO syncline",
    "source 'api': the token endpoint refused the client credentials: POST /oauth/token answered HTTP 401",
    "fix: check `user:` and `password:` of source 'src'",
    "the password is the literal text $PG_PASSWORD: write password: ${env:PG_PASSWORD}",
    "the API wants Basic authentication; Bearer tokens are refused",
]


@pytest.mark.parametrize(("name", "text", "expected"), CASES, ids=[c[0] for c in CASES])
def test_row_values_and_secrets_are_taken_out(name: str, text: str, expected: str) -> None:
    assert redact(text) == expected


@pytest.mark.parametrize("text", UNCHANGED)
def test_a_text_without_values_or_secrets_is_unchanged(text: str) -> None:
    assert redact(text) == text


def test_a_remembered_secret_is_masked_wherever_it_appears() -> None:
    remember("tok_live_redact_canary42")
    remember("postgresql://svc:pw-redact-canary77@db/shop")
    said = "unknown key tok_live_redact_canary42; tried pw-redact-canary77 for svc"
    assert redact(said) == "unknown key ***; tried *** for svc"
    assert redact_all({"message": said, "n": 3, "list": [said]}) == {
        "message": "unknown key ***; tried *** for svc", "n": 3, "list": ["unknown key ***; tried *** for svc"]}
