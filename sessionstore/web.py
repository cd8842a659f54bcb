"""What the session middlewares decide, with no I/O and no framework: asgi.py and wsgi.py share it.

A request's tokens come from the places the policy names, in its order: the ``Authorization:
Bearer`` header, then the session cookie, by default. A credential given twice in one place is
refused (400), before anything is validated. No token means an anonymous request and no Redis
call. The first token the store accepts is the request's session; a token the store rejects
gets a 401 where the policy requires a session, and passes on as anonymous where it does not. A
store that cannot answer gets a 503: never anonymous, never authenticated, and the cookie is
kept, since the session is probably fine and only Redis is away.

The helpers that change who is signed in (login, logout, sign out a device) first check that
the request comes from the app's own origin (``Policy.cross_site``); the response of any request
that presented a token says so to caches (``Policy.finish``).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import ipaddress
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any, Generic, Literal, NamedTuple, TypedDict, TypeVar
from urllib.parse import urlsplit

from ._core import inputs
from ._core.inputs import AmbiguousCredential
from .admin.problems import CONTENT_TYPE, problem_bytes
from .errors import InvalidArgument, InvalidIPAddress, SessionStoreError, StoreUnavailable
from .model import Session

TokenSource = Literal["cookie", "header"]
SameSite = Literal["lax", "strict"]
TOKEN_SOURCES: tuple[TokenSource, ...] = ("header", "cookie")

# Where the middlewares publish what they found; the helpers read it back from there. Names of
# our own: Starlette's cookie sessions own scope["session"], Flask's own the cookie "session".
SCOPE_SESSION = "sessionstore.session"
ENVIRON_SESSION = "sessionstore.session"
GATE = "sessionstore.gate"
EXCHANGE = "sessionstore.exchange"

# The default cookie: __Host- makes browsers refuse it from a sibling domain or over plain
# http, which only a Secure cookie may claim.
COOKIE_NAME = "sessionstore"
SECURE_COOKIE_NAME = "__Host-sessionstore"

# The address recorded when the connection has none (a Unix socket, say).
# Who ends a session through the login/logout/devices helpers, as its events record it.
USER = "user"
UNKNOWN_IP = "0.0.0.0"  # noqa: S104 (recorded, never bound)

# RFC 6265 cookie-name: an HTTP token.
_COOKIE_NAME = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
_EPOCH = "Thu, 01 Jan 1970 00:00:00 GMT"
_DEFAULT_PORTS = {"http": 80, "https": 443}
_SYNCHRONIZER = b"sessionstore synchronizer token v1"


class PolicyOptions(TypedDict, total=False):
    """The keyword options of both middlewares; each is described on Policy."""

    cookie_name: str
    token_sources: Sequence[TokenSource]
    required: bool
    exclude_paths: Sequence[str]
    secure_cookie: bool
    same_site: SameSite
    trusted_origins: Sequence[str]
    trusted_proxies: Sequence[str]
    proxy_header: str
    retry_after: int


@dataclass(frozen=True, slots=True)
class Credential:
    """A token as presented, and where it came from. The token never shows in a repr."""

    token: str = field(repr=False)
    source: TokenSource


class Reply(NamedTuple):
    """A response the middleware gives itself instead of calling the app; it unpacks as
    ``status, headers, body`` (README: errors from inside the app)."""

    status: int
    headers: tuple[tuple[str, str], ...]
    body: bytes


class Refusal(SessionStoreError):
    """A request the session layer refuses from inside the app (a helper, a dependency).

    The middleware answers it with ``reply`` when the error reaches it; frameworks that turn
    view errors into 500 pages first (Flask, Django) can answer it themselves, see
    ``error_reply`` in wsgi.py.
    """

    def __init__(self, reply: Reply, detail: str) -> None:
        super().__init__(detail)
        self.reply = reply


class CrossSiteRequest(Refusal):
    """403: a sign-in, sign-out or synchronizer-token check for a request from another site."""


class SessionRequired(Refusal):
    """401: a route that needs a signed-in session got a request without one."""


@dataclass(frozen=True, slots=True)
class Origin:
    """What a request says about where it comes from, and where it goes (OWASP CSRF cheat
    sheet: Fetch Metadata, then the standard headers). Every field as received, or None."""

    scheme: str
    host: str | None
    sec_fetch_site: str | None
    origin: str | None
    referer: str | None


@dataclass(frozen=True, slots=True)
class Policy:
    """How one app treats session tokens.

    tenant           the tenant whose sessions this app accepts
    cookie_name      the session cookie; default ``__Host-sessionstore`` (``sessionstore``
                     with ``secure_cookie=False``), a name no framework uses for its own
    token_sources    where to look for tokens, in order: "header" (``Authorization: Bearer``),
                     "cookie"; the first the store accepts is the session
    required         True: refuse requests without a live session (401); False: pass them on
                     as anonymous
    exclude_paths    paths where a session is never required, even with ``required``: a token
                     there is still read, so the user shows; "/static" covers "/static" and
                     "/static/app.css", not "/statics"
    secure_cookie    mark the cookie Secure; turn off only to serve plain http on loopback
    same_site        "lax" (default) or "strict"
    trusted_origins  origins besides the app's own ("https://app.example.com") whose pages may
                     sign users in and out here
    trusted_proxies  addresses or networks of reverse proxies whose ``proxy_header`` tells the
                     client's address; with none, the connection's peer is the client
    proxy_header     the header those proxies append the client address to
    retry_after      seconds a 503 asks the client to wait
    """

    tenant: str
    cookie_name: str = ""
    token_sources: Sequence[TokenSource] = TOKEN_SOURCES
    required: bool = False
    exclude_paths: Sequence[str] = ()
    secure_cookie: bool = True
    same_site: SameSite = "lax"
    trusted_origins: Sequence[str] = ()
    trusted_proxies: Sequence[str] = ()
    proxy_header: str = "x-forwarded-for"
    retry_after: int = 1
    _proxy_networks: tuple[Any, ...] = field(init=False, repr=False, default=())

    def __post_init__(self) -> None:
        inputs.tenant(self.tenant)
        name = self.cookie_name or (SECURE_COOKIE_NAME if self.secure_cookie else COOKIE_NAME)
        if not _COOKIE_NAME.fullmatch(name):
            raise InvalidArgument("cookie_name must be an HTTP token")
        if name.startswith("__Host-") and not self.secure_cookie:
            raise InvalidArgument("a __Host- cookie must be Secure: browsers drop it otherwise")
        sources = tuple(self.token_sources)
        if not sources or len(set(sources)) != len(sources) or not set(sources) <= {*TOKEN_SOURCES}:
            raise InvalidArgument('token_sources must be distinct values of "header", "cookie"')
        if self.same_site not in ("lax", "strict"):
            raise InvalidArgument('same_site must be "lax" or "strict"')
        excluded = tuple(self.exclude_paths)
        if isinstance(self.exclude_paths, str) or any(not p.startswith("/") for p in excluded):
            raise InvalidArgument("exclude_paths must be a sequence of paths starting with /")
        if not 0 < self.retry_after <= 3600:
            raise InvalidArgument("retry_after must be in 1..3600 seconds")
        # Frozen, yet normalised once here so no request pays for it.
        object.__setattr__(self, "cookie_name", name)
        object.__setattr__(self, "token_sources", sources)
        object.__setattr__(self, "exclude_paths", tuple(p.rstrip("/") or "/" for p in excluded))
        object.__setattr__(self, "trusted_origins", _origins(self.trusted_origins))
        object.__setattr__(self, "proxy_header", self.proxy_header.lower())
        object.__setattr__(self, "_proxy_networks", _networks(self.trusted_proxies))

    # -- reading a request ------------------------------------------------------------------

    def exempt(self, path: str) -> bool:
        """Whether ``path`` is one of exclude_paths or below one, segment by segment. A path
        with "." or ".." segments is never exempt: it is not the path it seems to be."""
        if any(segment in (".", "..") for segment in path.split("/")):
            return False
        return any(
            prefix == "/" or path == prefix or path.startswith(prefix + "/")
            for prefix in self.exclude_paths
        )

    def credentials(
        self, cookie_header: str | None, authorization: str | None
    ) -> tuple[Credential, ...]:
        """Every token the request presents, in the order of token_sources.

        ``cookie_header`` and ``authorization`` are every field of that name, joined (see
        inputs.joined). Raises AmbiguousCredential when a source the policy reads holds two;
        sources it does not read are never looked at.
        """
        found = []
        for source in self.token_sources:
            if source == "cookie":
                token = inputs.cookie_token(cookie_header, self.cookie_name)
            else:
                token = inputs.bearer_token(authorization)
            if token:
                found.append(Credential(token, source))
        return tuple(found)

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

    def cross_site(self, request: Origin) -> str | None:
        """Why a request may have been sent by another site's page, or None when it was not.

        OWASP's order: ``Sec-Fetch-Site`` first (every current browser sends it): same-origin
        and none (the user's own navigation) pass. Otherwise the ``Origin`` header, else the
        ``Referer``'s origin, must be the app's own (the request's scheme and Host) or one of
        trusted_origins; ``Origin: null`` never is. A sibling subdomain is same-site, not
        same-origin: it is refused unless trusted. A request with none of the three headers
        was not sent by a browser (browsers send Origin with every POST), so no page could
        have made it: it passes, as bearer clients and scripts do.
        """
        site = (request.sec_fetch_site or "").strip().lower()
        if site in ("same-origin", "none"):
            return None
        source = request.origin.strip() if request.origin is not None else None
        if source is None and request.referer is not None:
            source = _origin_of(request.referer) or "unparsable"
        if source is None:
            return f"Sec-Fetch-Site is {site[:16]} and no Origin is given" if site else None
        target = _origin_of(f"{request.scheme}://{request.host}") if request.host else None
        allowed = {*self.trusted_origins} if target is None else {target, *self.trusted_origins}
        if _normalised(source) in allowed:
            return None
        return "the request comes from another origin"

    # -- deciding -----------------------------------------------------------------------------

    def refusal(self, exchange: Exchange, path: str) -> Reply | None:
        """The 401 that ends a request the policy will not let through, or None to pass it on."""
        if exchange.session is not None or not self.required or self.exempt(path):
            return None
        return self.unauthenticated(exchange)

    def unauthenticated(self, exchange: Exchange) -> Reply:
        """The 401 for a request without a live session: a bare challenge when it presented no
        token (RFC 6750 3.1), invalid_token and a cleared cookie when the store rejected it."""
        if not exchange.credentials:
            challenge = (("www-authenticate", "Bearer"),)
            return _problem(401, "This resource needs a signed-in session.", challenge)
        rejected: tuple[tuple[str, str], ...] = (
            ("www-authenticate", 'Bearer error="invalid_token"'),
        )
        if exchange.cookie_rejected:
            rejected += (("set-cookie", self.clearing_cookie()),)
        return _problem(401, "The session is invalid, expired or revoked.", rejected)

    def ambiguous(self, error: AmbiguousCredential) -> Reply:
        """The 400 for a credential given twice: the same answer as the admin API's."""
        return _problem(error.status, str(error), (("www-authenticate", error.challenge),))

    def check_change(self, exchange: Exchange, origin: Origin | None) -> None:
        """What every helper that changes the session checks first, for both middlewares: the
        response has not started, and (``origin`` given) the request came from this site."""
        exchange.check_open()
        if origin is not None:
            reason = self.cross_site(origin)
            if reason is not None:
                raise self.forbidden(reason)

    def forbidden(self, reason: str) -> CrossSiteRequest:
        detail = f"Refused: {reason}; sign-in and sign-out only work from this site's own pages."
        return CrossSiteRequest(_problem(403, detail, ()), detail)

    def unavailable(self) -> Reply:
        """The 503 for a store that did not answer: the cookie stays, the client retries."""
        retry = (("retry-after", str(self.retry_after)),)
        return _problem(503, "The session store is unavailable; try again shortly.", retry)

    def error_reply(self, error: BaseException) -> Reply | None:
        """The answer to an error from inside the app, or None if it is not the session layer's."""
        if isinstance(error, Refusal):
            return error.reply
        if isinstance(error, StoreUnavailable):
            return self.unavailable()
        return None

    # -- the response -------------------------------------------------------------------------

    def finish(self, exchange: Exchange, headers: list[tuple[str, str]]) -> list[tuple[str, str]]:
        """The app's response headers plus what this request's session business adds.

        The cookie a helper set or cleared; else a cleared cookie where the store rejected the
        one presented (so it costs no Redis call again), unless the app set one itself. And when
        the request presented a token or changed the session, the response depends on who asked:
        ``Vary`` names the headers the tokens came from and, unless the app chose its own
        ``Cache-Control``, ``private`` keeps it out of shared caches.
        """
        cookies = (value for name, value in headers if name.lower() == "set-cookie")
        if exchange.set_cookie is not None:
            headers = [*headers, ("set-cookie", exchange.set_cookie)]
        elif exchange.cookie_rejected and not _sets_cookie(cookies, self.cookie_name):
            headers = [*headers, ("set-cookie", self.clearing_cookie())]
        if exchange.credentials or exchange.changed:
            headers = self._private(headers)
        return headers

    def _private(self, headers: list[tuple[str, str]]) -> list[tuple[str, str]]:
        varies = {"cookie": "Cookie", "header": "Authorization"}
        wanted = [varies[source] for source in self.token_sources]
        vary = [value for name, value in headers if name.lower() == "vary"]
        named = {token.strip().lower() for value in vary for token in value.split(",")}
        missing = [name for name in wanted if name.lower() not in named]
        if missing and "*" not in named:
            headers = [*headers, ("vary", ", ".join(missing))]
        if not any(name.lower() == "cache-control" for name, _ in headers):
            headers = [*headers, ("cache-control", "private")]
        return headers

    # -- cookies ------------------------------------------------------------------------------

    def session_cookie(self, token: str, max_age: int) -> str:
        """The Set-Cookie value that hands a new session's token to the browser."""
        return f"{self.cookie_name}={token}; Max-Age={max_age}; {self._attributes()}"

    def clearing_cookie(self) -> str:
        return f"{self.cookie_name}=; Max-Age=0; Expires={_EPOCH}; {self._attributes()}"

    def _attributes(self) -> str:
        secure = "; Secure" if self.secure_cookie else ""
        return f"Path=/; HttpOnly{secure}; SameSite={self.same_site.capitalize()}"


@dataclass(slots=True, eq=False)
class Exchange:
    """One request's dealings with the session layer: the tokens it presented, the session the
    store found, and the cookie its response must set or clear. Never shows a token."""

    credentials: tuple[Credential, ...] = ()
    session: Session | None = None
    token: str | None = field(default=None, repr=False)
    cookie_rejected: bool = False
    set_cookie: str | None = field(default=None, repr=False)
    changed: bool = False
    started: bool = False

    def accept(self, credential: Credential, session: Session | None) -> bool:
        """Record the store's answer for one credential; True when it is the session."""
        if session is None:
            self.cookie_rejected |= credential.source == "cookie"
            return False
        self.session, self.token = session, credential.token
        return True

    def check_open(self) -> None:
        if self.started:
            raise RuntimeError("the response has started: too late to change the session")

    def change(self, session: Session | None, token: str | None, set_cookie: str | None) -> None:
        """A helper signed someone in or out: the response carries ``set_cookie``."""
        self.check_open()
        self.session, self.token, self.set_cookie = session, token, set_cookie
        self.changed = True


StoreT = TypeVar("StoreT")


@dataclass(frozen=True, slots=True)
class Gate(Generic[StoreT]):
    """The store and policy of one middleware, published with each request for the helpers."""

    store: StoreT
    policy: Policy

    def __repr__(self) -> str:
        return f"Gate(store={self.store!r}, tenant={self.policy.tenant!r})"


def cookie_max_age(lifetime: timedelta) -> int:
    """Seconds a new session's cookie lives: to the session's absolute end.

    That is its expiresAt, unless an idle timeout is set: then expiresAt slides forward with
    activity, so the cookie must outlive it, and Redis alone enforces the idle timeout.
    """
    return int(lifetime.total_seconds())


def mark_current(sessions: Iterable[Session], current: Session) -> list[dict[str, Any]]:
    """The user's sessions as the spec's objects, with ``current`` true on this request's only."""
    return [{**session.to_dict(), "current": session.id == current.id} for session in sessions]


# -- synchronizer tokens ------------------------------------------------------------------------


def synchronizer_token(session_token: str) -> str:
    """A CSRF token for forms of this session: an HMAC keyed by the session's own token.

    Only a holder of the session token can make it, so another site cannot, and it ends with
    the session; showing it in a page reveals nothing of the session token.
    """
    digest = hmac.new(session_token.encode(), _SYNCHRONIZER, hashlib.sha256).digest()
    return "csrf_" + base64.urlsafe_b64encode(digest).decode().rstrip("=")


def synchronizer_token_matches(session_token: str | None, submitted: str | None) -> bool:
    """Whether ``submitted`` is this session's synchronizer token, compared in constant time."""
    if session_token is None or not submitted:
        return False
    expected = synchronizer_token(session_token).encode()
    return hmac.compare_digest(expected, submitted.encode("utf-8", "replace"))


def bad_synchronizer_token(policy: Policy) -> CrossSiteRequest:
    return policy.forbidden("the form's synchronizer token is missing or wrong")


# -- small pieces -------------------------------------------------------------------------------


def _sets_cookie(set_cookie_values: Iterable[str], name: str) -> bool:
    """Whether a response already sets (or clears) the named cookie."""
    return any(value.lstrip().startswith(f"{name}=") for value in set_cookie_values)


def _problem(status: int, detail: str, headers: tuple[tuple[str, str], ...]) -> Reply:
    body = problem_bytes(status, detail)
    common = (
        ("content-type", CONTENT_TYPE),
        ("content-length", str(len(body))),
        ("cache-control", "no-store"),
    )
    return Reply(status, common + headers, body)


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


def _normalised(origin: str) -> str | None:
    return None if origin == "null" else _origin_of(origin)


def _origins(origins: Iterable[str]) -> tuple[str, ...]:
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
