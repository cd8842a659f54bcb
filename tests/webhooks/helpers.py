"""Names, settings and helpers of the webhook tests."""

from __future__ import annotations

import asyncio
import inspect
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable
from typing import Any

from sessionstore import AsyncSessionStore
from sessionstore.webhooks.delivery import Backoff
from sessionstore.webhooks.registry import Webhook, Webhooks
from tests.backends import Clock
from tests.webhooks.receiver import Receiver

TENANT = "acme-corp"
OTHER = "globex"
IP = "203.0.113.7"

# Small numbers, so retries and polls happen within a test's time (no test asserts a
# duration). The attempt timeout stays generous (a busy machine must not fail an answer that
# comes), except in SHORT, for the tests whose receiver does not answer on purpose.
FAST: dict[str, Any] = {
    "allow_private": True,  # the receiver is on loopback
    "poll": 0.02,
    "timeout": 3.0,
    "lease_ttl": 10.0,
    "settle": 0.0,
    "backoff": Backoff(first=0.02, cap=0.1),
}
SHORT: dict[str, Any] = {**FAST, "timeout": 0.5, "lease_ttl": 2.0}


async def wait_until(
    condition: Callable[[], bool | Awaitable[bool]], what: str, limit: float = 60
) -> None:
    """Poll ``condition`` (plain or async); fail after ``limit`` seconds (a guard against
    hanging, not a timing assertion)."""
    deadline = time.monotonic() + limit
    while not await _answer(condition()):
        if time.monotonic() > deadline:
            raise AssertionError(f"never happened: {what}")
        await asyncio.sleep(0.02)


async def _answer(found: bool | Awaitable[bool]) -> bool:
    return await found if inspect.isawaitable(found) else found


async def recorded(hooks: Webhooks, webhook_id: str, event_id: str, tenant: str = TENANT) -> None:
    """Wait until the webhook's cursor is at ``event_id`` (its delivery recorded)."""

    async def at_event() -> bool:
        webhook = await hooks.get(tenant, webhook_id)
        return webhook is not None and webhook.cursor == event_id

    await wait_until(at_event, f"the cursor at {event_id}")


async def session_events(
    store: AsyncSessionStore,
    clock: Clock,
    users: int,
    tenant: str = TENANT,
    *,
    first_user: int = 0,
) -> list[str]:
    """Each user logs in and is revoked: two events per user. Returns the new event ids, in the
    store's order. ``clock`` is the store's: it moves two milliseconds after each event (so
    each has a millisecond of its own), as time does between a real writer's events."""
    before = set(await every_event_id(store, tenant))
    for user_id in range(first_user, first_user + users):
        session, _ = await store.create(tenant, user_id, ip_address=IP, user_agent="pytest")
        clock.advance(0.002)
        await store.revoke(tenant, user_id, session.id)
        clock.advance(0.002)
    return [event_id for event_id in await every_event_id(store, tenant) if event_id not in before]


async def every_event_id(store: AsyncSessionStore, tenant: str = TENANT) -> list[str]:
    ids: list[str] = []
    cursor = None
    while True:
        page = await store.events(tenant, after=cursor, limit=1000)
        ids += [event.id for event in page.data]
        if not page.has_more:
            return ids
        cursor = page.next_cursor


def order(event_id: str) -> tuple[int, int, str]:
    ms, sequence, bucket = event_id.split("-")
    return int(ms), int(sequence), bucket


def first_deliveries(ids: list[str]) -> list[str]:
    """Each id at its first delivery: at-least-once allows repeats, never a new event early."""
    return list(dict.fromkeys(ids))


async def register(
    hooks: Webhooks, receiver: Receiver, path: str = "/hook", tenant: str = TENANT, **options: Any
) -> Webhook:
    """A webhook at ``path`` of the receiver, which learns its secret to verify signatures."""
    webhook, secret = await hooks.add(tenant, receiver.url + path, **options)
    receiver.secrets[path] = secret
    return webhook


def none_loaded(names: tuple[str, ...]) -> str:
    """Python that fails unless none of the modules ``names`` is loaded."""
    return f"loaded = [m for m in {names!r} if m in sys.modules]\nassert not loaded, loaded\n"


def run_fresh(program: str) -> None:
    """Run ``program`` in a new interpreter; fail with its stderr unless it succeeds."""
    done = subprocess.run([sys.executable, "-c", program], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
