"""A notification as receivers see it: the versioned JSON payload and its signature.

A webhook request carries::

    Syncline-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256 of "<t>.<raw body>">
    Syncline-Idempotency-Key: <the payload's id>

`verify` is what a receiver runs (docs/alerts.md shows it standalone): the signature must
match and `t` must lie within the replay window, so a captured request cannot be replayed
later. Pure: no network, no store.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import json
from dataclasses import dataclass, field
from typing import Any

VERSION = 1
#: How far a signature's time may be from the receiver's clock (seconds), either way.
REPLAY_WINDOW_S = 300
SIGNATURE_HEADER = "Syncline-Signature"
IDEMPOTENCY_HEADER = "Syncline-Idempotency-Key"


@dataclass(frozen=True)
class Notification:
    """What is told: `id` is its idempotency key (the same notification, re-sent after a
    restart, has the same id, so receivers can drop the second copy)."""

    id: str
    kind: str
    time: dt.datetime
    severity: str = "info"
    connection: str | None = None
    run: int | None = None
    stream: str | None = None
    region: str | None = None
    body: dict[str, Any] = field(default_factory=dict)
    #: a page by email to these people instead of the channel's `to:` (never sent to receivers)
    recipients: tuple[str, ...] = ()

    def payload(self) -> dict[str, Any]:
        """The versioned payload receivers get (with `recipients` only as the outbox keeps it)."""
        out = {"version": VERSION, "id": self.id, "kind": self.kind,
               "time": self.time.astimezone(dt.UTC).isoformat().replace("+00:00", "Z"),
               "severity": self.severity, "connection": self.connection, "run": self.run,
               "stream": self.stream, "region": self.region, "body": self.body}
        if self.recipients:
            out["recipients"] = list(self.recipients)
        return out

    def to_bytes(self) -> bytes:
        return encode({k: v for k, v in self.payload().items() if k != "recipients"})

    @classmethod
    def from_payload(cls, data: dict[str, Any]) -> Notification:
        return cls(id=data["id"], kind=data["kind"],
                   time=dt.datetime.fromisoformat(data["time"].replace("Z", "+00:00")),
                   severity=data.get("severity") or "info", connection=data.get("connection"),
                   run=data.get("run"), stream=data.get("stream"), region=data.get("region"),
                   body=data.get("body") or {}, recipients=tuple(data.get("recipients") or ()))


def encode(payload: dict[str, Any]) -> bytes:
    return json.dumps(payload, sort_keys=True, separators=(",", ":"), default=str).encode()


def sign(secret: str, body: bytes, at: int) -> str:
    """The `Syncline-Signature` header value of `body` sent at unix time `at`."""
    mac = hmac.new(secret.encode(), f"{at}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={at},v1={mac}"


def verify(secret: str, header: str, body: bytes, now: int,
           window_s: int = REPLAY_WINDOW_S) -> bool:
    """True when `header` signs `body` with `secret` within `window_s` of `now`."""
    parts = dict(p.split("=", 1) for p in header.split(",") if "=" in p)
    try:
        at = int(parts["t"])
    except (KeyError, ValueError):
        return False
    if abs(now - at) > window_s:
        return False
    expected = sign(secret, body, at).split("v1=", 1)[1]
    return any(hmac.compare_digest(expected, v) for k, v in
               (p.split("=", 1) for p in header.split(",") if "=" in p) if k == "v1")
