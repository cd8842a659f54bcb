"""One delivery attempt: the endpoint's addresses checked, the signed POST, and its outcome.

The deliverer (delivery.py) makes every attempt through ``attempt``. Whatever goes wrong in one
is a failed attempt, never an error out of it. What the tenant's log says of a destination
problem is "destination refused" or "cannot resolve": never an address, nor what a name
resolves to; the server's log has those.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import ssl
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Final, Protocol

from ..errors import InvalidArgument
from ..metrics import DELIVERY_OUTCOMES
from ..model import from_ms
from .destinations import (
    PRIVATE,
    Destination,
    Lookups,
    NoTurn,
    allowed,
    destination,
    flags_allowing,
    refusal,
)
from .registry import Attempt, Webhook
from .signing import payload, sign

if TYPE_CHECKING:
    import httpx

    from .._core.events import Event

__all__ = [
    "CANNOT_RESOLVE",
    "DELIVERED",
    "DESTINATION_REFUSED",
    "FAILED",
    "REFUSED",
    "TIMED_OUT",
    "UNRESOLVED",
    "Http",
    "LeaseLost",
    "Settings",
    "attempt",
]

log = logging.getLogger("sessionstore.webhooks")

# An attempt's outcome, as metrics count it (metrics.DELIVERY_OUTCOMES); the log says
# delivered or failed, and for a destination problem one of the two texts below.
DELIVERED: Final = "delivered"
FAILED: Final = "failed"
REFUSED: Final = "refused"
UNRESOLVED: Final = "unresolved"
TIMED_OUT: Final = "timeout"
DESTINATION_REFUSED: Final = "destination refused"
CANNOT_RESOLVE: Final = "cannot resolve"
assert {DELIVERED, FAILED, REFUSED, UNRESOLVED, TIMED_OUT} == set(DELIVERY_OUTCOMES)


class Settings(Protocol):
    """What an attempt reads of its deliverer (at the time of the attempt)."""

    allow_private: bool
    allow_metadata: bool
    timeout: float
    lookups: Lookups
    clock: Callable[[], float]


class Lease(Protocol):
    """What an attempt needs of the deliverer's lease (delivery.Lease): to still hold it, and
    how long it surely will."""

    async def keep(self) -> bool: ...

    def left(self) -> float: ...


class LeaseLost(Exception):
    """The lease may have lapsed before the request could go: nothing was sent."""


class _Failure(Exception):
    """A failed attempt: its outcome, and the error its log shows the tenant."""

    def __init__(self, outcome: str, error: str) -> None:
        super().__init__(error)
        self.outcome = outcome
        self.error = error


@functools.cache
def _tls() -> ssl.SSLContext:
    """The process's one context for verifying endpoints (httpx's default: the certifi bundle).
    Made once: loading the bundle costs about 30 ms of CPU, which every turn's new client
    would otherwise spend again; one context serves any number of connections."""
    import httpx

    return httpx.create_ssl_context()


class Http:
    """The HTTP client of one endpoint's turn, made at its first attempt: connections are
    never shared with another endpoint (each is made to the address checked for its name)."""

    def __init__(self, timeout: float) -> None:
        self._timeout = timeout
        self._client: httpx.AsyncClient | None = None

    async def client(self) -> httpx.AsyncClient:
        """The client, made now if this turn has none yet (no redirects, no proxy settings)."""
        if self._client is None:
            import httpx

            self._client = httpx.AsyncClient(
                follow_redirects=False, timeout=self._timeout, trust_env=False, verify=_tls()
            )
        return self._client

    async def aclose(self) -> None:
        """Close the client's connections, if it was made."""
        if self._client is not None:
            await self._client.aclose()


async def attempt(
    settings: Settings, webhook: Webhook, secret: str, event: Event, lease: Lease, http: Http
) -> tuple[Attempt, str]:
    """One attempt, and its outcome (metrics.DELIVERY_OUTCOMES). Whatever goes wrong in it
    is a failed attempt, never an error out of here, except NoTurn and LeaseLost (before
    anything was sent: no attempt at all)."""
    import httpx

    started = time.perf_counter()
    waited = 0.0  # for a place to look the name up: not the endpoint's time
    status: int | None = None
    outcome, error = DELIVERED, None
    try:
        target = _destination(webhook)
        addresses, waited = await _addresses(settings, webhook, target, lease)
        if not await lease.keep():
            raise LeaseLost
        status = await _post(settings, target, addresses[0], secret, event, http)
        if not 200 <= status < 300:
            outcome = FAILED
            error = f"HTTP {status}" + (" (redirects are not followed)" if status < 400 else "")
    except (NoTurn, LeaseLost):
        raise
    except _Failure as failure:
        outcome, error = failure.outcome, failure.error
    except (TimeoutError, httpx.TimeoutException):
        outcome, error = TIMED_OUT, f"no answer within {settings.timeout:g} s"
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
    done = Attempt(
        event_id=event.id,
        outcome=DELIVERED if error is None else FAILED,
        status=status,
        error=error,
        duration_ms=elapsed,
        at=from_ms(int(settings.clock() * 1000)),
    )
    return done, outcome


async def _post(
    settings: Settings, target: Destination, address: str, secret: str, event: Event, http: Http
) -> int:
    """POST the event, signed now, to ``address``; the answer's status."""
    body = payload(event)
    timestamp = int(settings.clock())
    headers = {
        "content-type": "application/json",
        "user-agent": "sessionstore-webhooks",
        "webhook-id": event.id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": sign(secret, event.id, timestamp, body),
    }
    client = await http.client()
    async with asyncio.timeout(settings.timeout):
        request = _request(client, target, address, headers, body)
        response = await client.send(request, stream=True)
        await response.aclose()  # the answer's status is all that counts
        return response.status_code


def _destination(webhook: Webhook) -> Destination:
    """The endpoint's URL as registration reads it now (a record may be older)."""
    try:
        return destination(webhook.url)
    except InvalidArgument as refused:
        log.warning("webhooks: %s %s: its URL is refused: %s", webhook.tenant, webhook.id, refused)
        raise _Failure(REFUSED, DESTINATION_REFUSED) from None


async def _addresses(
    settings: Settings, webhook: Webhook, target: Destination, lease: Lease
) -> tuple[list[str], float]:
    """The addresses to connect to, every one of them checked, and the seconds spent waiting
    for a place to look the name up."""
    if target.address is not None:
        addresses, waited = [target.address], 0.0
    else:
        addresses, waited = await _resolve(settings, webhook, target, lease)
    for address in addresses:
        try:
            kind = refusal(address)
        except ValueError:
            kind = PRIVATE  # no address at all: a resolver's bug
        if not allowed(
            kind, allow_private=settings.allow_private, allow_metadata=settings.allow_metadata
        ):
            assert kind is not None
            host = target.host
            what = f"{host} is" if target.address else f"{host} resolves to {address},"
            log.warning(
                "webhooks: %s %s: %s a %s address: refused (%s would allow it)",
                webhook.tenant,
                webhook.id,
                what,
                kind,
                flags_allowing(kind),
            )
            raise _Failure(REFUSED, DESTINATION_REFUSED)
    return addresses, waited


async def _resolve(
    settings: Settings, webhook: Webhook, target: Destination, lease: Lease
) -> tuple[list[str], float]:
    """The addresses of the endpoint's name (none: a failed attempt), and the seconds spent
    waiting for a place to look it up."""
    tenant, webhook_id, host = webhook.tenant, webhook.id, target.host
    # Wait for a place no longer than the lease allows a lookup after it.
    wait = lease.left() - settings.lookups.timeout
    try:
        addresses, waited = await settings.lookups.resolve(tenant, host, target.port, wait=wait)
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
    return addresses, waited


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
