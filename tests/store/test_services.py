"""Tests of the skip-or-fail helper in tests/services.py."""

from __future__ import annotations

import socket
from typing import Any

import pytest

from services import require_service


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])  # nothing listens once the socket is closed


def test_unreachable_service_skips_by_default(monkeypatch: Any) -> None:
    monkeypatch.delenv("SYNCLINE_REQUIRE_SERVICES", raising=False)
    with pytest.raises(pytest.skip.Exception, match="Thing is not reachable"):
        require_service("Thing", closed_port(), "thing://x")


def test_unreachable_service_fails_when_required(monkeypatch: Any) -> None:
    monkeypatch.setenv("SYNCLINE_REQUIRE_SERVICES", "1")
    try:
        require_service("Thing", closed_port(), "thing://x")
    except pytest.fail.Exception as exc:
        assert "SYNCLINE_REQUIRE_SERVICES=1 requires it" in str(exc)
    except pytest.skip.Exception:
        pytest.fail("skipped although SYNCLINE_REQUIRE_SERVICES=1")
    else:
        pytest.fail("returned although the service is unreachable")


def test_reachable_service_returns_its_url() -> None:
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        port = server.getsockname()[1]
        assert require_service("Thing", port, "thing://x") == "thing://x"
