"""Webhooks: a tenant's session events POSTed to its endpoints, signed, in order, at least once.

``Webhooks`` registers endpoints (also ``sessionstore webhooks add|list|remove|log`` and the
admin API); a ``Deliverer`` (inside ``sessionstore serve --events``, or ``sessionstore webhooks
run``) reads each tenant's events (events.py) and POSTs every one an endpoint asked for, as
Standard Webhooks (https://www.standardwebhooks.com/) says:

    webhook-id: <event id>              the same on every attempt: receivers drop repeats by it
    webhook-timestamp: <unix seconds>   when this attempt was made
    webhook-signature: v1,<base64 HMAC-SHA256 of "{id}.{timestamp}.{body}">

keyed by the base64-decoded part of the endpoint's secret ``whsec_<base64>``. The body is
``{"type", "timestamp", "data"}``: the event's type, its time, and its ``to_dict()``.

Keys (``P`` the store's prefix, ``T`` the tenant; ``{T}`` is the tenant's hash slot, so every
call below touches one slot; registration's script, lua/webhook_add.lua, counts the tenant's
webhooks and adds one in a single step, so registrations at once never pass the limit):

=================================  ======  ======================================================
``P:webhook-tenants``              set     tenants with webhooks: where deliverers look
``P:{T}:webhooks``                 set     the tenant's webhook ids
``P:{T}:webhook:<id>``             hash    url, types, secret, state, created; the delivery's
                                           cursor, attempts, failing_since, next_attempt, and
                                           disabled_at and reason once disabled
``P:{T}:webhook:<id>:lease``       string  which deliverer works on the endpoint (SET NX PX)
``P:{T}:webhook:<id>:log``         stream  its delivery attempts, about the last 1000
=================================  ======  ======================================================

Why a cursor and a lease per endpoint, rather than consumer groups
------------------------------------------------------------------
An endpoint must see a tenant's events in order, and they are spread over the tenant's bucket
streams (128 by default), merged by id only when read (events.read). A consumer group hands
out the entries of one stream: with one group per bucket, deliverers would take entries of
different buckets independently, and putting them back in order would need a second merge
over every group's pending entries, with claims of stuck ones in each. So an endpoint has one
**cursor**, the id of the last event it acknowledged (event ids are ordered), and one
**lease**, ``SET NX PX``. Every ``poll`` seconds a deliverer tries the lease of each endpoint;
the one that gets it reads the merged events after the cursor, POSTs them one at a time, moves
the cursor after each 2xx, and gives the lease back (DEL, when still its own) once nothing more
is due, so the endpoints spread over the deliverers that run. One holder means one request in
flight per endpoint, so the order holds, and no event is sent twice while all goes well.

Before each attempt the holder renews its lease (GET, then PEXPIRE when it is still its own)
if a third of the TTL has passed or less than 1.5 attempt timeouts are left, so an attempt
always ends before the lease could; and it gives up, sending nothing, once its own clock says
less than a tenth of the TTL may be left, so the lease cannot lapse between the GET and the
PEXPIRE either. A deliverer that dies holds its lease only until the TTL (30 s): another then
continues from the stored cursor, so an event sent but not yet recorded is sent again, with
the same webhook-id. That is the at-least-once promise; receivers drop repeats by webhook-id.

Late events. An event's id takes the clock of the process that wrote it, so an event can be
stored after one with a later id (another bucket, a writer whose clock is behind). A deliverer
sends only events at least ``settle`` (2 s) old by its own clock, so writers whose clocks agree
within that are delivered in order and none is passed over.

Outbound safety. One parser (``destination``) reads endpoint URLs at registration and at each
attempt, and makes the host canonical: a host ending in a number is an IPv4 address in any
spelling ``inet_aton`` takes (``127.1``, ``0177.0.0.1``, ``2130706433``), or no host at all.
Each attempt resolves the host, refuses it when any address is private, loopback or otherwise
not global (unless the operator allows private destinations) or link-local or a cloud metadata
address (unless the operator allows those, separately); an IPv6 address carrying an IPv4 one
(mapped, NAT64, 6to4, Teredo, ...) is judged by that too (``refusal``). It then connects to the
address it checked (so DNS cannot change in between), with the name kept for Host and TLS.
Redirects are never followed (a 3xx is a failed attempt), and the request lasts at most
``timeout`` seconds. The tenant's log says only "destination refused" or "cannot resolve";
which address, and why, is in the server's log.

Name lookups (``Lookups``) run on a deliverer's own threads, never asyncio's shared default
executor, at most two at once per tenant and eight in all, each within its own timeout (5 s at
most); a lookup that times out is a failed attempt ("cannot resolve"). Waiting for a place to
look a name up is not the endpoint's failure: when none comes in time, nothing is attempted
and the endpoint is tried again at the next poll. So a tenant whose names hang holds two
threads at most, and holds up no other tenant.

Failures. A failed attempt is retried after 5 s, doubling up to an hour, with the same event:
nothing later is sent before it. Whatever goes wrong in an attempt is a failed attempt (a URL
stored before registration checked it as now, a bug), never the end of the endpoint's worker.
An endpoint failing for 24 hours is disabled, and its log says so. Every attempt is in the
endpoint's log: event id, status code or error, duration, time; and counted in
``metrics.DeliveryMetrics`` when the deliverer is given one.
"""

from __future__ import annotations

import asyncio
import base64
import builtins
import contextlib
import hashlib
import hmac
import ipaddress
import json
import logging
import os
import re
import secrets
import socket
import ssl
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, Final

from . import _connection
from ._core import inputs, operations, scripts
from ._core.events import Event
from ._core.events import types as event_types
from ._core.scripts import Script
from ._core.tokens import random_base62
from .errors import InvalidArgument, StoreUnavailable
from .metrics import DELIVERY_OUTCOMES, DeliveryMetrics
from .model import from_ms, isoformat

if TYPE_CHECKING:
    import httpx

    from .aio import AsyncSessionStore

log = logging.getLogger("sessionstore.webhooks")

SECRET_PREFIX: Final = "whsec_"  # noqa: S105 (a prefix, not a secret)
SECRET_BYTES: Final = 32
ID_PREFIX: Final = "wh_"
ID_LEN: Final = 16
MAX_PER_TENANT: Final = 20
MAX_URL_LENGTH: Final = 2048
LOG_LENGTH: Final = 1000
GIVE_UP_AFTER: Final = timedelta(hours=24)

ENABLED: Final = "enabled"
DISABLED: Final = "disabled"

WEBHOOK_ID = re.compile(f"{ID_PREFIX}[0-9A-Za-z]{{{ID_LEN}}}")

# What an endpoint URL may be: http(s), a host name or IPv4 address, a port, a path and query;
# no user info, fragment, IPv6 literal or space. The OpenAPI document states this same pattern,
# so the API refuses exactly what its document says it refuses.
_LABEL = "[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
_PORT = "(?:6553[0-5]|655[0-2][0-9]|65[0-4][0-9]{2}|6[0-4][0-9]{3}|[1-5][0-9]{4}|[1-9][0-9]{0,3})"
URL_PATTERN: Final = (
    f"https?://{_LABEL}(?:\\.{_LABEL})*(?::{_PORT})?(?:[/?][A-Za-z0-9._~!$&'()*+,;=:@%/?-]*)?"
)
_URL = re.compile(URL_PATTERN)


class DestinationRefused(InvalidArgument):
    """An endpoint's host is (or resolves to) a private, loopback or link-local address."""


# -- signatures ---------------------------------------------------------------------------------


def new_secret() -> str:
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(SECRET_BYTES)).decode()


def _key(secret: str) -> bytes:
    return base64.b64decode(secret.removeprefix(SECRET_PREFIX), validate=True)


def sign(secret: str, message_id: str, timestamp: int, body: bytes) -> str:
    """The ``webhook-signature`` value of a message: ``v1,<base64 HMAC-SHA256>``."""
    signed = f"{message_id}.{timestamp}.".encode() + body
    digest = hmac.new(_key(secret), signed, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode()


def verify(
    secret: str,
    headers: Mapping[str, str],
    body: bytes,
    *,
    tolerance: float = 300,
    now: float | None = None,
) -> bool:
    """What a receiver checks: one of the ``v1`` signatures matches, and the timestamp is
    within ``tolerance`` seconds of now (a replayed old message is refused)."""
    message_id = headers["webhook-id"]
    timestamp = int(headers["webhook-timestamp"])
    if abs((time.time() if now is None else now) - timestamp) > tolerance:
        return False
    expected = sign(secret, message_id, timestamp, body)
    return any(
        hmac.compare_digest(expected, candidate)
        for candidate in headers["webhook-signature"].split(" ")
    )


def payload(event: Event) -> bytes:
    """The body of an event's delivery: the same bytes on every attempt."""
    body = {"type": event.type, "timestamp": isoformat(event.at), "data": event.to_dict()}
    return json.dumps(body, separators=(",", ":")).encode()


# -- destinations -------------------------------------------------------------------------------

LOOPBACK: Final = "loopback"
LINK_LOCAL: Final = "link-local"
METADATA: Final = "cloud metadata"
PRIVATE: Final = "private or reserved"
# 64:ff9b:1::/48 (RFC 8215) embeds an IPv4 address at a place its operator chooses (any RFC 6052
# prefix length): which IPv4 address such an address stands for cannot be told.
NAT64_LOCAL: Final = "NAT64 local-use"

ALLOW_PRIVATE_FLAG: Final = "--allow-private-destinations"
ALLOW_METADATA_FLAG: Final = "--allow-metadata-destinations"

# Where cloud metadata services answer, beyond the link-local ranges (169.254.0.0/16, fe80::/10)
# where most do: AWS's IPv6 endpoint, Alibaba Cloud's. Refused even with private destinations
# allowed, as link-local addresses are.
_METADATA = (ipaddress.ip_network("fd00:ec2::254/128"), ipaddress.ip_network("100.100.100.200/32"))
_MAPPED = ipaddress.ip_network("::ffff:0:0/96")  # ::ffff:a.b.c.d
_TRANSLATED = ipaddress.ip_network("::ffff:0:0:0/96")  # SIIT, ::ffff:0:a.b.c.d
_COMPATIBLE = ipaddress.ip_network("::/96")  # ::a.b.c.d (deprecated)
_NAT64 = ipaddress.ip_network("64:ff9b::/96")  # the NAT64 well-known prefix
_NAT64_LOCAL = ipaddress.ip_network("64:ff9b:1::/48")
_SIX_TO_FOUR = ipaddress.ip_network("2002::/16")  # bits 16-47
_TEREDO = ipaddress.ip_network("2001::/32")  # server bits 32-63, client XOR'd in the last 32
_SITE_LOCAL = ipaddress.ip_network("fec0::/10")  # deprecated, still routed inside some sites
_SEVERITY = (PRIVATE, LOOPBACK, LINK_LOCAL, METADATA, NAT64_LOCAL)  # the last is the worst


def refusal(address: str) -> str | None:
    """What kind of address ``address`` is when it is no public destination: ``LOOPBACK``,
    ``LINK_LOCAL``, ``METADATA``, ``PRIVATE`` (private, reserved, multicast, anything not
    global) or ``NAT64_LOCAL``; None for a public one. ``allowed`` says who may still reach it.

    An IPv6 address that carries an IPv4 address (IPv4-mapped, -translated and -compatible,
    NAT64, 6to4, Teredo) is judged by that IPv4 address too: ``64:ff9b::a9fe:a9fe`` is
    169.254.169.254 to a NAT64 gateway. Raises ValueError when ``address`` is no IP address.
    """
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv4Address):
        return _kind(ip)
    if ip in _NAT64_LOCAL:
        return NAT64_LOCAL
    low = ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    if ip in _MAPPED or ip in _NAT64:
        return _kind(low)  # only a way of writing the IPv4 address: that is the destination
    kinds = [_kind(ip)]
    if ip in _TRANSLATED or ip in _COMPATIBLE:
        kinds.append(_kind(low))
    elif ip in _SIX_TO_FOUR:
        kinds.append(_kind(ipaddress.IPv4Address(int(ip) >> 80 & 0xFFFFFFFF)))
    elif ip in _TEREDO:
        server = ipaddress.IPv4Address(int(ip) >> 64 & 0xFFFFFFFF)
        client = ipaddress.IPv4Address(~int(ip) & 0xFFFFFFFF)
        kinds += [_kind(server), _kind(client)]
    return max((kind for kind in kinds if kind), key=_SEVERITY.index, default=None)


def _kind(ip: ipaddress.IPv4Address | ipaddress.IPv6Address) -> str | None:
    if any(ip in network for network in _METADATA):
        return METADATA
    if ip.is_loopback:
        return LOOPBACK
    if ip.is_link_local:
        return LINK_LOCAL
    if (
        ip.is_private
        or not ip.is_global
        or ip.is_multicast
        or ip.is_reserved
        or ip.is_unspecified
        or (isinstance(ip, ipaddress.IPv6Address) and ip in _SITE_LOCAL)
    ):
        return PRIVATE
    return None


def allowed(kind: str | None, *, allow_private: bool, allow_metadata: bool) -> bool:
    """Whether an address of this kind (``refusal``) may be reached with these allowances:
    private and loopback ones with ``allow_private``; link-local and cloud metadata ones only
    with ``allow_metadata``, whatever ``allow_private`` says; NAT64 local-use (which could be
    either) only with both."""
    if kind is None:
        return True
    if kind in (LINK_LOCAL, METADATA):
        return allow_metadata
    if kind == NAT64_LOCAL:
        return allow_private and allow_metadata
    return allow_private


def _flags(kind: str) -> str:
    """The operator's flag(s) that would allow an address of this kind."""
    if kind in (LINK_LOCAL, METADATA):
        return ALLOW_METADATA_FLAG
    if kind == NAT64_LOCAL:
        return f"{ALLOW_PRIVATE_FLAG} and {ALLOW_METADATA_FLAG}"
    return ALLOW_PRIVATE_FLAG


def _why(kind: str) -> str:
    if kind in (LINK_LOCAL, METADATA):
        return (
            "link-local and cloud metadata addresses are refused even where private "
            f"destinations are allowed, unless the server's operator allows them ({_flags(kind)})"
        )
    return (
        "this server delivers only to public addresses unless its operator allows private "
        f"destinations ({_flags(kind)})"
    )


@dataclass(frozen=True, slots=True)
class Destination:
    """An endpoint URL as ``destination`` reads it."""

    url: str  # the URL with its host canonical: what registration stores
    scheme: str  # http or https
    host: str  # a lower-case DNS name, or an IPv4 address in dotted decimal
    port: int
    address: str | None  # the host, when it is an IPv4 address (in whatever spelling given)
    spelled: str  # the host as given (lower-case)


def destination(url: object) -> Destination:
    """Parse an endpoint URL, its host made canonical. Registration and each delivery attempt
    both read URLs with this, so what was checked at registration is what is connected to.

    A host that ends in a number is an IPv4 address in some spelling, read as ``inet_aton``
    (and so ``getaddrinfo``) reads it: ``127.1``, ``0177.0.0.1``, ``0x7f.1`` and ``2130706433``
    are all 127.0.0.1, and become that. Raises InvalidArgument for a URL of another form, and
    for a host that is neither a DNS name nor an IPv4 address in any spelling (``1.2.3.999``).
    """
    if not isinstance(url, str) or len(url) > MAX_URL_LENGTH or not _URL.fullmatch(url):
        raise InvalidArgument(
            "url must be an http:// or https:// URL with a host name or IPv4 address, "
            f"no user info or fragment, at most {MAX_URL_LENGTH} characters"
        )
    scheme, rest = url.split("://", 1)
    end = min((at for at in (rest.find("/"), rest.find("?")) if at >= 0), default=len(rest))
    authority, tail = rest[:end], rest[end:]
    spelled, _, port_text = authority.partition(":")
    spelled = spelled.lower()
    host, address = spelled, None
    if _ends_in_number(spelled):
        ip = _legacy_ipv4(spelled)
        if ip is None:
            raise InvalidArgument(
                f"url must have a valid host: {spelled[:64]!r} is neither a DNS name nor an "
                "IPv4 address"
            )
        host = address = str(ip)
    elif len(spelled) > 253:
        raise InvalidArgument("url must have a valid host: a DNS name has at most 253 characters")
    port = int(port_text) if port_text else 443 if scheme == "https" else 80
    canonical = f"{scheme}://{host}{':' + port_text if port_text else ''}{tail}"
    return Destination(canonical, scheme, host, port, address, spelled)


def _ends_in_number(host: str) -> bool:
    """The WHATWG URL rule: a host whose last label is a number is an IPv4 address (or none)."""
    last = host.rsplit(".", 1)[-1]
    if last[:2] == "0x":
        return all(char in "0123456789abcdef" for char in last[2:])
    return last.isdigit()


def _legacy_ipv4(host: str) -> ipaddress.IPv4Address | None:
    """``inet_aton``: one to four parts, each decimal, octal (0...) or hexadecimal (0x...);
    the last fills the bytes the others leave. None when it is no address."""
    parts = host.split(".")
    if len(parts) > 4:
        return None
    numbers = []
    for part in parts:
        if part[:2] == "0x":
            digits, base = part[2:], 16
        elif len(part) > 1 and part[0] == "0":
            digits, base = part[1:], 8
        else:
            digits, base = part, 10
        try:
            numbers.append(int(digits, base) if digits else 0)
        except ValueError:
            return None
        if not digits and base != 16 or len(digits) > 12:
            return None
    *head, last = numbers
    if any(number > 255 for number in head) or last >= 256 ** (4 - len(head)):
        return None
    value = last
    for place, number in enumerate(head):
        value += number << (8 * (3 - place))
    return ipaddress.IPv4Address(value)


def check_url(url: object, *, allow_private: bool = False, allow_metadata: bool = False) -> str:
    """An endpoint URL as registration accepts it, its host canonical (``destination``).
    Addresses the deliverer would refuse, in any spelling, and ``localhost`` are refused here
    already; names are resolved, and their addresses checked, at each attempt."""
    target = destination(url)
    kind = None
    if target.address is not None:
        kind = refusal(target.address)
    elif target.host == "localhost" or target.host.endswith(".localhost"):
        kind = LOOPBACK
    if not allowed(kind, allow_private=allow_private, allow_metadata=allow_metadata):
        assert kind is not None
        shown = target.spelled
        if target.address is not None and target.address != shown:
            shown += f" ({target.address})"
        raise DestinationRefused(f"{shown} is a {kind} address; {_why(kind)}")
    return target.url


# -- name lookups -------------------------------------------------------------------------------

Resolver = Callable[[str, int], Awaitable[list[str]]]
LOOKUP_TIMEOUT: Final = 5.0


class LookupTimedOut(OSError):
    """The resolver did not answer in time."""


class NoTurn(Exception):
    """No place to look a name up came in time; nothing was looked up."""


class Lookups:
    """The name lookups of one deliverer, so that one tenant's slow DNS holds up no other's.

    ``getaddrinfo`` blocks, so lookups run on ``threads`` threads of their own, never on
    asyncio's default executor, which everything else in the process shares (``resolver``,
    an async lookup, replaces them when given). A tenant has at most ``per_tenant`` lookups in
    progress, all tenants together at most ``threads``, and each lookup ``timeout`` seconds.
    A lookup keeps its place until it has really ended: one on a thread, which nothing can
    stop, holds its place past its timeout until the thread comes back, so a tenant whose
    names hang holds ``per_tenant`` threads at most, and the others stay free for the other
    tenants. The caller bounds the wait for a place (``NoTurn`` past it).
    """

    def __init__(
        self,
        resolver: Resolver | None = None,
        *,
        getaddrinfo: Callable[..., Any] | None = None,
        threads: int = 8,
        per_tenant: int = 2,
        timeout: float = LOOKUP_TIMEOUT,
    ) -> None:
        if not 1 <= per_tenant <= threads:
            raise InvalidArgument("lookups need 1 <= per_tenant <= threads")
        if timeout <= 0:
            raise InvalidArgument("the lookup timeout must be positive")
        self.resolver = resolver
        self.threads = threads
        self.per_tenant = per_tenant
        self.timeout = timeout
        self._getaddrinfo = getaddrinfo
        self._pool: ThreadPoolExecutor | None = None
        self._all = asyncio.Semaphore(threads)
        self._tenants: dict[str, asyncio.Semaphore] = {}

    def __repr__(self) -> str:
        return f"Lookups(threads={self.threads}, per_tenant={self.per_tenant})"

    async def resolve(
        self, tenant: str, host: str, port: int, *, wait: float
    ) -> tuple[list[str], float]:
        """Every address of ``host``, and the seconds spent waiting for a place (which are
        nobody's failure). Raises NoTurn when no place came within ``wait`` seconds,
        LookupTimedOut after ``timeout`` seconds of lookup, or what the lookup raised."""
        started = time.monotonic()
        release = await self._place(tenant, wait)
        waited = time.monotonic() - started
        work = self._start(host, port, release)
        try:
            done, _ = await asyncio.wait({work}, timeout=self.timeout)
        except asyncio.CancelledError:
            work.cancel()
            raise
        if not done:
            work.cancel()
            raise LookupTimedOut(f"the resolver gave no answer within {self.timeout:g} s")
        return work.result(), waited

    def close(self) -> None:
        """Let the threads go once their lookups end (a thread cannot be stopped)."""
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)
            self._pool = None

    async def _place(self, tenant: str, wait: float) -> Callable[[], None]:
        mine = self._tenants.get(tenant)
        if mine is None:
            mine = self._tenants[tenant] = asyncio.Semaphore(self.per_tenant)
        try:
            async with asyncio.timeout(max(wait, 0.0)):
                await mine.acquire()
                try:
                    await self._all.acquire()
                except BaseException:
                    mine.release()
                    raise
        except TimeoutError:
            raise NoTurn from None
        released = False

        def release() -> None:
            nonlocal released
            if not released:
                released = True
                self._all.release()
                mine.release()

        return release

    def _start(self, host: str, port: int, release: Callable[[], None]) -> asyncio.Future[Any]:
        """The lookup under way; ``release`` is called once it has ended, however it ends."""
        loop = asyncio.get_running_loop()
        if self.resolver is not None:
            task: asyncio.Future[Any] = asyncio.ensure_future(self.resolver(host, port))

            def ended(task: asyncio.Future[Any]) -> None:
                release()
                if not task.cancelled():
                    task.exception()  # retrieved: it is the caller's, or nobody's

            task.add_done_callback(ended)
            return task
        if self._pool is None:
            self._pool = ThreadPoolExecutor(self.threads, thread_name_prefix="webhook-lookup")
        job = self._pool.submit(self._lookup, host, port)

        def returned(_: Any) -> None:
            with contextlib.suppress(RuntimeError):  # the loop closed meanwhile
                loop.call_soon_threadsafe(release)

        job.add_done_callback(returned)
        return asyncio.wrap_future(job, loop=loop)

    def _lookup(self, host: str, port: int) -> list[str]:
        lookup = self._getaddrinfo or socket.getaddrinfo  # looked up now: tests replace it
        found = lookup(host, port, type=socket.SOCK_STREAM)
        return list(dict.fromkeys(str(info[4][0]) for info in found))


# -- records ------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Webhook:
    """A registered endpoint, as listed: never its secret."""

    id: str
    tenant: str
    url: str
    types: frozenset[str] | None  # None: every type
    state: str
    created_at: datetime
    cursor: str | None
    attempts: int
    failing_since: datetime | None
    next_attempt_at: datetime | None
    disabled_at: datetime | None
    disabled_reason: str | None

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "url": self.url,
            "types": None if self.types is None else sorted(self.types),
            "state": self.state,
            "createdAt": isoformat(self.created_at),
            "cursor": self.cursor,
            "failingSince": _iso(self.failing_since),
            "disabledAt": _iso(self.disabled_at),
            "disabledReason": self.disabled_reason,
        }


@dataclass(frozen=True, slots=True)
class Attempt:
    """One line of an endpoint's delivery log."""

    event_id: str
    outcome: str  # delivered, failed, or disabled (the endpoint gave up on after this)
    status: int | None  # the HTTP status, when there was an answer
    error: str | None
    duration_ms: float
    at: datetime

    def to_dict(self) -> dict[str, Any]:
        return {
            "eventId": self.event_id,
            "outcome": self.outcome,
            "status": self.status,
            "error": self.error,
            "durationMs": self.duration_ms,
            "at": isoformat(self.at),
        }


def _iso(moment: datetime | None) -> str | None:
    return None if moment is None else isoformat(moment)


class _Keys:
    def __init__(self, prefix: str) -> None:
        self.prefix = prefix

    def tenants(self) -> str:
        return f"{self.prefix}:webhook-tenants"

    def webhooks(self, tenant: str) -> str:
        return f"{self.prefix}:{{{tenant}}}:webhooks"

    def webhook(self, tenant: str, webhook_id: str) -> str:
        return f"{self.prefix}:{{{tenant}}}:webhook:{webhook_id}"

    def lease(self, tenant: str, webhook_id: str) -> str:
        return self.webhook(tenant, webhook_id) + ":lease"

    def log(self, tenant: str, webhook_id: str) -> str:
        return self.webhook(tenant, webhook_id) + ":log"


def _text(fields: Mapping[bytes, bytes], name: str) -> str | None:
    value = fields.get(name.encode())
    return None if value is None or value == b"" else value.decode()


def _moment(fields: Mapping[bytes, bytes], name: str) -> datetime | None:
    value = _text(fields, name)
    return None if value is None else from_ms(int(value))


def _webhook(tenant: str, webhook_id: str, fields: Mapping[bytes, bytes]) -> Webhook | None:
    url = _text(fields, "url")
    created = _moment(fields, "created")
    if url is None or created is None:
        return None  # not (or no longer) a whole registration
    kinds = _text(fields, "types")
    return Webhook(
        id=webhook_id,
        tenant=tenant,
        url=url,
        types=None if kinds is None else frozenset(kinds.split(",")),
        state=_text(fields, "state") or ENABLED,
        created_at=created,
        cursor=_text(fields, "cursor"),
        attempts=int(_text(fields, "attempts") or 0),
        failing_since=_moment(fields, "failing_since"),
        next_attempt_at=_moment(fields, "next_attempt"),
        disabled_at=_moment(fields, "disabled_at"),
        disabled_reason=_text(fields, "reason"),
    )


def _attempt(fields: Mapping[bytes, bytes]) -> Attempt:
    status = _text(fields, "status")
    return Attempt(
        event_id=_text(fields, "event") or "",
        outcome=_text(fields, "outcome") or "failed",
        status=None if status is None else int(status),
        error=_text(fields, "error"),
        duration_ms=float(_text(fields, "ms") or 0),
        at=_moment(fields, "at") or from_ms(0),
    )


class _Redis:
    """Plain commands on the store's client: each call, or pipeline, within one slot. Redis
    failures count in the store's ``sessionstore_redis_errors_total{kind}`` when it has
    metrics, as its own operations' do."""

    def __init__(self, store: AsyncSessionStore) -> None:
        self.store = store
        self.client = store.client
        self.keys = _Keys(store.config.prefix)

    def _count(self, error: BaseException) -> None:
        """One Redis failure, by its class: ``error``, or the one it was translated from."""
        if self.store.metrics is not None:
            cause = error.__cause__ if isinstance(error, StoreUnavailable) else None
            self.store.metrics.redis_failed(cause or error)

    async def call(self, *args: Any) -> Any:
        with _connection.translated(self._count):
            async with _connection.turn(self.client):
                return await self.client.execute_command(*args)

    async def pipeline(self, *commands: tuple[Any, ...]) -> list[Any]:
        """Commands of one slot, sent together and run in order (not as a transaction)."""
        cluster = _connection.is_cluster(self.client)
        with _connection.translated(self._count):
            async with _connection.turn(self.client):
                pipe = self.client.pipeline() if cluster else self.client.pipeline(False)
                for command in commands:
                    pipe.execute_command(*command)
                replies: list[Any] = await pipe.execute()
                return replies

    async def script(self, script: Script, keys: tuple[str, ...], *args: object) -> Any:
        """A script of one slot, through the store's driver (which loads it after NOSCRIPT)."""
        try:
            (reply,) = await self.store._run([operations.ScriptCall(script, keys, args)])
        except StoreUnavailable as error:
            self._count(error)
            raise
        return reply

    async def hash(self, tenant: str, webhook_id: str) -> dict[bytes, bytes]:
        fields = await self.call("HGETALL", self.keys.webhook(tenant, webhook_id))
        if isinstance(fields, list):  # a reply without redis-py's callback: flat pairs
            fields = dict(zip(fields[::2], fields[1::2], strict=True))
        return dict(fields)

    async def newest_event(self, tenant: str) -> str | None:
        # The store's own reading of the tenant's streams (what tail() starts after).
        return await self.store._drive("tail", self.store._core.newest_event(tenant))


# -- registration -------------------------------------------------------------------------------


class Webhooks:
    """Register, list and remove a tenant's endpoints, and read their delivery logs."""

    def __init__(
        self,
        store: AsyncSessionStore,
        *,
        allow_private: bool = False,
        allow_metadata: bool = False,
        clock: Callable[[], float] = time.time,
    ) -> None:
        """``allow_private``, ``allow_metadata``: which destinations registration accepts
        (``allowed``); give the deliverers the same."""
        self._redis = _Redis(store)
        self._keys = self._redis.keys
        self._allow_private = allow_private
        self._allow_metadata = allow_metadata
        self._clock = clock

    def __repr__(self) -> str:
        return f"Webhooks(prefix={self._keys.prefix!r})"

    async def add(
        self, tenant: str, url: str, *, types: Iterable[str] | None = None
    ) -> tuple[Webhook, str]:
        """Register an endpoint; returns it and its signing secret (shown this once).

        It receives the tenant's events from now on: those after the newest one stored now.
        """
        tenant = inputs.tenant(tenant)
        url = check_url(url, allow_private=self._allow_private, allow_metadata=self._allow_metadata)
        kinds = event_types(types)
        webhook_id = ID_PREFIX + random_base62(ID_LEN)
        secret = new_secret()
        now = int(self._clock() * 1000)
        cursor = await self._redis.newest_event(tenant) or "0-0-00"
        fields = {
            "url": url,
            "types": "" if kinds is None else ",".join(sorted(kinds)),
            "secret": secret,
            "state": ENABLED,
            "created": now,
            "cursor": cursor,
            "attempts": 0,
        }
        # The count, the record and the index entry in one step (webhook_add.lua), so that
        # registrations at once cannot pass the limit together; both keys are in the
        # tenant's slot. Then the tenant's entry on the deliverers' list (another slot): after
        # the index, so that a remove racing this puts it back (see remove).
        index = self._keys.webhooks(tenant)
        record = self._keys.webhook(tenant, webhook_id)
        added = await self._redis.script(
            scripts.WEBHOOK_ADD, (index, record), MAX_PER_TENANT, webhook_id, *_flat(fields.items())
        )
        if not added:
            raise TooManyWebhooks(f"a tenant has at most {MAX_PER_TENANT} webhooks")
        await self._redis.call("SADD", self._keys.tenants(), tenant)
        webhook = _webhook(tenant, webhook_id, _encoded(fields))
        assert webhook is not None
        return webhook, secret

    async def get(self, tenant: str, webhook_id: str) -> Webhook | None:
        tenant = inputs.tenant(tenant)
        if not isinstance(webhook_id, str) or not WEBHOOK_ID.fullmatch(webhook_id):
            return None
        listed = await self._redis.call("SISMEMBER", self._keys.webhooks(tenant), webhook_id)
        if not listed:
            return None
        return _webhook(tenant, webhook_id, await self._redis.hash(tenant, webhook_id))

    async def list(self, tenant: str) -> list[Webhook]:
        tenant = inputs.tenant(tenant)
        found = []
        for raw in sorted(await self._redis.call("SMEMBERS", self._keys.webhooks(tenant))):
            webhook_id = raw.decode()
            webhook = _webhook(tenant, webhook_id, await self._redis.hash(tenant, webhook_id))
            if webhook is not None:
                found.append(webhook)
        return sorted(found, key=lambda webhook: (webhook.created_at, webhook.id))

    async def remove(self, tenant: str, webhook_id: str) -> bool:
        """Unregister at once; a delivery in flight may still finish. False if unknown."""
        tenant = inputs.tenant(tenant)
        if not isinstance(webhook_id, str) or not WEBHOOK_ID.fullmatch(webhook_id):
            return False
        index = self._keys.webhooks(tenant)
        # Unlisted first, so a deliverer that writes after the DEL sees it is gone (Deliverer
        # ._record) and removes what it wrote.
        removed, *_ = await self._redis.pipeline(
            ("SREM", index, webhook_id),
            ("DEL", self._keys.webhook(tenant, webhook_id)),
            ("DEL", self._keys.log(tenant, webhook_id)),
            ("DEL", self._keys.lease(tenant, webhook_id)),
        )
        if not await self._redis.call("SCARD", index):
            # Off the deliverers' list; an add that raced this puts its tenant back.
            await self._redis.call("SREM", self._keys.tenants(), tenant)
            if await self._redis.call("SCARD", index):
                await self._redis.call("SADD", self._keys.tenants(), tenant)
        return bool(removed)

    async def log(
        self, tenant: str, webhook_id: str, *, limit: int = 100
    ) -> builtins.list[Attempt] | None:
        """The endpoint's latest delivery attempts, newest first; None if no such endpoint."""
        limit = inputs.limit(limit)
        if await self.get(tenant, webhook_id) is None:
            return None
        entries = await self._redis.call(
            "XREVRANGE", self._keys.log(tenant, webhook_id), "+", "-", "COUNT", limit
        )
        return [_attempt(_pairs(fields)) for _, fields in entries]


class TooManyWebhooks(InvalidArgument):
    """The tenant already has MAX_PER_TENANT webhooks."""


def _flat(items: Iterable[tuple[str, object]]) -> list[object]:
    return [part for pair in items for part in pair]


def _encoded(fields: Mapping[str, object]) -> dict[bytes, bytes]:
    return {name.encode(): str(value).encode() for name, value in fields.items()}


def _pairs(fields: Any) -> dict[bytes, bytes]:
    if isinstance(fields, dict):
        return fields
    return dict(zip(fields[::2], fields[1::2], strict=True))


# -- delivery -----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Backoff:
    """Seconds before retry ``n`` (1, 2, ...): ``first``, doubling, at most ``cap``."""

    first: float = 5.0
    cap: float = 3600.0

    def delay(self, failures: int) -> float:
        return float(min(self.cap, self.first * 2 ** min(failures - 1, 40)))


class _Lease:
    """One deliverer's hold on one endpoint (the module docstring says why it is safe)."""

    def __init__(self, redis: _Redis, key: str, token: str, ttl: float, margin: float) -> None:
        self._redis = redis
        self._key = key
        self._token = token.encode()
        self._ttl = ttl
        self._margin = margin
        self._renewed = 0.0
        self._valid_until = 0.0

    async def acquire(self) -> bool:
        started = time.monotonic()
        taken = await self._redis.call("SET", self._key, self._token, "NX", "PX", self._ms)
        if taken:
            self._held_from(started)
        return bool(taken)

    async def keep(self) -> bool:
        """Ours, with at least ``margin`` seconds left: renewed once a third of the TTL has
        passed or less than ``margin`` is left; False when it may have lapsed."""
        now = time.monotonic()
        if now >= self._valid_until - self._ttl / 10:
            return False
        if now - self._renewed < self._ttl / 3 and self._valid_until - now >= self._margin:
            return True
        if await self._redis.call("GET", self._key) != self._token:
            return False
        # Ours when read, with a tenth of the TTL left at least: it cannot lapse before this.
        await self._redis.call("PEXPIRE", self._key, self._ms)
        self._held_from(now)
        return True

    def left(self) -> float:
        """Seconds before this holder gives the lease up as possibly lapsed (``keep``)."""
        return self._valid_until - self._ttl / 10 - time.monotonic()

    async def release(self) -> None:
        if time.monotonic() >= self._valid_until - self._ttl / 10:
            return  # it may have passed to another deliverer already: let it expire
        if await self._redis.call("GET", self._key) == self._token:
            await self._redis.call("DEL", self._key)
        self._valid_until = 0.0

    @property
    def _ms(self) -> int:
        return int(self._ttl * 1000)

    def _held_from(self, moment: float) -> None:
        self._renewed = moment
        self._valid_until = moment + self._ttl


class _Http:
    """The HTTP client of one endpoint's turn, made at its first attempt: connections are
    never shared with another endpoint (each is made to the address checked for its name)."""

    def __init__(self, timeout: float) -> None:
        self._timeout = timeout
        self._client: httpx.AsyncClient | None = None

    async def client(self) -> httpx.AsyncClient:
        if self._client is None:
            import httpx

            self._client = httpx.AsyncClient(
                follow_redirects=False, timeout=self._timeout, trust_env=False
            )
        return self._client

    async def aclose(self) -> None:
        if self._client is not None:
            await self._client.aclose()


class _Step:
    MORE = "more"  # delivered a page and there may be more at once
    IDLE = "idle"  # nothing (settled) to deliver now
    WAIT = "wait"  # a retry is due later, or no turn to look the name up yet
    STOP = "stop"  # gone, disabled, or the lease lost


# An attempt's outcome, as metrics count it (metrics.DELIVERY_OUTCOMES); the log says
# delivered or failed. What the tenant's log says of a destination problem is one of the two
# texts below: never an address, nor what a name resolves to (the server's log has those).
DELIVERED: Final = "delivered"
FAILED: Final = "failed"
REFUSED: Final = "refused"
UNRESOLVED: Final = "unresolved"
TIMED_OUT: Final = "timeout"
DESTINATION_REFUSED: Final = "destination refused"
CANNOT_RESOLVE: Final = "cannot resolve"
assert {DELIVERED, FAILED, REFUSED, UNRESOLVED, TIMED_OUT} == set(DELIVERY_OUTCOMES)


class _Failure(Exception):
    """A failed attempt: its outcome, and the error its log shows the tenant."""

    def __init__(self, outcome: str, error: str) -> None:
        super().__init__(error)
        self.outcome = outcome
        self.error = error


class _LeaseLost(Exception):
    """The lease may have lapsed before the request could go: nothing was sent."""


class Deliverer:
    """Deliver every tenant's events to their webhooks until cancelled (``run``).

    ``clock`` (unix seconds) decides timestamps, retries and the 24 hours; tests move it.
    ``allow_private`` permits private and loopback destinations; ``allow_metadata`` link-local
    and cloud metadata ones (``allowed``). Names are looked up by ``lookups`` (``Lookups``:
    threads of the deliverer's own, bounded per tenant), or by ``resolver``, an async lookup,
    within the same bounds. ``metrics``: a ``DeliveryMetrics`` to count attempts in.
    """

    def __init__(
        self,
        store: AsyncSessionStore,
        *,
        allow_private: bool = False,
        allow_metadata: bool = False,
        clock: Callable[[], float] = time.time,
        poll: float = 1.0,
        timeout: float = 10.0,
        backoff: Backoff | None = None,
        give_up_after: timedelta = GIVE_UP_AFTER,
        lease_ttl: float | None = None,
        settle: float = 2.0,
        batch: int = 100,
        resolver: Resolver | None = None,
        lookups: Lookups | None = None,
        metrics: DeliveryMetrics | None = None,
        name: str | None = None,
    ) -> None:
        self._redis = _Redis(store)
        self._keys = self._redis.keys
        self._store = store
        self.allow_private = allow_private
        self.allow_metadata = allow_metadata
        self.clock = clock
        self.poll = poll
        self.timeout = timeout
        self.backoff = backoff or Backoff()
        self.give_up_after = give_up_after.total_seconds()
        # Renewed before each attempt when a third has passed or 1.5 attempts are left.
        self.lease_ttl = max(30.0, 3 * timeout) if lease_ttl is None else lease_ttl
        if self.lease_ttl < 3 * timeout:
            raise InvalidArgument("lease_ttl must be at least three attempt timeouts")
        self.settle = settle
        self.batch = inputs.limit(batch)
        if resolver is not None and lookups is not None:
            raise InvalidArgument("give a resolver or lookups, not both")
        self.lookups = lookups or Lookups(resolver, timeout=min(LOOKUP_TIMEOUT, timeout))
        self.metrics = metrics
        self.name = name or f"{socket.gethostname()}:{os.getpid()}:{random_base62(8)}"
        self._workers: dict[tuple[str, str], asyncio.Task[None]] = {}
        # Endpoints whose turn ended on an unforeseen error: (errors in a row, not before).
        self._paused: dict[tuple[str, str], tuple[int, float]] = {}
        self.attempts = 0  # attempts made, all endpoints together

    def __repr__(self) -> str:
        return f"Deliverer(name={self.name!r})"

    # -- running --------------------------------------------------------------------------------

    async def run(self) -> None:
        """Every ``poll`` seconds (jittered), lease each free endpoint and bring it up to date,
        one task per endpoint; until cancelled."""
        try:
            while True:
                try:
                    await self._start_workers()
                except StoreUnavailable as error:
                    log.warning("webhooks: %s", error)
                _unless_cancelled()
                await asyncio.sleep(self.poll * (0.5 + secrets.randbelow(1000) / 1000))
        finally:
            await self._stop_workers()
            self.lookups.close()

    @contextlib.asynccontextmanager
    async def running(self) -> AsyncIterator[Deliverer]:
        """``run`` in a task for the duration of the block (``serve`` uses it)."""
        task = asyncio.create_task(self.run(), name=f"webhooks {self.name}")
        try:
            yield self
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def run_once(self) -> int:
        """One pass in this task: each free endpoint leased, brought up to date as far as it
        goes now, and released. Returns how many attempts were made (for tests and tools)."""
        before = self.attempts
        for tenant, webhook_id in await self._endpoints():
            lease = self._lease(tenant, webhook_id)
            if await lease.acquire():
                await self._work(tenant, webhook_id, lease)
        return self.attempts - before

    async def _endpoints(self) -> list[tuple[str, str]]:
        """Every enabled endpoint of every tenant with webhooks."""
        found = []
        for raw in sorted(await self._redis.call("SMEMBERS", self._keys.tenants())):
            tenant = raw.decode()
            ids = sorted(
                item.decode()
                for item in await self._redis.call("SMEMBERS", self._keys.webhooks(tenant))
            )
            if not ids:
                continue
            states = await self._redis.pipeline(
                *(("HGET", self._keys.webhook(tenant, webhook_id), "state") for webhook_id in ids)
            )
            found += [
                (tenant, webhook_id)
                for webhook_id, state in zip(ids, states, strict=True)
                if state == ENABLED.encode()
            ]
        return found

    async def _start_workers(self) -> None:
        for key, task in list(self._workers.items()):
            if task.done():
                del self._workers[key]
                if not task.cancelled() and task.exception() is not None:
                    log.error("webhooks: %s %s failed", *key, exc_info=task.exception())
        now = time.monotonic()
        for tenant, webhook_id in await self._endpoints():
            key = (tenant, webhook_id)
            if key in self._workers or now < self._paused.get(key, (0, 0.0))[1]:
                continue
            lease = self._lease(tenant, webhook_id)
            if await lease.acquire():
                self._workers[key] = asyncio.create_task(
                    self._work(tenant, webhook_id, lease), name=f"webhook {webhook_id}"
                )

    async def _stop_workers(self) -> None:
        workers = list(self._workers.values())
        self._workers.clear()
        for task in workers:
            task.cancel()
        await asyncio.gather(*workers, return_exceptions=True)

    async def _work(self, tenant: str, webhook_id: str, lease: _Lease) -> None:
        """Deliver to one endpoint while there is something to send now, then give the lease
        back: whichever deliverer polls next continues (from the cursor in Redis)."""
        key = (tenant, webhook_id)
        http = _Http(self.timeout)
        try:
            while await self._step(tenant, webhook_id, lease, http) == _Step.MORE:
                _unless_cancelled()
                if not await lease.keep():
                    break
            self._paused.pop(key, None)
        except StoreUnavailable as error:
            log.warning("webhooks: %s %s: %s", tenant, webhook_id, error)
        except Exception:
            # Not an attempt's failure (those are logged and retried): a record or a bug no
            # code foresaw. This endpoint waits, backing off, and the others go on.
            errors = self._paused.get(key, (0, 0.0))[0] + 1
            delay = self.backoff.delay(errors)
            self._paused[key] = (errors, time.monotonic() + delay)
            log.warning(
                "webhooks: %s %s: delivery stopped by an error; its next turn in %g s",
                tenant,
                webhook_id,
                delay,
                exc_info=True,
            )
        finally:
            await http.aclose()
            with contextlib.suppress(StoreUnavailable):
                await lease.release()

    def _lease(self, tenant: str, webhook_id: str) -> _Lease:
        return _Lease(
            self._redis,
            self._keys.lease(tenant, webhook_id),
            self.name,
            self.lease_ttl,
            margin=1.5 * self.timeout,
        )

    # -- one endpoint ---------------------------------------------------------------------------

    async def _step(
        self,
        tenant: str,
        webhook_id: str,
        lease: _Lease,
        http: _Http,
    ) -> str:
        """Deliver what is due to one endpoint, up to a page of events, stopping at a failure."""
        fields = await self._redis.hash(tenant, webhook_id)
        webhook = _webhook(tenant, webhook_id, fields)
        if webhook is None or webhook.state != ENABLED:
            return _Step.STOP
        now = self.clock()
        if webhook.next_attempt_at is not None and now < webhook.next_attempt_at.timestamp():
            return _Step.WAIT
        secret = _text(fields, "secret") or ""
        settled = int((now - self.settle) * 1000)
        page = await self._store.events(tenant, after=webhook.cursor, limit=self.batch)
        passed_over = None  # the last event this endpoint does not take, since the cursor moved
        step = _Step.MORE if page.has_more else _Step.IDLE
        for event in page.data:
            if _event_ms(event.id) > settled:
                step = _Step.IDLE  # too recent to be sure nothing will be stored before it
                break
            if webhook.types is not None and event.type not in webhook.types:
                passed_over = event.id
                continue
            _unless_cancelled()
            if not await lease.keep():
                return _Step.STOP
            try:
                attempt, outcome = await self._attempt(webhook, secret, event, lease, http)
            except NoTurn:
                # No place to look the name up in time (its tenant's other lookups hang, or
                # every thread is busy): nothing was tried, so nothing counts against it.
                log.debug("webhooks: %s %s: no turn to look its name up", tenant, webhook_id)
                return _Step.WAIT
            except _LeaseLost:
                return _Step.STOP
            self.attempts += 1
            self._count(outcome, event)
            if attempt.outcome != DELIVERED:
                return await self._failed(webhook, attempt)
            passed_over = None
            if not await self._record(tenant, webhook_id, attempt, cursor=event.id, reset=True):
                return _Step.STOP
        if passed_over is not None and not await self._record(
            tenant, webhook_id, cursor=passed_over
        ):
            return _Step.STOP
        return step

    def _count(self, outcome: str, event: Event) -> None:
        if self.metrics is not None:
            self.metrics.attempt(outcome)
            if outcome == DELIVERED:
                self.metrics.delivered(self.clock() - event.at.timestamp())

    async def _attempt(
        self, webhook: Webhook, secret: str, event: Event, lease: _Lease, http: _Http
    ) -> tuple[Attempt, str]:
        """One attempt, and its outcome (metrics.DELIVERY_OUTCOMES). Whatever goes wrong in it
        is a failed attempt, never an error out of here, except NoTurn and _LeaseLost (before
        anything was sent: no attempt at all)."""
        import httpx

        started = time.perf_counter()
        waited = 0.0  # for a place to look the name up: not the endpoint's time
        status: int | None = None
        outcome, error = DELIVERED, None
        try:
            target = self._destination(webhook)
            addresses, waited = await self._addresses(webhook, target, lease)
            if not await lease.keep():
                raise _LeaseLost
            body = payload(event)
            timestamp = int(self.clock())
            headers = {
                "content-type": "application/json",
                "user-agent": "sessionstore-webhooks",
                "webhook-id": event.id,
                "webhook-timestamp": str(timestamp),
                "webhook-signature": sign(secret, event.id, timestamp, body),
            }
            client = await http.client()
            async with asyncio.timeout(self.timeout):
                request = _request(client, target, addresses[0], headers, body)
                response = await client.send(request, stream=True)
                await response.aclose()  # the answer's status is all that counts
                status = response.status_code
            if not 200 <= status < 300:
                outcome = FAILED
                error = f"HTTP {status}" + (" (redirects are not followed)" if status < 400 else "")
        except (NoTurn, _LeaseLost):
            raise
        except _Failure as failure:
            outcome, error = failure.outcome, failure.error
        except (TimeoutError, httpx.TimeoutException):
            outcome, error = TIMED_OUT, f"no answer within {self.timeout:g} s"
        except (httpx.HTTPError, OSError) as failure:
            # Its text can name the address connected to: the server's log only.
            outcome, error = FAILED, _connection_error(failure)
            log.info("webhooks: %s %s: %r", webhook.tenant, webhook.id, failure)
        except Exception:
            outcome, error = FAILED, "internal error"
            log.warning(
                "webhooks: %s %s: an attempt failed on an error",
                webhook.tenant,
                webhook.id,
                exc_info=True,
            )
        elapsed = round(max(0.0, time.perf_counter() - started - waited) * 1000, 1)
        attempt = Attempt(
            event_id=event.id,
            outcome=DELIVERED if error is None else FAILED,
            status=status,
            error=error,
            duration_ms=elapsed,
            at=from_ms(int(self.clock() * 1000)),
        )
        return attempt, outcome

    def _destination(self, webhook: Webhook) -> Destination:
        """The endpoint's URL as registration reads it now (a record may be older)."""
        try:
            return destination(webhook.url)
        except InvalidArgument as refused:
            log.warning(
                "webhooks: %s %s: its URL is refused: %s", webhook.tenant, webhook.id, refused
            )
            raise _Failure(REFUSED, DESTINATION_REFUSED) from None

    async def _addresses(
        self, webhook: Webhook, target: Destination, lease: _Lease
    ) -> tuple[list[str], float]:
        """The addresses to connect to, every one of them checked, and the seconds spent
        waiting for a place to look the name up."""
        tenant, webhook_id, host = webhook.tenant, webhook.id, target.host
        if target.address is not None:
            addresses, waited = [target.address], 0.0
        else:
            # Wait for a place no longer than the lease allows a lookup after it.
            wait = lease.left() - self.lookups.timeout
            try:
                addresses, waited = await self.lookups.resolve(tenant, host, target.port, wait=wait)
            except NoTurn:
                raise
            except Exception as error:
                log.warning(
                    "webhooks: %s %s: cannot resolve %s: %s",
                    tenant,
                    webhook_id,
                    host,
                    error,
                    exc_info=not isinstance(error, OSError),
                )
                raise _Failure(UNRESOLVED, CANNOT_RESOLVE) from None
            if not addresses:
                log.warning("webhooks: %s %s: %s has no address", tenant, webhook_id, host)
                raise _Failure(UNRESOLVED, CANNOT_RESOLVE)
        for address in addresses:
            try:
                kind = refusal(address)
            except ValueError:
                kind = PRIVATE  # no address at all: a resolver's bug
            if not allowed(
                kind, allow_private=self.allow_private, allow_metadata=self.allow_metadata
            ):
                assert kind is not None
                what = f"{host} is" if target.address else f"{host} resolves to {address},"
                log.warning(
                    "webhooks: %s %s: %s a %s address: refused (%s would allow it)",
                    tenant,
                    webhook_id,
                    what,
                    kind,
                    _flags(kind),
                )
                raise _Failure(REFUSED, DESTINATION_REFUSED)
        return addresses, waited

    async def _failed(self, webhook: Webhook, attempt: Attempt) -> str:
        now = self.clock()
        since = webhook.failing_since.timestamp() if webhook.failing_since else now
        failures = webhook.attempts + 1
        if now - since >= self.give_up_after:
            reason = (
                f"failing since {isoformat(from_ms(int(since * 1000)))}, for more than "
                f"{self.give_up_after / 3600:g} hours; last: {attempt.error}"
            )
            log.warning("webhooks: %s %s disabled: %s", webhook.tenant, webhook.id, reason)
            if self.metrics is not None:
                self.metrics.endpoint_disabled()
            disabled = Attempt(attempt.event_id, DISABLED, None, reason, 0.0, attempt.at)
            await self._record(
                webhook.tenant,
                webhook.id,
                attempt,
                disabled,
                state=DISABLED,
                disabled_at=int(now * 1000),
                reason=reason,
                attempts=failures,
            )
            return _Step.STOP
        log.info("webhooks: %s %s: %s", webhook.tenant, webhook.id, attempt.error)
        await self._record(
            webhook.tenant,
            webhook.id,
            attempt,
            failing_since=int(since * 1000),
            attempts=failures,
            next_attempt=int((now + self.backoff.delay(failures)) * 1000),
        )
        return _Step.WAIT

    async def _record(
        self,
        tenant: str,
        webhook_id: str,
        *attempts: Attempt,
        reset: bool = False,
        **fields: object,
    ) -> bool:
        """Log attempts and update the endpoint; False (and nothing left) if it was removed."""
        record = self._keys.webhook(tenant, webhook_id)
        log_key = self._keys.log(tenant, webhook_id)
        commands: list[tuple[Any, ...]] = [
            ("XADD", log_key, "MAXLEN", "~", LOG_LENGTH, "*", *_flat(_log_fields(attempt)))
            for attempt in attempts
        ]
        if reset:
            fields["attempts"] = 0
            commands.append(("HDEL", record, "failing_since", "next_attempt"))
        commands.append(("HSET", record, *_flat(fields.items())))
        commands.append(("SISMEMBER", self._keys.webhooks(tenant), webhook_id))
        *_, listed = await self._redis.pipeline(*commands)
        if not listed:
            # Removed while this was in flight: remove what this just wrote, too.
            await self._redis.pipeline(("DEL", record), ("DEL", log_key))
            return False
        return True


def _request(
    http: httpx.AsyncClient,
    target: Destination,
    address: str,
    headers: dict[str, str],
    body: bytes,
) -> httpx.Request:
    """The POST, sent to ``address`` (checked just now), with the name kept for Host and TLS."""
    import httpx

    url = httpx.URL(target.url)
    sni = target.scheme == "https" and target.address is None
    return http.build_request(
        "POST",
        url.copy_with(host=address),
        headers={**headers, "host": url.netloc.decode("ascii")},
        content=body,
        extensions={"sni_hostname": target.host} if sni else {},
    )


def _connection_error(failure: BaseException) -> str:
    """What the tenant's log says of a failed connection or exchange: no address, no port."""
    import httpx

    cause: BaseException | None = failure
    for _ in range(8):  # a chain is short; a cycle in one must not hold this up
        if cause is None:
            break
        if isinstance(cause, ssl.SSLError):
            return f"cannot connect: TLS {cause.reason or 'error'}"  # an OpenSSL reason code
        cause = cause.__cause__ or cause.__context__
    if isinstance(failure, httpx.ConnectError | OSError):
        return "cannot connect"
    return type(failure).__name__  # RemoteProtocolError, ReadError, ...


def _unless_cancelled() -> None:
    """Stop here if this task was cancelled. Python 3.11's asyncio.wait_for, which redis-py
    sends commands with, returns normally when a cancellation arrives just as the command
    completes; the task still counts the request (``cancelling()``), so it is honoured here,
    where work would otherwise go on (a deliverer stopped would keep delivering)."""
    task = asyncio.current_task()
    if task is not None and task.cancelling():
        raise asyncio.CancelledError


def _log_fields(attempt: Attempt) -> Iterable[tuple[str, object]]:
    return [
        ("event", attempt.event_id),
        ("outcome", attempt.outcome),
        ("status", "" if attempt.status is None else attempt.status),
        ("error", attempt.error or ""),
        ("ms", attempt.duration_ms),
        ("at", int(attempt.at.timestamp() * 1000)),
    ]


def _event_ms(event_id: str) -> int:
    return int(event_id.split("-", 1)[0])
