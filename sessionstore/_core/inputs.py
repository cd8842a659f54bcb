"""Validation of caller input: the one place that decides what a tenant, user id or IP may be."""

from __future__ import annotations

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
_USER_ID_TEXT = re.compile(r"0|[1-9][0-9]{0,18}")


def tenant(value: object) -> str:
    if not isinstance(value, str) or not _TENANT.fullmatch(value):
        raise InvalidTenant("tenant must match ^[a-z0-9][a-z0-9-]{0,62}$")
    return value


def user_id(value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidUserId("user id must be an integer")
    if not 0 <= value <= MAX_USER_ID:
        raise InvalidUserId(f"user id must be in 0..{MAX_USER_ID}")
    return value


def user_id_text(value: str) -> int:
    """Parse a user id from a URL: canonical decimal only (no sign, leading zero or exponent)."""
    if not _USER_ID_TEXT.fullmatch(value) or int(value) > MAX_USER_ID:
        raise InvalidUserId(f"user id must be a decimal integer in 0..{MAX_USER_ID}")
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


class AmbiguousCredential(InvalidArgument):
    """A request presents more than one credential in one place: two ``Authorization`` headers
    (or one holding two credentials), or the session cookie twice. Which one the client meant
    cannot be told, so the request is refused: 400 with ``WWW-Authenticate`` ``CHALLENGE``, the
    same in the admin API and both middlewares."""

    status: Final = 400
    challenge: Final = 'Bearer error="invalid_request"'


# A second credential after a comma: where servers join repeated headers, and proxies too.
_BEARER_AFTER_COMMA = re.compile(r",\s*bearer(\s|$)", re.IGNORECASE)


def joined(values: list[str], separator: str) -> str | None:
    """Repeated header fields as one value, the way WSGI servers and proxies join them (RFC 9110
    5.3; cookies with "; ", RFC 9113 8.2.3), so the rules below see the same thing from ASGI
    servers, which pass each field on, and from WSGI ones, which join them."""
    return separator.join(values) if values else None


def bearer_token(header: str | None) -> str | None:
    """The credentials of an ``Authorization: Bearer <credentials>`` header (scheme in any case),
    for the admin API and the middlewares alike; None for no header or another scheme.

    ``header`` is every Authorization field of the request, joined (``joined``): a token never
    holds a comma, so a comma means a second credential, and that is AmbiguousCredential.
    """
    if not header:
        return None
    scheme, _, credentials = header.strip().partition(" ")
    if scheme.lower() != "bearer":
        if _BEARER_AFTER_COMMA.search(header):
            raise AmbiguousCredential("the request has more than one Authorization credential")
        return None
    credentials = credentials.strip()
    if "," in credentials:
        raise AmbiguousCredential("the request has more than one Authorization credential")
    return credentials or None


def cookie_token(header: str | None, name: str) -> str | None:
    """The value of the cookie ``name`` in a Cookie header; None when absent or empty.

    A cookie value never holds ";" or "," (RFC 6265 4.1.1), so both separate pairs: some servers
    join repeated Cookie fields with a comma. The cookie twice (one tossed in by a sibling
    domain, say) is AmbiguousCredential: neither "the first" nor "the last" is safe to trust.
    """
    if not header:
        return None
    found = []
    for pair in re.split(r"[;,]", header):
        key, sep, value = pair.partition("=")
        value = value.strip().strip('"')
        if sep and value and key.strip() == name:
            found.append(value)
    if len(found) > 1:
        raise AmbiguousCredential(f"the request has the cookie {name} more than once")
    return found[0] if found else None


def user_agent(value: object) -> str:
    if not isinstance(value, str):
        raise InvalidArgument("user agent must be a string")
    # Bounded so one request cannot grow a session hash without limit.
    return value.encode()[:MAX_USER_AGENT_BYTES].decode(errors="ignore")
