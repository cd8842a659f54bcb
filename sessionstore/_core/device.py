"""User agent -> Device, with a bounded cache: parsing costs milliseconds, a hit microseconds."""

from __future__ import annotations

from functools import lru_cache

from ..model import Device, DeviceType

CACHE_SIZE = 4096


def parse_device(user_agent: str) -> Device:
    """The device behind a user agent string; most sessions repeat a few agents, so cache."""
    return _parse_cached(user_agent)


def parse_device_uncached(user_agent: str) -> Device:
    # Imported on the first parse: its regexes take ~130 ms to load, which a process that only
    # validates (devices are stored at creation) never needs.
    from user_agents import parse

    agent = parse(user_agent)
    return Device(_device_type(agent), _name(agent.os.family), _name(agent.browser.family))


_parse_cached = lru_cache(maxsize=CACHE_SIZE)(parse_device_uncached)


def _device_type(agent: object) -> DeviceType:
    # Order matters: user-agents reports some tablets as mobile too, and bots as anything.
    if getattr(agent, "is_bot", False):
        return "bot"
    if getattr(agent, "is_tablet", False):
        return "tablet"
    if getattr(agent, "is_mobile", False):
        return "mobile"
    if getattr(agent, "is_pc", False):
        return "desktop"
    return "other"


def _name(family: str) -> str:
    # user-agents names macOS "Mac OS X"; the spec's example says "macOS".
    if family == "Mac OS X":
        return "macOS"
    return family or "Other"
