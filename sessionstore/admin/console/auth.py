"""Who is signed in to the console, held server-side, and where requests may come from.

Signing in checks an admin API key; the console then holds a *console session*: a value in
an HttpOnly, SameSite=Strict cookie, ``<key id>.<256 random bits>``, names a record in Redis,
``<prefix>:console:{<key id>}:<SHA-256 of the value>``, so neither a Redis dump nor a log ever
holds a usable cookie (the key id is no secret: it is how ``apikey list`` and the events name
the key). The record holds the tenant, the API key's id and SHA-256 (the same digest Redis
already keeps for the key; never the key), the session's CSRF token and its absolute expiry.
Its TTL is the idle timeout, renewed by every request (``GETEX``); the absolute lifetime is
checked in the process. Every request also reads the API key's record: a revoked key ends its
console sessions at once.

A key keeps at most ``max_sessions_per_key`` live console sessions: ``<prefix>:console:{<key
id>}``, a sorted set of its records' digests by sign-in time, is the list of them. A sign-in
writes its record and its entry, and takes the oldest entries past the cap out, in one
MULTI (the ``{<key id>}`` hash tag puts a key's records and list in one cluster slot), then
deletes the records it took out. A record is live only while its entry is listed, so the cap
holds at the MULTI even if that DEL never comes.

The cookie is ``Secure`` with the ``__Host-`` prefix (Path=/, no Domain: no sibling domain
can set or shadow it), except for a browser on plain http to a loopback host
(``http://127.0.0.1:8080``, ``http://localhost:8080``, as ``serve --demo`` runs): there it is
``sessionstore-console`` without Secure, with Path at the console, so the demo works in every
browser (Safari keeps no Secure cookie from http). "Plain http to loopback" means: the request
is http, its Host is a loopback name or address, it comes from a loopback address, and it
carries no proxy header (``Forwarded``, ``X-Forwarded-*``, ``X-Real-IP``); a TLS proxy in front
of the server must pass the original Host or such a header, as proxies usually do.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import json
import re
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Final

from starlette.requests import Request
from starlette.responses import Response

from ... import _connection
from ..._core.keys import KeySpace
from ...http import origin
from ...http.credentials import AmbiguousCredential, cookie_token, joined
from ..apikeys import ApiKey, digest

__all__ = [
    "COOKIE",
    "ConsoleSession",
    "ConsoleSessions",
    "ConsoleSettings",
    "LOCAL_COOKIE",
    "clear_cookies",
    "cookie_value",
    "cross_site",
    "is_loopback",
    "plain_http_on_loopback",
    "set_cookie",
]

COOKIE: Final = "__Host-sessionstore-console"
LOCAL_COOKIE: Final = "sessionstore-console"
# <key id>.<secrets.token_urlsafe(32)>
_VALUE = re.compile(r"[0-9A-Za-z]{16}\.[A-Za-z0-9_-]{43}")
# How long a key's list outlives its last sign-in, past the lifetime: clocks differ a little.
_LIST_SLACK_MS = 60_000


@dataclass(frozen=True, slots=True)
class ConsoleSettings:
    """How long a console session lasts: ``lifetime`` in all, ``idle_timeout`` unused; and
    how many one API key keeps live at once (a sign-in past that ends the oldest)."""

    lifetime: float = 8 * 3600
    idle_timeout: float = 30 * 60
    max_sessions_per_key: int = 10


@dataclass(frozen=True, slots=True)
class ConsoleSession:
    """A signed-in console: the tenant it acts for and the API key it signed in with."""

    tenant: str
    key_id: str
    csrf: str
    flash: str | None
    record_key: str = field(repr=False)
    record: dict[str, Any] = field(repr=False, compare=False)


class ConsoleSessions:
    """Start, load and end console sessions in the store's Redis, under its prefix."""

    def __init__(
        self,
        client: Any,
        prefix: str,
        *,
        settings: ConsoleSettings | None = None,
        clock: Callable[[], float] = time.time,
        failed: Callable[[Exception], None] | None = None,
    ) -> None:
        """``failed``: told of each Redis failure (the store's metrics count them)."""
        self._client = client
        self._failed = failed
        self._prefix = prefix
        self._api_keys = KeySpace(prefix, 1)  # only its API key names are used
        self._settings = settings or ConsoleSettings()
        self._clock = clock

    def __repr__(self) -> str:
        return "ConsoleSessions()"

    def key_list(self, key_id: str) -> str:
        """The list of a key's console sessions (a sorted set of record digests)."""
        return f"{self._prefix}:console:{{{key_id}}}"

    def record_key(self, value: str) -> str:
        """The record of a cookie value ``<key id>.<random>``, in its key's list's slot."""
        key_id = value.partition(".")[0]
        return f"{self.key_list(key_id)}:{hashlib.sha256(value.encode()).hexdigest()}"

    @property
    def _idle_ms(self) -> int:
        return max(1, round(self._settings.idle_timeout * 1000))

    async def start(self, key: ApiKey, presented: str) -> str:
        """A new console session for a verified key; returns the cookie value. The key's
        oldest console sessions past ``max_sessions_per_key`` end here."""
        value = f"{key.id}.{secrets.token_urlsafe(32)}"
        name = self.record_key(value)
        listed, _, entry = name.rpartition(":")
        now = self._clock()
        record = {
            "tenant": key.tenant,
            "keyId": key.id,
            "keyDigest": digest(presented).hex(),
            "csrf": secrets.token_urlsafe(32),
            "expires": round((now + self._settings.lifetime) * 1000),
        }
        past_cap = -(max(1, self._settings.max_sessions_per_key) + 1)
        with _connection.translated(self._failed):
            await self._forget_ended(listed)
            async with self._client.pipeline(transaction=True) as multi:
                multi.set(name, _dump(record), px=self._idle_ms)
                multi.zadd(listed, {entry: now})
                multi.zrange(listed, 0, past_cap)
                multi.zremrangebyrank(listed, 0, past_cap)
                multi.pexpire(listed, round(self._settings.lifetime * 1000) + _LIST_SLACK_MS)
                _, _, ended, _, _ = await multi.execute()
            if ended:
                await self._client.delete(*(f"{listed}:{old.decode()}" for old in ended))
        return value

    async def _forget_ended(self, listed: str) -> None:
        """Take out of a key's list the sessions whose records are gone (idle, signed out):
        they hold no place under the cap. A listed record is written in the MULTI that lists
        it, so one that is gone has ended."""
        entries = await self._client.zrange(listed, 0, -1)
        if not entries:
            return
        async with self._client.pipeline(transaction=False) as pipe:
            for entry in entries:
                pipe.exists(f"{listed}:{entry.decode()}")
            found = await pipe.execute()
        ended = [entry for entry, exists in zip(entries, found, strict=True) if not exists]
        if ended:
            await self._client.zrem(listed, *ended)

    async def load(self, value: str | None) -> ConsoleSession | None:
        """The live console session of a cookie value; None when signed out, expired, idle
        too long, ended by newer sign-ins of its key, or when its API key was revoked since
        (the record is then deleted)."""
        if value is None or not _VALUE.fullmatch(value):
            return None  # junk costs Redis nothing
        name = self.record_key(value)
        listed, _, entry = name.rpartition(":")
        with _connection.translated(self._failed):
            async with self._client.pipeline(transaction=False) as pipe:
                pipe.getex(name, px=self._idle_ms)
                pipe.zscore(listed, entry)
                raw, place = await pipe.execute()
        if raw is None:
            return None
        if place is None:  # ended by newer sign-ins: the DEL that follows has not come yet
            await self._delete(name)
            return None
        try:
            record = json.loads(raw)
            session = ConsoleSession(
                tenant=str(record["tenant"]),
                key_id=str(record["keyId"]),
                csrf=str(record["csrf"]),
                flash=record.get("flash"),
                record_key=name,
                record=record,
            )
            expires = int(record["expires"])
            key_digest = bytes.fromhex(record["keyDigest"])
        except (ValueError, KeyError, TypeError):
            expires, key_digest, session = 0, b"", None
        if session is None or expires <= self._clock() * 1000:
            await self._delete(name)
            return None
        with _connection.translated(self._failed):
            stored, tenant = await self._client.hmget(
                self._api_keys.api_key(session.key_id), "hash", "tenant"
            )
        live = (
            stored is not None
            and tenant is not None
            and tenant.decode() == session.tenant
            and hmac.compare_digest(bytes(stored), key_digest)
        )
        if not live:
            await self._delete(name)
            return None
        return session

    async def end(self, session: ConsoleSession) -> None:
        """Sign out: the console session's record is deleted at once."""
        await self._delete(session.record_key)

    async def set_flash(self, session: ConsoleSession, text: str) -> None:
        """A message for the next page this console session sees (then gone)."""
        await self._rewrite(session, {**session.record, "flash": text})

    async def take_flash(self, session: ConsoleSession) -> str | None:
        """The message set for this page, if any, removed as it is read."""
        if session.flash is None:
            return None
        record = dict(session.record)
        record.pop("flash", None)
        await self._rewrite(session, record)
        return session.flash

    async def _rewrite(self, session: ConsoleSession, record: dict[str, Any]) -> None:
        # XX: never brings back a session that ended meanwhile; KEEPTTL: no renewal here.
        with _connection.translated(self._failed):
            await self._client.set(session.record_key, _dump(record), xx=True, keepttl=True)

    async def _delete(self, name: str) -> None:
        """End a console session: its record and its entry in its key's list."""
        listed, _, entry = name.rpartition(":")
        with _connection.translated(self._failed):
            async with self._client.pipeline(transaction=True) as multi:
                multi.delete(name)
                multi.zrem(listed, entry)
                await multi.execute()


def _dump(record: dict[str, Any]) -> str:
    return json.dumps(record, separators=(",", ":"))


# -- cookies ------------------------------------------------------------------------------------


def is_loopback(host: str | None) -> bool:
    """Whether ``host`` (a name or an address) can only be this machine."""
    if not host:
        return False
    host = host.strip("[]").lower()
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


_PROXY_HEADERS: Final = (
    "forwarded",
    "x-forwarded-for",
    "x-forwarded-host",
    "x-forwarded-proto",
    "x-real-ip",
)


def plain_http_on_loopback(request: Request) -> bool:
    """Whether a local browser is on ``http://`` to a loopback host (the one cookie without
    Secure). Not the Origin, which a script may leave out."""
    if request.url.scheme != "http" or any(name in request.headers for name in _PROXY_HEADERS):
        return False
    client = request.client.host if request.client else None
    return is_loopback(request.url.hostname) and is_loopback(client)


def cookie_value(request: Request) -> str | None:
    """The console cookie's value; the local cookie counts only on plain http to loopback.

    Read by the one cookie rule (``sessionstore.http.credentials.cookie_token``): a cookie
    given twice (one tossed in by a sibling domain, say) is trusted in neither copy, and the
    console answers it as it answers a console session it does not know: signed out.
    """
    header = joined(request.headers.getlist("cookie"), "; ")
    try:
        value = cookie_token(header, COOKIE)
        if value is None and plain_http_on_loopback(request):
            value = cookie_token(header, LOCAL_COOKIE)
    except AmbiguousCredential:
        return None
    return value


def set_cookie(response: Response, request: Request, value: str, base: str) -> None:
    """A session cookie (no Max-Age: gone with the browser; the record expires on its own)."""
    if plain_http_on_loopback(request):
        response.set_cookie(
            LOCAL_COOKIE, value, path=base or "/", secure=False, httponly=True, samesite="strict"
        )
    else:
        response.set_cookie(COOKIE, value, path="/", secure=True, httponly=True, samesite="strict")


def clear_cookies(response: Response, base: str) -> None:
    """Have the browser drop both console cookies (secure and loopback ones)."""
    response.delete_cookie(COOKIE, path="/", secure=True, httponly=True, samesite="strict")
    response.delete_cookie(LOCAL_COOKIE, path=base or "/", httponly=True, samesite="strict")


# -- where a form comes from --------------------------------------------------------------------


def cross_site(request: Request) -> bool:
    """A state-changing request that a browser says came from elsewhere, by the one rule of
    ``sessionstore.http.origin``: ``Sec-Fetch-Site`` ``same-origin`` (or ``none``, the user's
    own navigation) passes; otherwise the ``Origin`` must be the console's own, scheme, host
    and port; ``Origin: null`` never is.

    The console's ``Referrer-Policy: same-origin`` keeps its URLs from other sites and still
    lets browsers send its own Origin with its forms (``no-referrer`` would make it ``null``,
    and a browser without Fetch Metadata could not post them). A request with neither header
    (a script) is left to the CSRF token and the SameSite=Strict cookie, which no other site's
    page can send.
    """
    return origin.cross_site(origin.Origin.from_scope(request)) is not None
