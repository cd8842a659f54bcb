"""How the console puts things into words: times, devices, places, counts, input errors.

``relative`` has a twin in ``static/console.js`` (same units, same rounding to the nearest),
which refreshes the text while a page stays open.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime
from typing import Final

from ..._core.kinds import EventType, Reason, Tone
from ...model import Device, Location

__all__ = [
    "AUTH_METHODS",
    "EVENT_TYPES",
    "EVENT_TYPE_HELP",
    "IP_HELP",
    "TENANT_HELP",
    "USER_ID_HELP",
    "absolute",
    "actor",
    "count",
    "auth_method",
    "device",
    "device_type",
    "event_tone",
    "event_type",
    "location",
    "plural",
    "reason",
    "relative",
]

# Smallest first: each unit is used while the rounded count stays below the next one's size.
_UNITS: Final = (
    (60, "minute"),
    (3600, "hour"),
    (86400, "day"),
    (30 * 86400, "month"),
    (365 * 86400, "year"),
)

AUTH_METHODS: Final = {"password": "Password", "social": "Social login", "sso": "SSO"}

TENANT_HELP: Final = "Enter a tenant: lower-case letters, digits and hyphens, such as acme-corp."
USER_ID_HELP: Final = "Enter a user id: a whole number, such as 456, with no sign or spaces."
IP_HELP: Final = "Enter an IPv4 or IPv6 address, such as 203.0.113.45 or 2001:db8::1."

# Each event type in words, in the order the timeline's filter offers them.
EVENT_TYPES: Final = {kind.type_name: kind.words for kind in EventType}
EVENT_TYPE_HELP: Final = (
    "Choose an event type from the list: "
    + ", ".join(name.lower() for name in EVENT_TYPES.values())
    + ", or all types."
)


def relative(moment: datetime, now: datetime) -> str:
    """``5 minutes ago``, ``in 1 day``, ``just now``: rounded to the nearest whole unit, the
    largest one that the rounded count reaches (23 hours 59 minutes is ``1 day``)."""
    seconds = (moment - now).total_seconds()
    span = abs(seconds)
    words = ""
    for (size, unit), (next_size, _) in zip(_UNITS, (*_UNITS[1:], (math.inf, "")), strict=True):
        rounded = math.floor(span / size + 0.5)  # half up, as the script's Math.round
        if rounded * size < next_size:
            words = plural(rounded, unit)
            break
    if not words or words.startswith("no "):
        return "in less than a minute" if seconds > 0 else "just now"
    return f"in {words}" if seconds > 0 else f"{words} ago"


def absolute(moment: datetime) -> str:
    """The exact time, in UTC: ``2026-12-02 17:05:54 UTC``, the time of day and ``UTC`` held
    together (a no-break space), so a narrow column breaks it only after the date."""
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S\u00a0UTC")


def plural(count: int, noun: str) -> str:
    """``1 session``, ``2 sessions``, ``no sessions``: a count as a sentence says it."""
    if count == 0:
        return f"no {noun}s"
    return f"{count} {noun}" if count == 1 else f"{count} {noun}s"


def count(number: int, noun: str) -> str:
    """``plural`` at the start of a sentence: ``No live sessions``, ``3 live sessions``."""
    words = plural(number, noun)
    return words[0].upper() + words[1:]


def device(value: Device) -> str:
    """``Chrome on Windows``; what is known of it, or ``Unknown device``."""
    known = [part for part in (value.browser, value.os) if part and part != "Other"]
    if len(known) == 2:
        return f"{known[0]} on {known[1]}"
    return known[0] if known else "Unknown device"


def device_type(value: Device) -> str:
    """``Desktop``, ``Mobile``, ..."""
    return value.type.capitalize()


def location(value: Location | None) -> str:
    """``Berlin, DE``; what is known of it, or ``Unknown``."""
    if value is None:
        return "Unknown"
    known = [part for part in (value.city, value.country) if part]
    return ", ".join(known) if known else "Unknown"


def auth_method(value: str) -> str:
    """How the user signed in, in words."""
    return AUTH_METHODS.get(value, value)


def event_type(value: str) -> str:
    """An event type in words (kinds.EventType): ``MFA verified``."""
    return EVENT_TYPES.get(value, value)


def event_tone(value: str) -> str:
    """The CSS class of an event type's badge: ``event--good``."""
    kind = EventType.named(value)
    return f"event--{kind.tone.value if kind else Tone.INFO.value}"


def reason(value: str | None) -> str:
    """Why a revocation happened beyond its actor, in words; empty when nothing more."""
    return "" if value is None else Reason.words_for(value)


def actor(value: str) -> str:
    """Who made a change, in words: the raw actor is shown beside it."""
    if value.startswith("admin:"):
        return f"API key {value[6:]}"
    return {"user": "The user", "system": "The store"}.get(value, "A service")
