"""Delivery: every tenant's events POSTed to its endpoints, in order, at least once.

A ``Deliverer`` (inside ``sessionstore serve --events``, or ``sessionstore webhooks run``)
reads each tenant's events (_core/events.py) and POSTs every one an endpoint asked for, signed
(signing.py), to an address the destination policy allows (destinations.py); one attempt is
_attempt.py's.

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

Failures. A failed attempt is retried after 5 s, doubling up to an hour, with the same event:
nothing later is sent before it. Whatever goes wrong in an attempt is a failed attempt (a URL
stored before registration checked it as now, a bug), never the end of the endpoint's worker.
An endpoint failing for 24 hours is disabled, and its log says so. Every attempt is in the
endpoint's log: event id, status code or error, duration, time; and counted in
``metrics.DeliveryMetrics`` when the deliverer is given one.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import secrets
import socket
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING, Final

from .._core import inputs
from .._core.tokens import random_base62
from ..errors import InvalidArgument, StoreUnavailable
from ..metrics import DeliveryMetrics
from ..model import from_ms, isoformat
from ._attempt import DELIVERED, Http, LeaseLost, attempt
from .destinations import LOOKUP_TIMEOUT, Lookups, NoTurn, Resolver
from .registry import DISABLED, ENABLED, Attempt, RedisAdapter, Webhook, read_webhook, secret_of

if TYPE_CHECKING:
    from .._core.events import Event
    from ..aio import AsyncSessionStore

__all__ = ["GIVE_UP_AFTER", "Backoff", "Deliverer", "Lease"]

log = logging.getLogger("sessionstore.webhooks")

GIVE_UP_AFTER: Final = timedelta(hours=24)


@dataclass(frozen=True, slots=True)
class Backoff:
    """Seconds before retry ``n`` (1, 2, ...): ``first``, doubling, at most ``cap``."""

    first: float = 5.0
    cap: float = 3600.0

    def delay(self, failures: int) -> float:
        """Seconds to wait after ``failures`` failed attempts in a row."""
        return float(min(self.cap, self.first * 2 ** min(failures - 1, 40)))


class Lease:
    """One deliverer's hold on one endpoint (the module docstring says why it is safe)."""

    def __init__(
        self, redis: RedisAdapter, key: str, token: str, ttl: float, margin: float
    ) -> None:
        self._redis = redis
        self._key = key
        self._token = token.encode()
        self._ttl = ttl
        self._margin = margin
        self._renewed = 0.0
        self._valid_until = 0.0

    async def acquire(self) -> bool:
        """Take the lease if it is free (SET NX PX); whether this holder has it now."""
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
        """Give the lease back (DEL) while it is surely still this holder's."""
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


class _Step:
    MORE = "more"  # delivered a page and there may be more at once
    IDLE = "idle"  # nothing (settled) to deliver now
    WAIT = "wait"  # a retry is due later, or no turn to look the name up yet
    STOP = "stop"  # gone, disabled, or the lease lost


class Deliverer:
    """Deliver every tenant's events to their webhooks until cancelled (``run``).

    ``clock`` (unix seconds) decides timestamps, retries and the 24 hours; tests move it.
    ``allow_private`` permits private and loopback destinations; ``allow_metadata`` link-local
    and cloud metadata ones (``destinations.allowed``). Names are looked up by ``lookups``
    (``Lookups``: threads of the deliverer's own, bounded per tenant), or by ``resolver``, an
    async lookup, within the same bounds. ``metrics``: a ``DeliveryMetrics`` to count attempts.
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
        self._redis = RedisAdapter(store)
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
        for tenant, webhook_id in await self._redis.enabled_endpoints():
            lease = self._lease(tenant, webhook_id)
            if await lease.acquire():
                await self._work(tenant, webhook_id, lease)
        return self.attempts - before

    async def _start_workers(self) -> None:
        for key, task in list(self._workers.items()):
            if task.done():
                del self._workers[key]
                if not task.cancelled() and task.exception() is not None:
                    log.error("webhooks: %s %s failed", *key, exc_info=task.exception())
        now = time.monotonic()
        for tenant, webhook_id in await self._redis.enabled_endpoints():
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

    async def _work(self, tenant: str, webhook_id: str, lease: Lease) -> None:
        """Deliver to one endpoint while there is something to send now, then give the lease
        back: whichever deliverer polls next continues (from the cursor in Redis)."""
        key = (tenant, webhook_id)
        http = Http(self.timeout)
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

    def _lease(self, tenant: str, webhook_id: str) -> Lease:
        key = self._redis.keys.lease(tenant, webhook_id)
        return Lease(self._redis, key, self.name, self.lease_ttl, margin=1.5 * self.timeout)

    # -- one endpoint ---------------------------------------------------------------------------

    async def _step(self, tenant: str, webhook_id: str, lease: Lease, http: Http) -> str:
        """Deliver what is due to one endpoint, up to a page of events, stopping at a failure."""
        fields = await self._redis.fields(tenant, webhook_id)
        webhook = read_webhook(tenant, webhook_id, fields)
        if webhook is None or webhook.state != ENABLED:
            return _Step.STOP
        now = self.clock()
        if webhook.next_attempt_at is not None and now < webhook.next_attempt_at.timestamp():
            return _Step.WAIT
        secret = secret_of(fields)
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
            delivered = await self._deliver(webhook, secret, event, lease, http)
            if delivered != _Step.MORE:
                return delivered
            passed_over = None
        if passed_over is not None and not await self._redis.record(
            tenant, webhook_id, cursor=passed_over
        ):
            return _Step.STOP
        return step

    async def _deliver(
        self, webhook: Webhook, secret: str, event: Event, lease: Lease, http: Http
    ) -> str:
        """Attempt one event and record what came of it: ``_Step.MORE`` when it was delivered
        (the cursor moved past it), or the step that ends the endpoint's turn."""
        _unless_cancelled()
        if not await lease.keep():
            return _Step.STOP
        try:
            done, outcome = await attempt(self, webhook, secret, event, lease, http)
        except NoTurn:
            # No place to look the name up in time (its tenant's other lookups hang, or
            # every thread is busy): nothing was tried, so nothing counts against it.
            log.debug("webhooks: %s %s: no turn to look its name up", webhook.tenant, webhook.id)
            return _Step.WAIT
        except LeaseLost:
            return _Step.STOP
        self.attempts += 1
        self._count(outcome, event)
        if done.outcome != DELIVERED:
            return await self._failed(webhook, done)
        recorded = await self._redis.record(
            webhook.tenant, webhook.id, done, cursor=event.id, reset=True
        )
        return _Step.MORE if recorded else _Step.STOP

    def _count(self, outcome: str, event: Event) -> None:
        if self.metrics is not None:
            self.metrics.attempt(outcome)
            if outcome == DELIVERED:
                self.metrics.delivered(self.clock() - event.at.timestamp())

    async def _failed(self, webhook: Webhook, failed: Attempt) -> str:
        """Record a failed attempt: a retry after the backoff, or the endpoint disabled once
        it has failed for ``give_up_after``."""
        now = self.clock()
        since = webhook.failing_since.timestamp() if webhook.failing_since else now
        failures = webhook.attempts + 1
        if now - since >= self.give_up_after:
            await self._disable(webhook, failed, since=since, failures=failures, now=now)
            return _Step.STOP
        log.info("webhooks: %s %s: %s", webhook.tenant, webhook.id, failed.error)
        await self._redis.record(
            webhook.tenant,
            webhook.id,
            failed,
            failing_since=int(since * 1000),
            attempts=failures,
            next_attempt=int((now + self.backoff.delay(failures)) * 1000),
        )
        return _Step.WAIT

    async def _disable(
        self, webhook: Webhook, failed: Attempt, *, since: float, failures: int, now: float
    ) -> None:
        reason = (
            f"failing since {isoformat(from_ms(int(since * 1000)))}, for more than "
            f"{self.give_up_after / 3600:g} hours; last: {failed.error}"
        )
        log.warning("webhooks: %s %s disabled: %s", webhook.tenant, webhook.id, reason)
        if self.metrics is not None:
            self.metrics.endpoint_disabled()
        disabled = Attempt(failed.event_id, DISABLED, None, reason, 0.0, failed.at)
        await self._redis.record(
            webhook.tenant,
            webhook.id,
            failed,
            disabled,
            state=DISABLED,
            disabled_at=int(now * 1000),
            reason=reason,
            attempts=failures,
        )


def _unless_cancelled() -> None:
    """Stop here if this task was cancelled. Python 3.11's asyncio.wait_for, which redis-py
    sends commands with, returns normally when a cancellation arrives just as the command
    completes; the task still counts the request (``cancelling()``), so it is honoured here,
    where work would otherwise go on (a deliverer stopped would keep delivering)."""
    task = asyncio.current_task()
    if task is not None and task.cancelling():
        raise asyncio.CancelledError


def _event_ms(event_id: str) -> int:
    return int(event_id.split("-", 1)[0])
