"""The Session object of the spec, and a page of them."""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from datetime import UTC, datetime
from typing import Any, Literal

__all__ = [
    "AuthMethod",
    "Device",
    "DeviceType",
    "Location",
    "Page",
    "Session",
    "from_ms",
    "isoformat",
    "to_ms",
]

DeviceType = Literal["desktop", "mobile", "tablet", "bot", "other"]
AuthMethod = Literal["password", "social", "sso"]


@dataclass(frozen=True, slots=True)
class Device:
    """What the user agent says of the device: its type, operating system and browser."""

    type: DeviceType
    os: str
    browser: str

    def to_dict(self) -> dict[str, str]:
        """The spec's JSON object."""
        return {"type": self.type, "os": self.os, "browser": self.browser}


@dataclass(frozen=True, slots=True)
class Location:
    """Where the session's IP address is, as far as the configured resolver knows."""

    city: str | None
    country: str | None

    def to_dict(self) -> dict[str, str | None]:
        """The spec's JSON object (``null`` where unknown)."""
        return {"city": self.city, "country": self.country}


@dataclass(frozen=True, slots=True)
class Session:
    """One login session. Holds no secret: the token never leaves ``create``."""

    id: str
    user_id: int
    ip_address: str
    user_agent: str
    device: Device
    location: Location | None
    auth_method: AuthMethod
    mfa_verified: bool
    created_at: datetime
    last_active_at: datetime
    expires_at: datetime
    # Not in the spec: whether the session is bound to a device key (DBSC; README:
    # Device-bound sessions). Its requests then need the bound cookie too.
    device_bound: bool = False

    def to_dict(self) -> dict[str, Any]:
        """The spec's JSON object: every field above, camelCase, UTC times ending in ``Z``
        (``deviceBound`` is sessionstore's extension of it)."""
        return {key: _json(getattr(self, name)) for name, key in _SESSION_KEYS}


def camel_case(name: str) -> str:
    """``last_active_at`` -> ``lastActiveAt``: the JSON name of a field."""
    first, *rest = name.split("_")
    return first + "".join(word.title() for word in rest)


def _json(value: Any) -> Any:
    if isinstance(value, datetime):
        return isoformat(value)
    return value.to_dict() if hasattr(value, "to_dict") else value


# The one list of a session's fields is the dataclass; its JSON follows it.
_SESSION_KEYS = tuple((field.name, camel_case(field.name)) for field in fields(Session))


@dataclass(frozen=True, slots=True)
class Page:
    """One page of a listing; pass ``next_cursor`` back to get the next one."""

    data: list[Session] = field(default_factory=list)
    next_cursor: str | None = None
    # Live sessions matching the listing's filters, on every page (None where not counted).
    total_count: int | None = None

    @property
    def has_more(self) -> bool:
        """Whether a next page exists (``next_cursor`` is set)."""
        return self.next_cursor is not None

    def to_dict(self) -> dict[str, Any]:
        """The spec's list body: ``data``, ``hasMore``, ``nextCursor`` (and ``totalCount``)."""
        body: dict[str, Any] = {
            "data": [session.to_dict() for session in self.data],
            "hasMore": self.has_more,
            "nextCursor": self.next_cursor,
        }
        if self.total_count is not None:
            body["totalCount"] = self.total_count
        return body


def isoformat(moment: datetime) -> str:
    """The spec's time format: ISO 8601 in UTC, whole seconds, ending in ``Z``."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def to_ms(moment: datetime) -> int:
    """Integer milliseconds since the epoch: how Redis keeps every time of a session."""
    return round(moment.timestamp() * 1000)


def from_ms(ms: int) -> datetime:
    """An aware UTC datetime from milliseconds since the epoch (the inverse of ``to_ms``)."""
    return datetime.fromtimestamp(ms / 1000, UTC)
