"""Reliability over real HTTP: deliverers killed mid-flight and restarted, several at once.

The receiver on loopback verifies every signature. What must hold: every event is delivered at
least once; the first delivery of each event comes in event order; a repeat carries the same
webhook-id (its event's id); no endpoint ever has two deliveries in flight at once. Each test
prints its counts (events, requests, deliveries, duplicates, retries) and records them in the
JUnit report (``record_property``).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import random
import sys
from collections import Counter
from collections.abc import Callable
from typing import Any

import pytest

from sessionstore import AsyncSessionStore
from sessionstore.webhooks.registry import Webhook, Webhooks
from tests import backends
from tests.api.helpers import REAL_BACKENDS
from tests.webhooks.conftest import DelivererFactory
from tests.webhooks.helpers import (
    OTHER,
    SHORT,
    first_deliveries,
    recorded,
    register,
    session_events,
    wait_until,
)
from tests.webhooks.receiver import Answer, Receiver, Request

Recorder = Callable[[str, object], None]


class Flaky:
    """Each event is answered 500, then 200; the first event, and the first after the held
    one, get no answer at all in between (the attempt times out: a timeout before the
    deliverer is replaced and one after, without waiting out one for every event). The 200
    of ``ids[hold_at]`` is held back until ``release`` is set, so a deliverer can be killed
    while it waits: the receiver has the event, the deliverer never learns it."""

    def __init__(self, ids: list[str], hold_at: int) -> None:
        self.seen: Counter[str] = Counter()
        self.hold_id = ids[hold_at]
        self.hang_ids = {ids[0], ids[hold_at + 1]}
        self.held = asyncio.Event()
        self.release = asyncio.Event()

    async def __call__(self, request: Request) -> Answer:
        self.seen[request.webhook_id] += 1
        tries = self.seen[request.webhook_id]
        if tries == 1:
            return Answer(500)
        if tries == 2 and request.webhook_id in self.hang_ids:
            return Answer(hang=True)
        if request.webhook_id == self.hold_id and not self.held.is_set():
            self.held.set()
            return Answer(hold=self.release)
        return Answer()


def check(receiver: Receiver, path: str, ids: list[str]) -> dict[str, int]:
    """The guarantees, and the counts."""
    delivered = receiver.delivered(path)
    requests = receiver.attempts(path)
    assert set(delivered) == set(ids), "every event at least once"
    assert first_deliveries(delivered) == ids, "in order"
    for request in requests:
        assert request.verified, "signed with the endpoint's secret"
        assert json.loads(request.body)["data"]["id"] == request.webhook_id
    assert receiver.most_in_flight.get(path, 0) <= 1, "one delivery at a time"
    return {
        "events": len(ids),
        "requests": len(requests),
        "deliveries": len(delivered),
        "duplicates": len(delivered) - len(set(delivered)),
        "retries": len(requests) - len(delivered),
    }


def report(record_property: Recorder, name: str, counts: dict[str, int], **extra: Any) -> None:
    for key, value in {**counts, **extra}.items():
        record_property(f"{name}.{key}", value)
    print(f"\n[webhooks] {name}: {counts} {extra or ''}", file=sys.stderr)


async def start_deliverer_process(url: str, prefix: str) -> asyncio.subprocess.Process:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "tests.webhooks.deliverer_process",
        url,
        prefix,
        stdout=asyncio.subprocess.PIPE,
    )
    assert process.stdout is not None
    await asyncio.wait_for(process.stdout.readline(), 30)  # its name: it runs
    return process


async def stop(process: asyncio.subprocess.Process) -> None:
    if process.returncode is None:
        process.terminate()
        await process.wait()


def lease_key(prefix: str, webhook: Webhook) -> str:
    return f"{prefix}:{{{webhook.tenant}}}:webhook:{webhook.id}:lease"


async def test_a_deliverer_cancelled_mid_flight_is_replaced(
    astore: AsyncSessionStore,
    clock: backends.Clock,
    hooks: Webhooks,
    receiver: Receiver,
    deliverers: DelivererFactory,
    record_property: Recorder,
    backend: str,
) -> None:
    webhook = await register(hooks, receiver)
    ids = await session_events(astore, clock, 4)
    flaky = Flaky(ids, hold_at=3)
    receiver.script = flaky

    first = asyncio.create_task(deliverers(**SHORT).run())
    await wait_until(flaky.held.is_set, "the held delivery")
    first.cancel()  # mid-flight: the receiver has the event, the deliverer no answer
    with contextlib.suppress(asyncio.CancelledError):
        await first
    flaky.release.set()
    async with deliverers(**SHORT).running():
        await wait_until(lambda: set(receiver.delivered("/hook")) >= set(ids), "every event")
        await recorded(hooks, webhook.id, ids[-1])

    counts = check(receiver, "/hook", ids)
    # Sent again, with the same id (and, on a machine slow enough to make an answer late,
    # perhaps another besides).
    assert receiver.delivered("/hook").count(flaky.hold_id) >= 2
    assert counts["duplicates"] >= 1
    report(record_property, f"cancelled[{backend}]", counts)


@pytest.mark.parametrize("backend", REAL_BACKENDS, indirect=True)
async def test_a_killed_deliverer_process_is_replaced(
    astore: AsyncSessionStore,
    clock: backends.Clock,
    hooks: Webhooks,
    receiver: Receiver,
    client: Any,
    prefix: str,
    backend: str,
    record_property: Recorder,
) -> None:
    """SIGKILL: the dead deliverer's lease stays until its TTL; then another takes over from
    the stored cursor."""
    url = backends.url_for(backend)
    assert url is not None
    webhook = await register(hooks, receiver)
    ids = await session_events(astore, clock, 4)
    flaky = Flaky(ids, hold_at=3)
    receiver.script = flaky

    first = await start_deliverer_process(url, prefix)
    try:
        await wait_until(flaky.held.is_set, "the held delivery")
        first.kill()
        await first.wait()
    finally:
        await stop(first)
    assert client.exists(lease_key(prefix, webhook)), "a killed deliverer gives nothing back"
    flaky.release.set()
    second = await start_deliverer_process(url, prefix)
    try:
        await wait_until(lambda: set(receiver.delivered("/hook")) >= set(ids), "every event")
        await recorded(hooks, webhook.id, ids[-1])
    finally:
        await stop(second)

    counts = check(receiver, "/hook", ids)
    assert receiver.delivered("/hook").count(flaky.hold_id) >= 2
    assert counts["duplicates"] >= 1
    report(record_property, f"killed[{backend}]", counts)


async def noisy(seed: int) -> Callable[[Request], Any]:
    """200 after up to 10 ms, or (one time in seven) 500: retries hand endpoints around."""
    chance = random.Random(seed)

    async def script(request: Request) -> Answer:
        if chance.random() < 1 / 7:
            return Answer(500)
        return Answer(delay=chance.random() / 100)

    return script


async def test_several_deliverers_at_once(
    astore: AsyncSessionStore,
    clock: backends.Clock,
    hooks: Webhooks,
    receiver: Receiver,
    deliverers: DelivererFactory,
    record_property: Recorder,
    backend: str,
) -> None:
    receiver.script = await noisy(7)
    every = await register(hooks, receiver, "/every")
    revoked = await register(hooks, receiver, "/revoked", types=["session.revoked"])
    globex = await register(hooks, receiver, "/globex", tenant=OTHER)
    acme_ids = await session_events(astore, clock, 6)
    globex_ids = await session_events(astore, clock, 4, tenant=OTHER)

    crew = [deliverers() for _ in range(4)]
    async with contextlib.AsyncExitStack() as running:
        for deliverer in crew:
            await running.enter_async_context(deliverer.running())
        # More events while they run.
        acme_ids += await session_events(astore, clock, 4, first_user=100)
        globex_ids += await session_events(astore, clock, 2, tenant=OTHER, first_user=100)
        await recorded(hooks, every.id, acme_ids[-1])
        await recorded(hooks, revoked.id, acme_ids[-1])
        await recorded(hooks, globex.id, globex_ids[-1], tenant=OTHER)

    revoked_ids = [
        r.webhook_id for r in receiver.attempts("/every") if b'"session.revoked"' in r.body
    ]
    results = {
        "/every": check(receiver, "/every", acme_ids),
        "/revoked": check(receiver, "/revoked", first_deliveries(revoked_ids)),
        "/globex": check(receiver, "/globex", globex_ids),
    }
    assert len(revoked_ids) > 0
    for counts in results.values():
        assert counts["duplicates"] == 0  # nobody died: nothing was sent twice
    assert sum(deliverer.attempts for deliverer in crew) == len(receiver.requests)
    totals = {key: sum(counts[key] for counts in results.values()) for key in results["/every"]}
    share = sorted((deliverer.attempts for deliverer in crew), reverse=True)
    report(record_property, f"several[{backend}]", totals, attempts_per_deliverer=share)


@pytest.mark.parametrize("backend", REAL_BACKENDS, indirect=True)
async def test_several_deliverer_processes_at_once(
    astore: AsyncSessionStore,
    clock: backends.Clock,
    hooks: Webhooks,
    receiver: Receiver,
    prefix: str,
    backend: str,
    record_property: Recorder,
) -> None:
    url = backends.url_for(backend)
    assert url is not None
    receiver.script = await noisy(11)
    every = await register(hooks, receiver, "/every")
    globex = await register(hooks, receiver, "/globex", tenant=OTHER)
    acme_ids = await session_events(astore, clock, 5)
    globex_ids = await session_events(astore, clock, 5, tenant=OTHER)

    crew = [await start_deliverer_process(url, prefix) for _ in range(3)]
    try:
        acme_ids += await session_events(astore, clock, 3, first_user=100)
        await recorded(hooks, every.id, acme_ids[-1])
        await recorded(hooks, globex.id, globex_ids[-1], tenant=OTHER)
    finally:
        for process in crew:
            await stop(process)

    results = [check(receiver, "/every", acme_ids), check(receiver, "/globex", globex_ids)]
    assert [counts["duplicates"] for counts in results] == [0, 0]
    totals = {key: sum(counts[key] for counts in results) for key in results[0]}
    report(record_property, f"processes[{backend}]", totals)
