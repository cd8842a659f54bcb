"""Where a webhook may be delivered: endpoint URLs, the addresses refused, and name lookups.

One parser (``destination``) reads endpoint URLs at registration (``check_url``) and at each
attempt, and makes the host canonical: a host ending in a number is an IPv4 address in any
spelling ``inet_aton`` takes (``127.1``, ``0177.0.0.1``, ``2130706433``), or no host at all.
Each attempt resolves the host and refuses it when any address is private, loopback or
otherwise not global (unless the operator allows private destinations) or link-local or a
cloud metadata address (unless the operator allows those, separately); an IPv6 address
carrying an IPv4 one (mapped, NAT64, 6to4, Teredo, ...) is judged by that too (``refusal``,
``allowed``). The deliverer then connects to the address it checked (so DNS cannot change in
between), with the name kept for Host and TLS.

Name lookups (``Lookups``) run on a deliverer's own threads, never asyncio's shared default
executor, at most two at once per tenant and eight in all, each within its own timeout (5 s at
most); a lookup that times out is a failed attempt ("cannot resolve"). Waiting for a place to
look a name up is not the endpoint's failure: when none comes in time (``NoTurn``), nothing is
attempted and the endpoint is tried again at the next poll. So a tenant whose names hang holds
two threads at most, and holds up no other tenant.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import re
import socket
import time
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Final

from ..errors import InvalidArgument

__all__ = [
    "ALLOW_METADATA_FLAG",
    "ALLOW_PRIVATE_FLAG",
    "LINK_LOCAL",
    "LOOKUP_TIMEOUT",
    "LOOPBACK",
    "MAX_URL_LENGTH",
    "METADATA",
    "NAT64_LOCAL",
    "PRIVATE",
    "URL_PATTERN",
    "Destination",
    "DestinationRefused",
    "LookupTimedOut",
    "Lookups",
    "NoTurn",
    "Resolver",
    "allowed",
    "check_url",
    "destination",
    "flags_allowing",
    "refusal",
]

MAX_URL_LENGTH: Final = 2048

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


# -- addresses ----------------------------------------------------------------------------------

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


def flags_allowing(kind: str) -> str:
    """The operator's flag(s) that would allow an address of this kind (``refusal``)."""
    if kind in (LINK_LOCAL, METADATA):
        return ALLOW_METADATA_FLAG
    if kind == NAT64_LOCAL:
        return f"{ALLOW_PRIVATE_FLAG} and {ALLOW_METADATA_FLAG}"
    return ALLOW_PRIVATE_FLAG


def _why(kind: str) -> str:
    if kind in (LINK_LOCAL, METADATA):
        return (
            "link-local and cloud metadata addresses are refused even where private "
            "destinations are allowed, unless the server's operator allows them "
            f"({flags_allowing(kind)})"
        )
    return (
        "this server delivers only to public addresses unless its operator allows private "
        f"destinations ({flags_allowing(kind)})"
    )


# -- URLs ---------------------------------------------------------------------------------------


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
    already (DestinationRefused); names are resolved, and their addresses checked, at each
    attempt."""
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
