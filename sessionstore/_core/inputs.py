"""Validation of caller input: the one place that decides what a tenant, user id or IP may be."""

from __future__ import annotations

import functools
import ipaddress
import re
from typing import Final

from ..errors import (
    InvalidArgument,
    InvalidAuthMethod,
    InvalidIPAddress,
    InvalidLimit,
    InvalidSessionId,
    InvalidTenant,
    InvalidUserId,
)
from .tokens import SESSION_ID

AUTH_METHODS: Final = ("password", "social", "sso")
MAX_USER_ID: Final = 2**63 - 1
MAX_LIMIT: Final = 1000
DEFAULT_LIMIT: Final = 100
MAX_USER_AGENT_BYTES: Final = 1024

# Slugs can never widen a key pattern or move a hash tag: no braces, colons or glob characters.
_TENANT = re.compile(r"[a-z0-9][a-z0-9-]{0,62}")
_TENANT_MAX = 63  # longer is refused before the check's memory, which holds only what is short
_USER_ID_TEXT = re.compile(r"0|[1-9][0-9]{0,18}")


def tenant(value: object) -> str:
    if not isinstance(value, str) or len(value) > _TENANT_MAX or not _valid_tenant(value):
        raise InvalidTenant("tenant must match ^[a-z0-9][a-z0-9-]{0,62}$")
    return value


@functools.lru_cache(maxsize=1024)
def _valid_tenant(value: str) -> bool:
    # Every call of the hot path checks its tenant, and a service has few: remember them.
    return _TENANT.fullmatch(value) is not None


def user_id(value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidUserId("user id must be an integer")
    if not 0 <= value <= MAX_USER_ID:
        raise InvalidUserId("user id must be a whole number from 0 up to 2^63 - 1")
    return value


def user_id_text(value: str) -> int:
    """Parse a user id from a URL: canonical decimal only (no sign, leading zero or exponent)."""
    if not _USER_ID_TEXT.fullmatch(value) or int(value) > MAX_USER_ID:
        raise InvalidUserId(
            "user id must be written as a whole number from 0 up to 2^63 - 1, in plain digits"
        )
    return int(value)


def ip_address(value: object) -> str:
    """Normalise an IP address; IPv4-mapped IPv6 becomes IPv4, scope ids are refused."""
    if not isinstance(value, str) or "%" in value or "/" in value:
        raise InvalidIPAddress("ip address must be a plain IPv4 or IPv6 address")
    try:
        address = ipaddress.ip_address(value)
    except ValueError:
        raise InvalidIPAddress(f"not an IP address: {value[:64]!r}") from None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return str(address.ipv4_mapped)
    return str(address)


def auth_method(value: object) -> str:
    if value not in AUTH_METHODS:
        raise InvalidAuthMethod(f"auth method must be one of {', '.join(AUTH_METHODS)}")
    return str(value)


def session_id(value: object) -> str:
    if not isinstance(value, str) or not SESSION_ID.fullmatch(value):
        raise InvalidSessionId("not a session id")
    return value


def limit(value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_LIMIT:
        raise InvalidLimit(f"limit must be an integer in 1..{MAX_LIMIT}")
    return value


def user_agent(value: object) -> str:
    if not isinstance(value, str):
        raise InvalidArgument("user agent must be a string")
    # Bounded so one request cannot grow a session hash without limit.
    return value.encode()[:MAX_USER_AGENT_BYTES].decode(errors="ignore")
