"""What the session middlewares decide, with no I/O and no framework: asgi.py and wsgi.py share it.

A request's token comes from the session cookie or an ``Authorization: Bearer`` header, in the
order the policy gives. No token means an anonymous request and no Redis call. A token the store
rejects gets a 401 where the policy requires a session, and passes on as anonymous where it does
not. A store that cannot answer gets a 503: never anonymous, never authenticated, and the cookie
is kept, since the session is probably fine and only Redis is away.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any, Generic, Literal, TypedDict, TypeVar

from . import inputs
from .admin.problems import CONTENT_TYPE, problem_bytes
from .errors import InvalidArgument, InvalidIPAddress
from .model import Session

TokenSource = Literal["cookie", "header"]
SameSite = Literal["lax", "strict"]
TOKEN_SOURCES: tuple[TokenSource, ...] = ("cookie", "header")

# Where the middlewares publish what they found; the helpers read it back from there.
SCOPE_SESSION = "session"
ENVIRON_SESSION = "sessionstore.session"
GATE = "sessionstore.gate"

# The address recorded when the connection has none (a Unix socket, say).
UNKNOWN_IP = "0.0.0.0"  # noqa: S104 (recorded, never bound)

# RFC 6265 cookie-name: an HTTP token.
_COOKIE_NAME = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
_EPOCH = "Thu, 01 Jan 1970 00:00:00 GMT"


class PolicyOptions(TypedDict, total=False):
    """The keyword options of both middlewares; each is described on Policy."""

    cookie_name: str
    token_sources: Sequence[TokenSource]
    required: bool
    exclude_paths: Sequence[str]
    secure_cookie: bool
    same_site: SameSite
    trusted_proxies: Sequence[str]
    proxy_header: str
    retry_after: int


@dataclass(frozen=True, slots=True)
class Credential:
    """A token as presented, and where it came from. The token never shows in a repr."""

    token: str = field(repr=False)
    source: TokenSource


@dataclass(frozen=True, slots=True)
class Reply:
    """A response the middleware gives itself instead of calling the app."""

    status: int
    headers: tuple[tuple[str, str], ...]
    body: bytes


@dataclass(frozen=True, slots=True)
class Policy:
    """How one app treats session tokens.

    tenant           the tenant whose sessions this app accepts
    cookie_name      the session cookie (``__Host-session`` is safer where the app owns the host)
    token_sources    where to look for the token, first found wins: "cookie", "header" (Bearer)
    required         True: refuse requests without a live session (401); False: pass them on
                     as anonymous
    exclude_paths    paths left alone: no token is read and no Redis call made (health checks,
                     login); "/static" also covers "/static/app.css"
    secure_cookie    mark the cookie Secure; turn off only to serve plain http on loopback
    same_site        "lax" (default) or "strict"
    trusted_proxies  addresses or networks of reverse proxies whose ``proxy_header`` tells the
                     client's address; with none, the connection's peer is the client
    proxy_header     the header those proxies append the client address to
    retry_after      seconds a 503 asks the client to wait
    """

    tenant: str
    cookie_name: str = "session"
    token_sources: Sequence[TokenSource] = TOKEN_SOURCES
    required: bool = False
    exclude_paths: Sequence[str] = ()
    secure_cookie: bool = True
    same_site: SameSite = "lax"
    trusted_proxies: Sequence[str] = ()
    proxy_header: str = "x-forwarded-for"
    retry_after: int = 1
    _proxy_networks: tuple[Any, ...] = field(init=False, repr=False, default=())

    def __post_init__(self) -> None:
        inputs.tenant(self.tenant)
        if not _COOKIE_NAME.fullmatch(self.cookie_name):
            raise InvalidArgument("cookie_name must be an HTTP token")
        if self.cookie_name.startswith("__Host-") and not self.secure_cookie:
            raise InvalidArgument("a __Host- cookie must be Secure: browsers drop it otherwise")
        sources = tuple(self.token_sources)
        if not sources or len(set(sources)) != len(sources) or not set(sources) <= {*TOKEN_SOURCES}:
            raise InvalidArgument('token_sources must be distinct values of "cookie", "header"')
        if self.same_site not in ("lax", "strict"):
            raise InvalidArgument('same_site must be "lax" or "strict"')
        excluded = tuple(self.exclude_paths)
        if any(not path.startswith("/") for path in excluded):
            raise InvalidArgument("exclude_paths must start with /")
        if not 0 < self.retry_after <= 3600:
            raise InvalidArgument("retry_after must be in 1..3600 seconds")
        # Frozen, yet normalised once here so no request pays for it.
        object.__setattr__(self, "token_sources", sources)
        object.__setattr__(self, "exclude_paths", excluded)
        object.__setattr__(self, "proxy_header", self.proxy_header.lower())
        object.__setattr__(self, "_proxy_networks", _networks(self.trusted_proxies))

    # -- reading a request ------------------------------------------------------------------

    def exempt(self, path: str) -> bool:
        return any(path == p or path.startswith(p.rstrip("/") + "/") for p in self.exclude_paths)

    def find_token(self, cookie_header: str | None, authorization: str | None) -> Credential | None:
        for source in self.token_sources:
            if source == "cookie":
                token = cookie_value(cookie_header, self.cookie_name)
            else:
                token = inputs.bearer_token(authorization)
            if token:
                return Credential(token, source)
        return None

    def client_ip(self, peer: str | None, forwarded_for: str | None) -> str:
        """The client's address: the peer's, or what trusted proxies say it is.

        Proxies append to the header, so it is read from the right: each hop a trusted proxy
        added is skipped, and the first address no trusted proxy vouches for is the client.
        """
        client = _address(peer)
        if client is None:
            return UNKNOWN_IP
        hops = [] if forwarded_for is None else forwarded_for.split(",")
        while self._trusts(client) and hops:
            hop = _address(hops.pop().strip())
            if hop is None:
                break  # garbage from beyond the proxies: keep the last address we trust
            client = hop
        return client

    def _trusts(self, address: str) -> bool:
        ip = ipaddress.ip_address(address)
        return any(ip in network for network in self._proxy_networks)

    # -- deciding -----------------------------------------------------------------------------

    def refusal(self, credential: Credential | None, session: Session | None) -> Reply | None:
        """The 401 that ends a request the policy will not let through, or None to pass it on."""
        if session is not None or not self.required:
            return None
        if credential is None:
            # RFC 6750 3.1: no error code when the request carried no credentials at all.
            challenge = (("www-authenticate", "Bearer"),)
            return _problem(401, "This resource needs a signed-in session.", challenge)
        rejected: tuple[tuple[str, str], ...] = (
            ("www-authenticate", 'Bearer error="invalid_token"'),
        )
        if credential.source == "cookie":
            rejected += (("set-cookie", self.clearing_cookie()),)
        return _problem(401, "The session is invalid, expired or revoked.", rejected)

    def unavailable(self) -> Reply:
        """The 503 for a store that did not answer: the cookie stays, the client retries."""
        retry = (("retry-after", str(self.retry_after)),)
        return _problem(503, "The session store is unavailable; try again shortly.", retry)

    def clears_cookie(self, credential: Credential | None, session: Session | None) -> bool:
        """Whether to drop a cookie the store rejected, so it costs no Redis call again."""
        return session is None and credential is not None and credential.source == "cookie"

    # -- cookies ------------------------------------------------------------------------------

    def session_cookie(self, token: str, max_age: int) -> str:
        """The Set-Cookie value that hands a new session's token to the browser."""
        return f"{self.cookie_name}={token}; Max-Age={max_age}; {self._attributes()}"

    def clearing_cookie(self) -> str:
        return f"{self.cookie_name}=; Max-Age=0; Expires={_EPOCH}; {self._attributes()}"

    def _attributes(self) -> str:
        secure = "; Secure" if self.secure_cookie else ""
        return f"Path=/; HttpOnly{secure}; SameSite={self.same_site.capitalize()}"


StoreT = TypeVar("StoreT")


@dataclass(frozen=True, slots=True)
class Gate(Generic[StoreT]):
    """The store and policy of one middleware, published with each request for the helpers."""

    store: StoreT
    policy: Policy

    def __repr__(self) -> str:
        return f"Gate(store={self.store!r}, tenant={self.policy.tenant!r})"


def cookie_value(header: str | None, name: str) -> str | None:
    """The named cookie's value from a Cookie header; the first one wins, as browsers sort."""
    if not header:
        return None
    for pair in header.split(";"):
        key, sep, value = pair.partition("=")
        if sep and key.strip() == name:
            return value.strip().strip('"') or None
    return None


def sets_cookie(set_cookie_values: Iterable[str], name: str) -> bool:
    """Whether a response already sets (or clears) the named cookie."""
    return any(value.lstrip().startswith(f"{name}=") for value in set_cookie_values)


def cookie_max_age(lifetime: timedelta) -> int:
    """Seconds a new session's cookie lives: to the session's absolute end.

    That is its expiresAt, unless an idle timeout is set: then expiresAt slides forward with
    activity, so the cookie must outlive it, and Redis alone enforces the idle timeout.
    """
    return int(lifetime.total_seconds())


def mark_current(sessions: Iterable[Session], current: Session) -> list[dict[str, Any]]:
    """The user's sessions as the spec's objects, with ``current`` true on this request's only."""
    return [{**session.to_dict(), "current": session.id == current.id} for session in sessions]


def _problem(status: int, detail: str, headers: tuple[tuple[str, str], ...]) -> Reply:
    body = problem_bytes(status, detail)
    common = (
        ("content-type", CONTENT_TYPE),
        ("content-length", str(len(body))),
        ("cache-control", "no-store"),
    )
    return Reply(status, common + headers, body)


def _address(value: str | None) -> str | None:
    if not value:
        return None
    try:
        return inputs.ip_address(value)
    except InvalidIPAddress:
        return None


def _networks(proxies: Iterable[str]) -> tuple[Any, ...]:
    if isinstance(proxies, str):
        raise InvalidArgument("trusted_proxies must be a sequence of addresses, not one string")
    try:
        return tuple(ipaddress.ip_network(proxy, strict=False) for proxy in proxies)
    except ValueError as error:
        raise InvalidArgument(f"trusted_proxies: {error}") from None
