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
call below touches one slot, and none needs a script):

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

Outbound safety. Each attempt resolves the endpoint's host, refuses it when any address is
private, loopback, link-local or otherwise not global (unless the operator allows private
destinations), then connects to the address it checked (so DNS cannot change in between),
with the name kept for Host and TLS. Redirects are never followed (a 3xx is a failed attempt),
and an attempt lasts at most ``timeout`` seconds.

Failures. A failed attempt is retried after 5 s, doubling up to an hour, with the same event:
nothing later is sent before it. An endpoint failing for 24 hours is disabled, and its log says
so. Every attempt is in the endpoint's log: event id, status code or error, duration, time.
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
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, Final

from redis.exceptions import RedisError

from . import connection, inputs
from .errors import InvalidArgument, StoreUnavailable
from .events import Event
from .events import types as event_types
from .model import from_ms, isoformat
from .tokens import random_base62

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

Resolver = Callable[[str, int], Awaitable[list[str]]]


async def resolve(host: str, port: int) -> list[str]:
    """Every address the host resolves to (getaddrinfo, in the event loop's executor)."""
    found = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return list(dict.fromkeys(str(info[4][0]) for info in found))


def refusal(address: str) -> str | None:
    """Why an address is no destination without the operator's allowance, or None."""
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    if ip.is_loopback:
        return "loopback"
    if ip.is_link_local:
        return "link-local"
    if ip.is_private or not ip.is_global or ip.is_multicast:
        return "private or reserved"
    return None


def check_url(url: object, *, allow_private: bool = False) -> str:
    """An endpoint URL as registration accepts it; literal private addresses and ``localhost``
    are refused here already (names are resolved, and checked, at each attempt)."""
    if not isinstance(url, str) or len(url) > MAX_URL_LENGTH or not _URL.fullmatch(url):
        raise InvalidArgument(
            "url must be an http:// or https:// URL with a host name or IPv4 address, "
            f"no user info or fragment, at most {MAX_URL_LENGTH} characters"
        )
    if not allow_private:
        host = url.split("://", 1)[1].split("/", 1)[0].split("?", 1)[0].rsplit(":", 1)[0]
        host = host.lower()
        why = "loopback" if host == "localhost" or host.endswith(".localhost") else None
        with contextlib.suppress(ValueError):
            why = refusal(host)
        if why is not None:
            raise DestinationRefused(
                f"{host} is a {why} address; this server delivers only to public ones "
                "unless its operator allows private destinations"
            )
    return url


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


@contextlib.contextmanager
def _translated() -> Any:
    try:
        yield
    except RedisError as error:
        raise connection.translate(error) from error


class _Redis:
    """Plain commands on the store's client: each call, or pipeline, within one slot."""

    def __init__(self, store: AsyncSessionStore) -> None:
        self.store = store
        self.client = store.client
        self.keys = _Keys(store.config.prefix)

    async def call(self, *args: Any) -> Any:
        with _translated():
            async with connection.turn(self.client):
                return await self.client.execute_command(*args)

    async def pipeline(self, *commands: tuple[Any, ...]) -> list[Any]:
        """Commands of one slot, sent together and run in order (not as a transaction)."""
        cluster = connection.is_cluster(self.client)
        with _translated():
            async with connection.turn(self.client):
                pipe = self.client.pipeline() if cluster else self.client.pipeline(False)
                for command in commands:
                    pipe.execute_command(*command)
                replies: list[Any] = await pipe.execute()
                return replies

    async def hash(self, tenant: str, webhook_id: str) -> dict[bytes, bytes]:
        fields = await self.call("HGETALL", self.keys.webhook(tenant, webhook_id))
        if isinstance(fields, list):  # a reply without redis-py's callback: flat pairs
            fields = dict(zip(fields[::2], fields[1::2], strict=True))
        return dict(fields)

    async def newest_event(self, tenant: str) -> str | None:
        # The store's own reading of the tenant's streams (what tail() starts after).
        return await self.store._drive(self.store._core.newest_event(tenant))


# -- registration -------------------------------------------------------------------------------


class Webhooks:
    """Register, list and remove a tenant's endpoints, and read their delivery logs."""

    def __init__(
        self,
        store: AsyncSessionStore,
        *,
        allow_private: bool = False,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._redis = _Redis(store)
        self._keys = self._redis.keys
        self._allow_private = allow_private
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
        url = check_url(url, allow_private=self._allow_private)
        kinds = event_types(types)
        if await self._redis.call("SCARD", self._keys.webhooks(tenant)) >= MAX_PER_TENANT:
            raise TooManyWebhooks(f"a tenant has at most {MAX_PER_TENANT} webhooks")
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
        # The whole record first, then the index entries: a crash in between leaves a record
        # that nothing lists or delivers to, never a listed id without its record.
        await self._redis.call(
            "HSET", self._keys.webhook(tenant, webhook_id), *_flat(fields.items())
        )
        await self._redis.call("SADD", self._keys.webhooks(tenant), webhook_id)
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
    WAIT = "wait"  # a retry is due later
    STOP = "stop"  # gone, disabled, or the lease lost


class Deliverer:
    """Deliver every tenant's events to their webhooks until cancelled (``run``).

    ``clock`` (unix seconds) decides timestamps, retries and the 24 hours; tests move it.
    ``allow_private`` permits private, loopback and link-local destinations.
    """

    def __init__(
        self,
        store: AsyncSessionStore,
        *,
        allow_private: bool = False,
        clock: Callable[[], float] = time.time,
        poll: float = 1.0,
        timeout: float = 10.0,
        backoff: Backoff | None = None,
        give_up_after: timedelta = GIVE_UP_AFTER,
        lease_ttl: float | None = None,
        settle: float = 2.0,
        batch: int = 100,
        resolver: Resolver = resolve,
        name: str | None = None,
    ) -> None:
        self._redis = _Redis(store)
        self._keys = self._redis.keys
        self._store = store
        self.allow_private = allow_private
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
        self.resolver = resolver
        self.name = name or f"{socket.gethostname()}:{os.getpid()}:{random_base62(8)}"
        self._workers: dict[tuple[str, str], asyncio.Task[None]] = {}
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
        for tenant, webhook_id in await self._endpoints():
            if (tenant, webhook_id) in self._workers:
                continue
            lease = self._lease(tenant, webhook_id)
            if await lease.acquire():
                self._workers[(tenant, webhook_id)] = asyncio.create_task(
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
        http = _Http(self.timeout)
        try:
            while await self._step(tenant, webhook_id, lease, http) == _Step.MORE:
                _unless_cancelled()
                if not await lease.keep():
                    break
        except StoreUnavailable as error:
            log.warning("webhooks: %s %s: %s", tenant, webhook_id, error)
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
            self.attempts += 1
            attempt = await self._attempt(webhook, secret, event, await http.client())
            if attempt.outcome != "delivered":
                return await self._failed(webhook, attempt)
            passed_over = None
            if not await self._record(tenant, webhook_id, attempt, cursor=event.id, reset=True):
                return _Step.STOP
        if passed_over is not None and not await self._record(
            tenant, webhook_id, cursor=passed_over
        ):
            return _Step.STOP
        return step

    async def _attempt(
        self, webhook: Webhook, secret: str, event: Event, http: httpx.AsyncClient
    ) -> Attempt:
        import httpx

        body = payload(event)
        timestamp = int(self.clock())
        headers = {
            "content-type": "application/json",
            "user-agent": "sessionstore-webhooks",
            "webhook-id": event.id,
            "webhook-timestamp": str(timestamp),
            "webhook-signature": sign(secret, event.id, timestamp, body),
        }
        started = time.perf_counter()
        status: int | None = None
        error: str | None = None
        try:
            async with asyncio.timeout(self.timeout):
                request = await self._request(http, webhook.url, headers, body)
                response = await http.send(request, stream=True)
                await response.aclose()  # the answer's status is all that counts
                status = response.status_code
            if not 200 <= status < 300:
                error = f"HTTP {status}" + (" (redirects are not followed)" if status < 400 else "")
        except DestinationRefused as refused:
            error = str(refused)
        except (TimeoutError, httpx.TimeoutException):
            error = f"no answer within {self.timeout:g} s"
        except (httpx.HTTPError, OSError) as failure:
            error = f"{type(failure).__name__}: {failure}"[:300]
        elapsed = round((time.perf_counter() - started) * 1000, 1)
        return Attempt(
            event_id=event.id,
            outcome="delivered" if error is None else "failed",
            status=status,
            error=error,
            duration_ms=elapsed,
            at=from_ms(int(self.clock() * 1000)),
        )

    async def _request(
        self, http: httpx.AsyncClient, url: str, headers: dict[str, str], body: bytes
    ) -> httpx.Request:
        """The POST, sent to an address of the host that was checked just now."""
        import httpx

        target = httpx.URL(url)
        host = target.host
        port = target.port or (443 if target.scheme == "https" else 80)
        try:
            addresses = await self.resolver(host, port)
        except OSError as error:
            raise DestinationRefused(f"cannot resolve {host}: {error}") from None
        if not addresses:
            raise DestinationRefused(f"{host} has no address")
        if not self.allow_private:
            for address in addresses:
                why = refusal(address)
                if why is not None:
                    raise DestinationRefused(
                        f"{host} resolves to {address}, a {why} address; private destinations "
                        "are not allowed (--allow-private-destinations)"
                    )
        extensions = {"sni_hostname": host} if target.scheme == "https" else {}
        return http.build_request(
            "POST",
            target.copy_with(host=addresses[0]),
            headers={**headers, "host": target.netloc.decode("ascii")},
            content=body,
            extensions=extensions,
        )

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
