"""Devices parsed from user agents, cached."""

from __future__ import annotations

import pytest

from sessionstore._core.device import parse_device, parse_device_uncached

AGENTS = {
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/120.0.0.0 Safari/537.36": ("desktop", "macOS", "Chrome"),
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like "
    "Gecko) Version/17.1 Mobile/15E148 Safari/604.1": ("mobile", "iOS", "Mobile Safari"),
    "Mozilla/5.0 (Linux; Android 13; SM-X700) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/120.0.0.0 Safari/537.36": ("tablet", "Android", "Chrome"),
    "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)": ("bot", None, None),
    "curl/8.4.0": ("other", None, "curl"),
}


@pytest.mark.parametrize(("agent", "expected"), AGENTS.items())
def test_device_type_os_and_browser(
    agent: str, expected: tuple[str, str | None, str | None]
) -> None:
    device = parse_device(agent)
    kind, os, browser = expected
    assert device.type == kind
    assert os is None or device.os == os
    assert browser is None or device.browser == browser


def test_cached_and_uncached_agree() -> None:
    for agent in AGENTS:
        assert parse_device(agent) == parse_device_uncached(agent)
    assert parse_device("") == parse_device_uncached("")
