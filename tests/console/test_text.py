"""How the console words times, devices and places (the script in static/ keeps the same rules)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from sessionstore.admin.console import text
from sessionstore.model import Device, Location

NOW = datetime(2026, 11, 30, 12, 0, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("offset", "words"),
    [
        (timedelta(0), "just now"),
        (timedelta(seconds=-29), "just now"),
        (timedelta(seconds=29), "in less than a minute"),
        (timedelta(seconds=-31), "1 minute ago"),
        (timedelta(minutes=-40), "40 minutes ago"),
        (timedelta(minutes=-59, seconds=-40), "1 hour ago"),  # 60 minutes: the next unit
        (timedelta(hours=-1, minutes=-31), "2 hours ago"),
        # A fresh 24-hour session: "in 1 day", never "in 23 hours".
        (timedelta(hours=24) - timedelta(seconds=2), "in 1 day"),
        (timedelta(hours=22, minutes=20), "in 22 hours"),
        (timedelta(days=1), "in 1 day"),
        (timedelta(days=-45), "2 months ago"),
        (timedelta(days=400), "in 1 year"),
    ],
)
def test_relative_times_round_to_the_nearest_unit(offset: timedelta, words: str) -> None:
    assert text.relative(NOW + offset, NOW) == words


def test_counts_read_as_english() -> None:
    assert text.plural(1, "session") == "1 session"
    assert text.plural(2, "session") == "2 sessions"
    assert text.plural(0, "session") == "no sessions"
    assert text.count(0, "live session") == "No live sessions"
    assert text.count(3, "event") == "3 events"


def test_errors_read_as_sentences() -> None:
    """What the console says next to a field names what to type, never an internal range."""
    for words in (text.USER_ID_HELP, text.IP_HELP, text.TENANT_HELP, text.EVENT_TYPE_HELP):
        assert words[0].isupper() and words.endswith(".")
        assert "922337" not in words and ".." not in words


def test_absolute_times_are_utc() -> None:
    local = datetime(2026, 11, 30, 13, 5, 9, tzinfo=UTC).astimezone()
    assert text.absolute(local) == "2026-11-30 13:05:09\u00a0UTC"


def test_devices_and_places_in_words() -> None:
    assert text.device(Device("desktop", "macOS", "Chrome")) == "Chrome on macOS"
    assert text.device(Device("other", "Other", "curl")) == "curl"
    assert text.device(Device("other", "Other", "Other")) == "Unknown device"
    assert text.device_type(Device("mobile", "iOS", "Mobile Safari")) == "Mobile"
    assert text.location(None) == "Unknown"
    assert text.location(Location("New York", "US")) == "New York, US"
    assert text.location(Location(None, "FR")) == "FR"
    assert text.auth_method("sso") == "SSO"
