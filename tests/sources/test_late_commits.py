"""The late-commit horizon: where a read stops, and when a held-back bound becomes a warning."""

from __future__ import annotations

import datetime as dt

from syncline.sources.late_commits import Horizon, OpenTransaction, fraction_digits

NOW = dt.datetime(2026, 12, 7, 12, 0, 0, 654321, tzinfo=dt.UTC)


def test_the_bound_is_the_oldest_open_transaction_or_just_below_the_listing() -> None:
    assert Horizon.of(NOW, None).at == NOW - dt.timedelta(milliseconds=100)
    old = OpenTransaction("PostgreSQL session pid 42", NOW - dt.timedelta(minutes=5))
    assert Horizon.of(NOW, old).at == old.started
    just_begun = OpenTransaction("PostgreSQL session pid 43", NOW - dt.timedelta(milliseconds=10))
    assert Horizon.of(NOW, just_begun).at == NOW - dt.timedelta(milliseconds=100)
    assert Horizon.of(NOW, None, dt.timedelta(seconds=1)).at == NOW - dt.timedelta(seconds=1)


def test_a_bound_held_back_over_an_hour_is_a_warning_naming_the_session_and_age() -> None:
    assert Horizon.of(NOW, OpenTransaction("pid 7", NOW - dt.timedelta(minutes=59))).notice("s") is None
    notice = Horizon.of(NOW, OpenTransaction("PostgreSQL session pid 7",
                                             NOW - dt.timedelta(hours=2, minutes=30))).notice("app.orders")
    assert notice is not None
    assert notice.message.startswith("app.orders: rows stamped after 2026-12-07T09:30:00+00:00 wait")
    assert "PostgreSQL session pid 7 has had a transaction open for 2.5 h" in notice.message


def test_the_bound_is_cut_to_the_cursor_columns_precision() -> None:
    h = Horizon(at=NOW, listed_at=NOW)
    assert h.floored(6) == NOW
    assert h.floored(3) == NOW.replace(microsecond=654000)
    assert h.floored(0) == NOW.replace(microsecond=0)
    assert fraction_digits("timestamp(3) with time zone", 6) == 3
    assert fraction_digits("timestamp without time zone", 6) == 6
    assert fraction_digits("datetime", 0) == 0
    assert fraction_digits("datetime(6)", 0) == 6
