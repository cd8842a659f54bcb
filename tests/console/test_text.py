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
        (timedelta(seconds=-59), "just now"),
        (timedelta(seconds=30), "in less than a minute"),
        (timedelta(seconds=-60), "1 minute ago"),
        (timedelta(minutes=-59, seconds=-59), "59 minutes ago"),
        (timedelta(hours=-1), "1 hour ago"),
        (timedelta(hours=24) - timedelta(seconds=2), "in 23 hours"),
        (timedelta(days=1), "in 1 day"),
        (timedelta(days=-45), "1 month ago"),
        (timedelta(days=400), "in 1 year"),
    ],
)
def test_relative_times_round_down_to_whole_units(offset: timedelta, words: str) -> None:
    assert text.relative(NOW + offset, NOW) == words


def test_absolute_times_are_utc() -> None:
    local = datetime(2026, 11, 30, 13, 5, 9, tzinfo=UTC).astimezone()
    assert text.absolute(local) == "2026-11-30 13:05:09 UTC"


def test_devices_and_places_in_words() -> None:
    assert text.device(Device("desktop", "macOS", "Chrome")) == "Chrome on macOS"
    assert text.device(Device("other", "Other", "curl")) == "curl"
    assert text.device(Device("other", "Other", "Other")) == "Unknown device"
    assert text.device_type(Device("mobile", "iOS", "Mobile Safari")) == "Mobile"
    assert text.location(None) == "Unknown"
    assert text.location(Location("New York", "US")) == "New York, US"
    assert text.location(Location(None, "FR")) == "FR"
    assert text.auth_method("sso") == "SSO"
    assert text.plural(1, "session") == "1 session" and text.plural(0, "session") == "0 sessions"
