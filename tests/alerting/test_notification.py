"""The payload receivers get and the signature they check: tampering and replays are caught."""

from __future__ import annotations

import datetime as dt
import json

from syncline.alerting.notification import REPLAY_WINDOW_S, Notification, sign, verify

NOW = 1_800_000_000


def note() -> Notification:
    return Notification(id="n-1", kind="run.failed", severity="error", connection="shop",
                        run=7, time=dt.datetime(2026, 12, 7, 12, tzinfo=dt.UTC),
                        body={"message": "connection refused"})


def test_the_payload_is_versioned_and_names_its_idempotency_key() -> None:
    payload = json.loads(note().to_bytes())
    assert payload == {"version": 1, "id": "n-1", "kind": "run.failed", "time": "2026-12-07T12:00:00Z",
                       "severity": "error", "connection": "shop", "run": 7, "stream": None,
                       "region": None, "body": {"message": "connection refused"}}
    assert Notification.from_payload(payload) == note()


def test_a_signature_verifies_and_a_tampered_body_or_wrong_secret_does_not() -> None:
    body = note().to_bytes()
    header = sign("s3cret", body, NOW)
    assert header.startswith(f"t={NOW},v1=")
    assert verify("s3cret", header, body, NOW + 5)
    assert not verify("s3cret", header, body.replace(b"refused", b"accepted"), NOW)
    assert not verify("other", header, body, NOW)
    assert not verify("s3cret", header.replace(f"t={NOW}", f"t={NOW + 1}"), body, NOW)
    assert not verify("s3cret", "v1=abc", body, NOW)


def test_a_signature_outside_the_replay_window_is_refused() -> None:
    body = note().to_bytes()
    header = sign("s3cret", body, NOW)
    assert verify("s3cret", header, body, NOW + REPLAY_WINDOW_S)
    assert not verify("s3cret", header, body, NOW + REPLAY_WINDOW_S + 1)
    assert not verify("s3cret", header, body, NOW - REPLAY_WINDOW_S - 1)


def test_the_receiver_code_in_the_docs_verifies_what_syncline_signs() -> None:
    import re
    import time
    from pathlib import Path

    docs = (Path(__file__).resolve().parents[2] / "docs" / "alerts.md").read_text(encoding="utf-8")
    [code] = [c for c in re.findall(r"```python\n(.*?)```", docs, flags=re.DOTALL) if "def verify" in c]
    scope: dict[str, object] = {}
    exec(code, scope)  # the documented receiver, as a reader would paste it
    documented = scope["verify"]
    assert callable(documented)
    body = note().to_bytes()
    now = int(time.time())
    assert documented("s3cret", sign("s3cret", body, now), body)
    assert not documented("s3cret", sign("s3cret", body, now), body + b" ")
    assert not documented("s3cret", sign("s3cret", body, now - REPLAY_WINDOW_S - 5), body)
