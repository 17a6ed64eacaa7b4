"""Finding a failed tap's own error in what it printed last."""

from __future__ import annotations

from syncline.sources.singer.tap_errors import own_error

LOGGED = [
    "INFO Starting discovery",
    "2026-01-01 10:00:00,000 | CRITICAL | tap-mysql | (1049, \"Unknown database 'shop'\")",
    "INFO done",
]
TRACEBACK_TAIL = [  # a traceback whose first lines the tail no longer holds
    '  File "/taps/x/client.py", line 10, in get',
    "    raise HTTPError(url)",
    "requests.exceptions.HTTPError: 401 Client Error: Unauthorized for url: https://api.example.com/v1",
]


def test_an_error_level_log_line_and_the_setting_it_quotes() -> None:
    error = own_error(LOGGED, {"database": "shop", "host": "db", "port": 3306})
    assert error is not None and error.text == "(1049, \"Unknown database 'shop'\")"
    assert error.setting == ("database", "shop") and error.at is None


def test_the_exception_ending_a_cut_traceback_and_no_secret_named() -> None:
    error = own_error(TRACEBACK_TAIL, {"api_key": "https", "base_url": "https://api.example.com/v1"})
    assert error is not None and error.text.startswith("requests.exceptions.HTTPError: 401 Client Error")
    assert error.at == "/taps/x/client.py, line 10, in get"
    assert error.setting == ("base_url", "https://api.example.com/v1")  # never api_key


def test_nothing_recognisable_is_none() -> None:
    assert own_error(["starting", "stopping"], {}) is None
