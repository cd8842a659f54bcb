"""Name lookups: one tenant's slow DNS must not hold up another tenant's deliveries (every
backend). Names resolve only through stand-ins here: no test ever asks a real resolver."""

from __future__ import annotations

import asyncio
import socket
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from sessionstore import AsyncSessionStore
from sessionstore.webhooks.delivery import Backoff
from sessionstore.webhooks.destinations import Lookups, LookupTimedOut, NoTurn
from sessionstore.webhooks.registry import Webhook, Webhooks
from tests import backends
from tests.webhooks.conftest import DelivererFactory
from tests.webhooks.helpers import OTHER, SHORT, TENANT, session_events, wait_until
from tests.webhooks.receiver import Receiver


class HangingDns:
    """A getaddrinfo stand-in: names under ``.hang.test`` never answer (until ``release``),
    ``healthy.test`` is 127.0.0.1; anything else goes to the one installed before it."""

    def __init__(self, before: Any) -> None:
        self.before = before
        self.hanging: list[str] = []  # the lookups in progress that hang
        self.released = threading.Event()
        self._lock = threading.Lock()

    def __call__(self, host: Any, port: Any, *args: Any, **kwargs: Any) -> Any:
        if str(host).endswith(".hang.test"):
            with self._lock:
                self.hanging.append(str(host))
            self.released.wait(60)
            raise socket.gaierror(socket.EAI_AGAIN, "Temporary failure in name resolution")
        if host == "healthy.test":
            host = "127.0.0.1"
        return self.before(host, port, *args, **kwargs)


async def logs(hooks: Webhooks, webhooks: list[Webhook]) -> dict[str, list[tuple[str, Any]]]:
    found = {}
    for webhook in webhooks:
        attempts = await hooks.log(webhook.tenant, webhook.id) or []
        found[webhook.id] = [(attempt.outcome, attempt.error) for attempt in attempts]
    return found


async def test_one_tenants_hanging_lookups_do_not_delay_another_tenants_delivery(
    astore: AsyncSessionStore,
    clock: backends.Clock,
    hooks: Webhooks,
    receiver: Receiver,
    deliverers: DelivererFactory,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Six endpoints of one tenant whose names hang; then a healthy endpoint of another
    tenant. The shared thread pool (asyncio's default executor, two threads here so the six
    can fill it) must not be what lookups wait for: the healthy one is delivered at its first
    attempt, and the hanging tenant is charged only for the lookups it made."""
    dns = HangingDns(socket.getaddrinfo)
    monkeypatch.setattr(socket, "getaddrinfo", dns)
    shared = ThreadPoolExecutor(max_workers=2)
    asyncio.get_running_loop().set_default_executor(shared)
    try:
        slow = [(await hooks.add(TENANT, f"http://h{n}.hang.test/"))[0] for n in range(6)]
        await session_events(astore, clock, 1)
        async with deliverers(**SHORT).running():
            await wait_until(lambda: len(dns.hanging) >= 2, "the hanging lookups")
            healthy, secret = await hooks.add(OTHER, f"http://healthy.test:{receiver.port}/ok")
            receiver.secrets["/ok"] = secret
            ids = await session_events(astore, clock, 1, tenant=OTHER, first_user=50)

            async def healthy_logged() -> bool:
                return bool((await logs(hooks, [healthy]))[healthy.id])

            seen: dict[str, Any] = {}

            async def hanging_failed() -> bool:  # the lookups first, then their logs
                seen["hanging"] = list(dns.hanging)
                seen["logs"] = await logs(hooks, slow)
                return len([log for log in seen["logs"].values() if log]) >= len(seen["hanging"])

            await wait_until(healthy_logged, "the healthy endpoint's attempt")
            healthy_log = (await logs(hooks, [healthy]))[healthy.id]
            # The hanging lookups time out, and their attempts are recorded as failed.
            await wait_until(hanging_failed, "the hanging lookups' failed attempts")
            hanging, slow_logs = seen["hanging"], seen["logs"]
        assert healthy_log[-1] == ("delivered", None), healthy_log
        assert receiver.delivered("/ok")[:1] == ids[:1]
        # The slow tenant: each failed attempt is a lookup that ran (and hung); waiting for a
        # turn to look up is nobody's failure.
        failing = [webhook_id for webhook_id, log in slow_logs.items() if log]
        assert len(failing) == len(hanging), (slow_logs, hanging)
        assert len(hanging) < len(slow)  # a bound per tenant: not every endpoint's lookup ran
        for log in slow_logs.values():
            assert {error for _, error in log} <= {"cannot resolve"}, log
    finally:
        dns.released.set()
        shared.shutdown(wait=True)


async def test_a_lookup_that_times_out_is_a_failed_attempt(
    astore: AsyncSessionStore,
    clock: backends.Clock,
    hooks: Webhooks,
    deliverers: DelivererFactory,
) -> None:
    """The resolver never answers: the attempt fails with "cannot resolve" (not "no answer"),
    counts as the endpoint's failure, and is retried after the backoff."""

    async def resolver(host: str, port: int) -> list[str]:
        await asyncio.Event().wait()
        return []

    webhook, _ = await hooks.add(TENANT, "https://stuck.test/")
    await session_events(astore, clock, 1)
    deliverer = deliverers(**{**SHORT, "resolver": resolver, "backoff": Backoff(first=3600)})
    assert await deliverer.run_once() == 1
    log = await hooks.log(TENANT, webhook.id)
    assert log is not None and [(a.outcome, a.status, a.error) for a in log] == [
        ("failed", None, "cannot resolve")
    ]
    state = await hooks.get(TENANT, webhook.id)
    assert state is not None and state.attempts == 1 and state.next_attempt_at is not None
    assert await deliverer.run_once() == 0  # backed off


async def test_lookups_keep_their_place_until_their_thread_returns() -> None:
    """The bounds themselves (no Redis): a tenant's lookups that time out still hold their
    threads, so its next lookup waits (and gives up: NoTurn), while another tenant's runs."""
    dns = HangingDns(lambda host, port, **kwargs: [(2, 1, 6, "", ("127.0.0.1", port))])
    lookups = Lookups(getaddrinfo=dns, threads=3, per_tenant=2, timeout=0.1)
    try:
        for n in range(2):
            with pytest.raises(LookupTimedOut):
                await lookups.resolve(TENANT, f"h{n}.hang.test", 443, wait=1)
        with pytest.raises(NoTurn):  # both of its places are held by threads still hanging
            await lookups.resolve(TENANT, "healthy.test", 443, wait=0.05)
        assert len(dns.hanging) == 2  # the third never ran
        addresses, _ = await lookups.resolve(OTHER, "healthy.test", 443, wait=0)
        assert addresses == ["127.0.0.1"]
        dns.released.set()  # the threads come back: the places are free again
        addresses, _ = await lookups.resolve(TENANT, "healthy.test", 443, wait=5)
        assert addresses == ["127.0.0.1"]
    finally:
        dns.released.set()
        lookups.close()


async def test_an_async_resolver_is_bounded_and_cancelled_at_its_timeout() -> None:
    started: list[str] = []
    cancelled: list[str] = []

    async def resolver(host: str, port: int) -> list[str]:
        started.append(host)
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            cancelled.append(host)
            raise
        return []

    lookups = Lookups(resolver, threads=2, per_tenant=1, timeout=0.05)
    with pytest.raises(LookupTimedOut):
        await lookups.resolve(TENANT, "a.test", 443, wait=1)
    await asyncio.sleep(0)  # the cancelled lookup ends, and gives its place back
    with pytest.raises(LookupTimedOut):
        await lookups.resolve(TENANT, "b.test", 443, wait=1)
    await wait_until(lambda: len(cancelled) == 2, "the second lookup cancelled")
    assert started == cancelled == ["a.test", "b.test"]
