"""Where a request comes from: THE cross-site rule, and THE synchronizer-token compare.

The middleware's sign-in and sign-out helpers and every state-changing form of the admin
console ask ``cross_site`` whether a browser sent the request from another site's page, and
compare the synchronizer (CSRF) token a form carries with ``tokens_match``. One rule for all:

1. ``Sec-Fetch-Site`` first (OWASP's CSRF cheat sheet; every current browser sends it):
   ``same-origin``, and ``none`` (the user's own navigation), pass. A browser's word about
   itself is the best there is: a client that lies in it is no browser, and no page can make
   a browser lie.
2. Otherwise the ``Origin`` header, else the ``Referer``'s origin, must be the request's own
   origin (its scheme, host and port, default ports aside) or one of the trusted origins.
   ``Origin: null`` (a sandboxed frame, a ``data:`` URL, a page under
   ``Referrer-Policy: no-referrer``) never is: where it came from is exactly what it hides.
   The same host over another scheme or port is another origin; so is a sibling subdomain.
3. A request with none of the three headers was not sent by a browser (browsers send
   ``Origin`` with every POST), so no page could have made it: it passes, as bearer clients
   and scripts do. What guards those is the credential, not the origin.
"""

from __future__ import annotations

import hmac
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Final
from urllib.parse import urlsplit

from ..errors import InvalidArgument
from .credentials import scope_header

__all__ = ["Origin", "cross_site", "tokens_match", "trusted_origins"]

_DEFAULT_PORTS: Final = {"http": 80, "https": 443}
# A WebSocket handshake is an http(s) request: its page's origin has the http(s) scheme.
_HTTP_SCHEMES: Final = {"ws": "http", "wss": "https"}


@dataclass(frozen=True, slots=True)
class Origin:
    """What a request says about where it comes from, and where it goes (OWASP CSRF cheat
    sheet: Fetch Metadata, then the standard headers). Every field as received, or None."""

    scheme: str
    host: str | None
    sec_fetch_site: str | None
    origin: str | None
    referer: str | None

    @classmethod
    def from_scope(cls, scope: Mapping[str, Any]) -> Origin:
        """The request of an ASGI scope (a Starlette Request is one too). A header given twice
        arrives joined, and no origin is two: it matches nothing."""
        scheme = str(scope.get("scheme", "http"))
        return cls(
            scheme=_HTTP_SCHEMES.get(scheme, scheme),
            host=scope_header(scope, b"host", ","),
            sec_fetch_site=scope_header(scope, b"sec-fetch-site", ","),
            origin=scope_header(scope, b"origin", ","),
            referer=scope_header(scope, b"referer", ","),
        )

    @classmethod
    def from_environ(cls, environ: Mapping[str, Any]) -> Origin:
        """The request of a WSGI environ; without a Host header, the server's name and port."""
        host = environ.get("HTTP_HOST")
        if host is None and environ.get("SERVER_NAME"):
            host = f"{environ['SERVER_NAME']}:{environ.get('SERVER_PORT', '')}".rstrip(":")
        return cls(
            scheme=str(environ.get("wsgi.url_scheme", "http")),
            host=host,
            sec_fetch_site=environ.get("HTTP_SEC_FETCH_SITE"),
            origin=environ.get("HTTP_ORIGIN"),
            referer=environ.get("HTTP_REFERER"),
        )


def cross_site(request: Origin, trusted: Collection[str] = ()) -> str | None:
    """Why ``request`` may have been sent by another site's page, or None when it was not.

    The rule is the module's (Fetch Metadata, then Origin, then Referer; ``Origin: null``
    never passes). ``trusted``: origins besides the request's own, as ``trusted_origins``
    normalised them. A request without a Host matches only those.
    """
    site = (request.sec_fetch_site or "").strip().lower()
    if site in ("same-origin", "none"):
        return None
    source = request.origin.strip() if request.origin is not None else None
    if source is None and request.referer is not None:
        source = _origin_of(request.referer) or "unparsable"
    if source is None:
        return f"Sec-Fetch-Site is {site[:16]} and no Origin is given" if site else None
    own = _origin_of(f"{request.scheme}://{request.host}") if request.host else None
    allowed = {*trusted} if own is None else {own, *trusted}
    if _origin_of(source) in allowed:  # "null", or what no URL parser reads, is None
        return None
    return "the request comes from another origin"


def trusted_origins(origins: Iterable[str]) -> tuple[str, ...]:
    """Origins to trust (``"https://idp.example.com"``), normalised as ``cross_site`` compares
    them; InvalidArgument for one string instead of a sequence, or for anything that is not an
    http(s) origin (a path, a query, user info)."""
    if isinstance(origins, str):
        raise InvalidArgument("trusted_origins must be a sequence of origins, not one string")
    normalised = []
    for origin in origins:
        parsed = _origin_of(origin)
        parts = urlsplit(origin)
        if parsed is None or parts.path not in ("", "/") or parts.query or parts.username:
            raise InvalidArgument(f"trusted_origins: not an http(s) origin: {origin[:64]!r}")
        normalised.append(parsed)
    return tuple(normalised)


def tokens_match(presented: str | None, expected: str | None) -> bool:
    """Whether a form's synchronizer token is the expected one, compared in constant time (no
    timing tells how much of a guess was right). Nothing presented, or nothing to expect (no
    session), never matches."""
    if not presented or not expected:
        return False
    return hmac.compare_digest(
        expected.encode("utf-8", "replace"), presented.encode("utf-8", "replace")
    )


def _origin_of(url: str) -> str | None:
    """``scheme://host[:port]`` of an absolute http(s) URL, lowercased, default port dropped."""
    try:
        parts = urlsplit(url.strip())
        port = parts.port
    except ValueError:
        return None
    scheme, host = parts.scheme.lower(), (parts.hostname or "")
    if scheme not in _DEFAULT_PORTS or not host:
        return None
    host = f"[{host}]" if ":" in host else host
    if port in (None, _DEFAULT_PORTS[scheme]):
        return f"{scheme}://{host}"
    return f"{scheme}://{host}:{port}"
