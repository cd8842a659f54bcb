"""What the session middlewares decide, with no I/O and no framework: asgi.py and wsgi.py share it.

A request's tokens come from the places the policy names, in its order: the ``Authorization:
Bearer`` header, then the session cookie, by default. A credential given twice in one place is
refused (400), before anything is validated (``sessionstore.http.credentials``). No token means
an anonymous request and no Redis call. The first token the store accepts is the request's
session; a token the store rejects gets a 401 where the policy requires a session, and passes
on as anonymous where it does not. A store that cannot answer gets a 503: never anonymous,
never authenticated, and the cookie is kept, since the session is probably fine and only Redis
is away.

The helpers that change who is signed in (login, logout, sign out a device) first check that
the request comes from the app's own origin (``sessionstore.http.origin``); the response of any
request that presented a token says so to caches (``Policy.finish``).

Everything that talks to the store is written here once, as a flow: a generator that yields
the store calls it needs (``StoreCall``) and receives their results, as the store's own core
does with Redis. asgi.py awaits each call, wsgi.py makes it plainly; neither decides anything.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import ipaddress
import re
from collections.abc import Generator, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import timedelta
from typing import Any, Generic, Literal, NamedTuple, TypedDict, TypeVar

from .._core import inputs
from .._core.binding import BindingTerms
from ..errors import InvalidArgument, InvalidIPAddress, SessionStoreError, StoreUnavailable
from ..http.credentials import AmbiguousCredential, bearer_token, cookie_token
from ..http.origin import Origin, cross_site, tokens_match, trusted_origins
from ..http.problems import CONTENT_TYPE, problem_bytes
from ..model import Session

__all__ = [
    "COOKIE_NAME",
    "ENVIRON_SESSION",
    "EXCHANGE",
    "GATE",
    "SCOPE_SESSION",
    "SECURE_COOKIE_NAME",
    "TOKEN_SOURCES",
    "UNKNOWN_IP",
    "USER",
    "Client",
    "Credential",
    "CrossSiteRequest",
    "DeviceBinding",
    "Exchange",
    "Gate",
    "HelperFlow",
    "Policy",
    "PolicyOptions",
    "Refusal",
    "Reply",
    "SameSite",
    "SessionRequired",
    "StoreCall",
    "TokenSource",
    "cookie_max_age",
    "list_my_sessions_flow",
    "login_flow",
    "logout_flow",
    "mark_current",
    "sign_out_device_flow",
    "sign_out_other_devices_flow",
    "synchronizer_token",
    "synchronizer_token_matches",
    "validation_flow",
]

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

# Who ends a session through the login/logout/devices helpers, as its events record it.
USER = "user"
# The address recorded when the connection has none (a Unix socket, say).
UNKNOWN_IP = "0.0.0.0"  # noqa: S104 (recorded, never bound)

# RFC 6265 cookie-name: an HTTP token.
_COOKIE_NAME = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
_URL_PATH = re.compile(r"/[A-Za-z0-9._~!$&'()*+,;=:@%/-]*")
_EPOCH = "Thu, 01 Jan 1970 00:00:00 GMT"
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
    device_bound: bool | DeviceBinding


@dataclass(frozen=True, slots=True)
class DeviceBinding:
    """How a middleware binds sessions to devices with DBSC (``device_bound=DeviceBinding(...)``;
    ``device_bound=True`` takes these defaults). The protocol is dbsc.py's.

    registration_path  where the middleware serves DBSC registrations (below the app's mount)
    refresh_path       where it serves refreshes
    cookie_name        the bound cookie; default: the session cookie's name + ``-bound``
    cookie_seconds     how long a bound cookie lives: how long a thief who holds every cookie
                       but not the key keeps access, and about how often a browser refreshes
    challenge_seconds  how long a challenge lives; also the registration window after a sign-in,
                       past which the session stays unbound for good, as for clients without
                       DBSC
    authorization      send an ``authorization`` value with the registration challenge, which
                       the proof must repeat
    revoke_on_failure  revoke a session whose binding fails, besides recording it (default:
                       record only; README: Device-bound sessions)
    """

    registration_path: str = "/.sessionstore/dbsc/register"
    refresh_path: str = "/.sessionstore/dbsc/refresh"
    cookie_name: str = ""
    cookie_seconds: int = 300
    challenge_seconds: int = 120
    authorization: bool = False
    revoke_on_failure: bool = False
    terms: BindingTerms = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        for path in (self.registration_path, self.refresh_path):
            if not _URL_PATH.fullmatch(path):
                raise InvalidArgument("DBSC endpoint paths must be absolute URL paths")
        if self.registration_path == self.refresh_path:
            raise InvalidArgument("the DBSC registration and refresh paths must differ")
        if self.cookie_name and not _COOKIE_NAME.fullmatch(self.cookie_name):
            raise InvalidArgument("the bound cookie's name must be an HTTP token")
        terms = BindingTerms(
            challenge_seconds=self.challenge_seconds,
            cookie_seconds=self.cookie_seconds,
            authorization=self.authorization,
            revoke_on_failure=self.revoke_on_failure,
        )
        object.__setattr__(self, "terms", terms)

    @property
    def cookie_max_age(self) -> int:
        """The bound cookie's Max-Age: a little short of what its signature allows, so that a
        request the browser sends just before dropping it still arrives in time."""
        return self.cookie_seconds - min(10, self.cookie_seconds // 10)


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
    ``error_reply`` and ``register_flask`` in wsgi.py.
    """

    def __init__(self, reply: Reply, detail: str) -> None:
        super().__init__(detail)
        self.reply = reply


class CrossSiteRequest(Refusal):
    """403: a sign-in, sign-out or synchronizer-token check for a request from another site."""


class SessionRequired(Refusal):
    """401: a route that needs a signed-in session got a request without one."""


@dataclass(frozen=True, slots=True)
class Client:
    """What a sign-in records of the request's client, as received: the connection's peer
    address, the ``proxy_header`` (None without one) and the User-Agent."""

    peer: str | None
    forwarded_for: str | None
    user_agent: str


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
    device_bound     True or a DeviceBinding: offer DBSC at cookie sign-ins, serve its
                     registration and refresh endpoints, and require the bound cookie from
                     bound sessions (dbsc.py)
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
    device_bound: bool | DeviceBinding = False
    _proxy_networks: tuple[Any, ...] = field(init=False, repr=False, default=())
    _binding: DeviceBinding | None = field(init=False, repr=False, default=None)

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
        object.__setattr__(self, "trusted_origins", trusted_origins(self.trusted_origins))
        object.__setattr__(self, "proxy_header", self.proxy_header.lower())
        object.__setattr__(self, "_proxy_networks", _networks(self.trusted_proxies))
        object.__setattr__(self, "_binding", _binding(self.device_bound, name))

    @property
    def binding(self) -> DeviceBinding | None:
        """How sessions are bound to devices here; None where they are not (dbsc.py)."""
        return self._binding

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
        ``sessionstore.http.credentials.joined``). Raises AmbiguousCredential when a source the
        policy reads holds two; sources it does not read are never looked at.
        """
        found = []
        for source in self.token_sources:
            if source == "cookie":
                token = cookie_token(cookie_header, self.cookie_name)
            else:
                token = bearer_token(authorization)
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
        rejected += tuple(exchange.headers)  # a cleared bound cookie (dbsc.py)
        return _problem(401, "The session is invalid, expired or revoked.", rejected)

    def require_session(self, exchange: Exchange) -> Session:
        """The request's session; SessionRequired (the 401 of ``unauthenticated``) when none."""
        if exchange.session is None:
            reply = self.unauthenticated(exchange)
            raise SessionRequired(reply, "this resource needs a signed-in session")
        return exchange.session

    def ambiguous(self, error: AmbiguousCredential) -> Reply:
        """The 400 for a credential given twice: the same answer as the admin API's."""
        return _problem(error.status, str(error), (("www-authenticate", error.challenge),))

    def check_change(self, exchange: Exchange, origin: Origin | None) -> None:
        """What every helper that changes the session checks first: the response has not
        started, and (``origin`` given) the request came from this site or a trusted one
        (``sessionstore.http.origin.cross_site``), else CrossSiteRequest."""
        exchange.check_open()
        if origin is not None:
            reason = cross_site(origin, self.trusted_origins)
            if reason is not None:
                raise self.forbidden(reason)

    def check_csrf_token(self, exchange: Exchange, submitted: str | None) -> None:
        """CrossSiteRequest (403) unless ``submitted`` is this session's synchronizer token."""
        if not synchronizer_token_matches(exchange.token, submitted):
            raise self.forbidden("the form's synchronizer token is missing or wrong")

    def forbidden(self, reason: str) -> CrossSiteRequest:
        """The 403 CrossSiteRequest for a request refused for ``reason``."""
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
        headers = [*headers, *exchange.headers]
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
        """The Set-Cookie value that makes the browser forget the session cookie."""
        return f"{self.cookie_name}=; Max-Age=0; Expires={_EPOCH}; {self._attributes()}"

    def bound_cookie(self, value: str) -> str:
        """The Set-Cookie value of a DBSC bound cookie (``binding`` set)."""
        binding = self._bound()
        return (
            f"{binding.cookie_name}={value}; Max-Age={binding.cookie_max_age}; {self._attributes()}"
        )

    def clearing_bound_cookie(self) -> str:
        """The Set-Cookie value that makes the browser forget the bound cookie."""
        name = self._bound().cookie_name
        return f"{name}=; Max-Age=0; Expires={_EPOCH}; {self._attributes()}"

    def cookie_attributes(self) -> str:
        """The attributes of the session and bound cookies (what DBSC instructions name)."""
        return self._attributes()

    def _bound(self) -> DeviceBinding:
        if self._binding is None:
            raise RuntimeError("this policy binds no sessions (device_bound)")
        return self._binding

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
    # Response headers of DBSC (dbsc.py): a registration offer, a cleared bound cookie.
    headers: list[tuple[str, str]] = field(default_factory=list, repr=False)

    def accept(self, credential: Credential, session: Session | None) -> bool:
        """Record the store's answer for one credential; True when it is the session."""
        if session is None:
            self.cookie_rejected |= credential.source == "cookie"
            return False
        self.session, self.token = session, credential.token
        return True

    def unbind(self, cleared: str | None) -> None:
        """A bound session came without its live bound cookie: the request goes on as
        anonymous, and ``cleared`` (a Set-Cookie, or None) drops the stale bound cookie."""
        self.session, self.token = None, None
        if cleared is not None:
            self.headers.append(("set-cookie", cleared))

    def check_open(self) -> None:
        """RuntimeError once the response has started: its headers can no longer change."""
        if self.started:
            raise RuntimeError("the response has started: too late to change the session")

    def csrf_token(self) -> str | None:
        """The synchronizer token of the request's session; None when anonymous."""
        return None if self.token is None else synchronizer_token(self.token)

    def change(self, session: Session | None, token: str | None, set_cookie: str | None) -> None:
        """A helper signed someone in or out: the response carries ``set_cookie``."""
        self.check_open()
        self.session, self.token, self.set_cookie = session, token, set_cookie
        self.changed = True


StoreT = TypeVar("StoreT")
T = TypeVar("T")


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


# -- the store calls, written once ---------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class StoreCall:
    """One call of a SessionStore (or AsyncSessionStore) method, for a face to make."""

    method: Literal[
        "validate",
        "create",
        "revoke",
        "revoke_all",
        "list_user_sessions",
        "begin_binding",
        "register_binding",
        "refresh_binding",
        "bound_cookie",
        "check_bound_cookie",
        "record_binding_failure",
    ]
    args: tuple[Any, ...]
    kwargs: Mapping[str, Any] = field(default_factory=dict)


# A flow yields the store calls it needs and is sent each one's result; its return value is
# the helper's. The faces run it (asgi.py awaiting each call, wsgi.py not).
HelperFlow = Generator[StoreCall, Any, T]


def validation_flow(policy: Policy, exchange: Exchange) -> HelperFlow[None]:
    """Find the request's session among its credentials: none, no Redis call; otherwise one
    ``validate`` per token, in the policy's order, until the store accepts one."""
    for credential in exchange.credentials:
        session = yield StoreCall("validate", (policy.tenant, credential.token))
        if exchange.accept(credential, session):
            return


def login_flow(
    policy: Policy,
    exchange: Exchange,
    user_id: int,
    *,
    client: Client,
    origin: Origin | None,
    lifetime: timedelta,
    auth_method: str,
    mfa_verified: bool,
    set_cookie: bool,
) -> HelperFlow[tuple[Session, str]]:
    """Sign the user in (the faces' ``login``): the new session and its token.

    Refused first from another site (``origin``, when given). A session the request already
    had is revoked, so signing in never leaves an old token alive. The response gets the new
    cookie, living ``lifetime``; without ``set_cookie``, only a cleared one, when the revoked
    session came by cookie (a bearer sign-in over a cookie session).
    """
    policy.check_change(exchange, origin)
    previous = exchange.session
    if previous is not None:
        yield _revoke(policy, previous.user_id, previous.id)
    session, token = yield StoreCall(
        "create",
        (policy.tenant, user_id),
        {
            "ip_address": policy.client_ip(client.peer, client.forwarded_for),
            "user_agent": client.user_agent,
            "auth_method": auth_method,
            "mfa_verified": mfa_verified,
        },
    )
    if set_cookie:
        cookie: str | None = policy.session_cookie(token, cookie_max_age(lifetime))
    else:
        cookie = _stale_cookie(policy, exchange)
    exchange.change(session, token, cookie)
    return session, token


def logout_flow(policy: Policy, exchange: Exchange, origin: Origin | None) -> HelperFlow[bool]:
    """Revoke the request's session and clear its cookie; False if it had none to revoke."""
    policy.check_change(exchange, origin)
    session = exchange.session
    revoked = False
    if session is not None:
        revoked = bool((yield _revoke(policy, session.user_id, session.id)))
    exchange.change(None, None, policy.clearing_cookie())
    if policy.binding is not None:
        exchange.headers.append(("set-cookie", policy.clearing_bound_cookie()))
    return revoked


def sign_out_other_devices_flow(
    policy: Policy, exchange: Exchange, origin: Origin | None
) -> HelperFlow[int]:
    """Revoke every session of this user but the current one; how many were revoked."""
    policy.check_change(exchange, origin)
    current = exchange.session
    if current is None:
        return 0
    kwargs = {"except_session_id": current.id, "actor": USER}
    return int((yield StoreCall("revoke_all", (policy.tenant, current.user_id), kwargs)))


def sign_out_device_flow(
    policy: Policy, exchange: Exchange, session_id: str, origin: Origin | None
) -> HelperFlow[bool]:
    """Revoke one of this user's own sessions (a "sign out" button on a devices page)."""
    policy.check_change(exchange, origin)
    current = exchange.session
    if current is None:
        return False
    return bool((yield _revoke(policy, current.user_id, session_id)))


def list_my_sessions_flow(policy: Policy, exchange: Exchange) -> HelperFlow[list[dict[str, Any]]]:
    """The user's sessions as the spec's objects plus ``current``; none when anonymous."""
    current = exchange.session
    if current is None:
        return []
    sessions = yield StoreCall("list_user_sessions", (policy.tenant, current.user_id))
    return mark_current(sessions, current)


def _revoke(policy: Policy, user_id: int, session_id: str) -> StoreCall:
    return StoreCall("revoke", (policy.tenant, user_id, session_id), {"actor": USER})


def _stale_cookie(policy: Policy, exchange: Exchange) -> str | None:
    # A bearer sign-in over a cookie session revokes that session: its cookie goes too.
    presented = any(credential.source == "cookie" for credential in exchange.credentials)
    return policy.clearing_cookie() if presented else None


# -- synchronizer tokens ------------------------------------------------------------------------


def synchronizer_token(session_token: str) -> str:
    """A CSRF token for forms of this session: an HMAC keyed by the session's own token.

    Only a holder of the session token can make it, so another site cannot, and it ends with
    the session; showing it in a page reveals nothing of the session token.
    """
    digest = hmac.new(session_token.encode(), _SYNCHRONIZER, hashlib.sha256).digest()
    return "csrf_" + base64.urlsafe_b64encode(digest).decode().rstrip("=")


def synchronizer_token_matches(session_token: str | None, submitted: str | None) -> bool:
    """Whether ``submitted`` is this session's synchronizer token, compared in constant time
    (``sessionstore.http.origin.tokens_match``)."""
    if session_token is None:
        return False
    return tokens_match(submitted, synchronizer_token(session_token))


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


def _address(value: str | None) -> str | None:
    if not value:
        return None
    try:
        return inputs.ip_address(value)
    except InvalidIPAddress:
        return None


def _binding(option: object, cookie_name: str) -> DeviceBinding | None:
    """The device_bound option as a DeviceBinding with its cookie named; None when off."""
    if option is False:
        return None
    binding = DeviceBinding() if option is True else option
    if not isinstance(binding, DeviceBinding):
        raise InvalidArgument("device_bound must be a bool or a DeviceBinding")
    if binding.cookie_name:
        return binding
    return replace(binding, cookie_name=f"{cookie_name}-bound")


def _networks(proxies: Iterable[str]) -> tuple[Any, ...]:
    if isinstance(proxies, str):
        raise InvalidArgument("trusted_proxies must be a sequence of addresses, not one string")
    try:
        return tuple(ipaddress.ip_network(proxy, strict=False) for proxy in proxies)
    except ValueError as error:
        raise InvalidArgument(f"trusted_proxies: {error}") from None
