"""Where a request's token is read, for the admin API, the console and the middleware alike.

A token comes from an ``Authorization: Bearer`` header or from a cookie. A credential given
twice in one place (two Authorization fields, one field holding two credentials, or the same
cookie twice) is AmbiguousCredential wherever it is read: which one the client meant cannot be
told, so neither is used. Each face answers it in its own way (the admin API and the middleware
with 400 ``Bearer error="invalid_request"``, the console as a console session it does not
know), but none of them trusts either copy.

Repeated header fields arrive joined from WSGI servers and proxies, and one by one from ASGI
servers: the rules here read them joined (``joined``, ``scope_header``), so both kinds of
server give the same answer.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any, Final

from ..errors import InvalidArgument

__all__ = ["AmbiguousCredential", "bearer_token", "cookie_token", "joined", "scope_header"]


class AmbiguousCredential(InvalidArgument):
    """A request presents more than one credential in one place: two ``Authorization`` headers
    (or one holding two credentials), or the session cookie twice. Which one the client meant
    cannot be told, so the request is refused: 400 with ``WWW-Authenticate`` ``challenge``, the
    same in the admin API and both middlewares."""

    status: Final = 400
    challenge: Final = 'Bearer error="invalid_request"'


# A second credential after a comma: where servers join repeated headers, and proxies too.
_BEARER_AFTER_COMMA = re.compile(r",\s*bearer(\s|$)", re.IGNORECASE)
# A cookie value never holds ";" or "," (RFC 6265 4.1.1): both end a pair.
_COOKIE_PAIRS = re.compile(r"[;,]")


def joined(values: Iterable[str], separator: str) -> str | None:
    """Repeated header fields as one value, the way WSGI servers and proxies join them (RFC 9110
    5.3; cookies with "; ", RFC 9113 8.2.3), so the rules below see the same thing from ASGI
    servers, which pass each field on, and from WSGI ones, which join them. None for none."""
    values = list(values)
    return separator.join(values) if values else None


def scope_header(scope: Mapping[str, Any], name: bytes, separator: str) -> str | None:
    """Every field ``name`` (lowercase, as ASGI gives names) of an ASGI scope, ``joined``."""
    return joined(
        (value.decode("latin-1") for key, value in scope["headers"] if key == name), separator
    )


def bearer_token(header: str | None) -> str | None:
    """The credentials of an ``Authorization: Bearer <credentials>`` header (scheme in any case);
    None for no header or another scheme.

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

    ``header`` is every Cookie field of the request, joined (``joined``); some servers join them
    with a comma, and both separators are read. An emptied cookie (``name=``) is no credential.
    The cookie twice, empty copies aside (one tossed in by a sibling domain, say), is
    AmbiguousCredential: neither "the first" nor "the last" is safe to trust.
    """
    if not header:
        return None
    found = []
    for pair in _COOKIE_PAIRS.split(header):
        key, sep, value = pair.partition("=")
        value = value.strip().strip('"')
        if sep and value and key.strip() == name:
            found.append(value)
    if len(found) > 1:
        raise AmbiguousCredential(f"the request has the cookie {name} more than once")
    return found[0] if found else None
