"""Delivery metrics: attempts by outcome, delivery lag, disabled endpoints, and Redis failures
the deliverer meets, each in a registry of its own test."""

from __future__ import annotations

from datetime import timedelta

import fakeredis
import pytest
from prometheus_client import CollectorRegistry

from sessionstore import AsyncSessionStore, StoreConfig, _embedded
from sessionstore.metrics import DeliveryMetrics, StoreMetrics
from sessionstore.webhooks.delivery import Deliverer
from sessionstore.webhooks.registry import Webhooks
from tests import backends
from tests.webhooks.conftest import DelivererFactory
from tests.webhooks.helpers import SHORT, TENANT, register, session_events, wait_until
from tests.webhooks.receiver import Answer, Receiver, Request

OUTCOMES = ("delivered", "failed", "refused", "unresolved", "timeout")


def attempts(registry: CollectorRegistry, outcome: str) -> float | None:
    return registry.get_sample_value("sessionstore_webhook_attempts_total", {"outcome": outcome})


async def test_attempts_lag_and_disabled_endpoints_are_counted(
    astore: AsyncSessionStore,
    clock: backends.Clock,
    hooks: Webhooks,
    receiver: Receiver,
    deliverers: DelivererFactory,
) -> None:
    """One endpoint of each outcome; every failing one is disabled at its first failure
    (give_up_after 0)."""

    async def script(request: Request) -> Answer:
        return {"/fail": Answer(500), "/hang": Answer(hang=True)}.get(request.path, Answer())

    async def resolver(host: str, port: int) -> list[str]:
        answers = {"metadata.test": ["169.254.169.254"], "nowhere.test": []}
        return answers.get(host, ["127.0.0.1"])

    receiver.script = script
    for path in ("/ok", "/fail", "/hang"):
        await register(hooks, receiver, path)
    await hooks.add(TENANT, "http://metadata.test/")
    await hooks.add(TENANT, "http://nowhere.test/")
    ids = await session_events(astore, clock, 1)
    registry = CollectorRegistry()
    metrics = DeliveryMetrics(registry=registry)
    deliverer = deliverers(**SHORT, resolver=resolver, metrics=metrics, give_up_after=timedelta(0))
    await deliverer.run_once()

    assert {outcome: attempts(registry, outcome) for outcome in OUTCOMES} == {
        "delivered": len(ids),
        "failed": 1,
        "refused": 1,
        "unresolved": 1,
        "timeout": 1,
    }
    # Labels are the fixed outcomes only: no tenant, URL, host or error text.
    families = {family.name: family for family in registry.collect()}
    labels = {
        tuple(sorted(sample.labels))
        for family in families.values()
        for sample in family.samples
        if family.name.startswith("sessionstore_webhook")
    }
    assert labels <= {(), ("outcome",), ("le",)}
    lag = "sessionstore_webhook_delivery_lag_seconds"
    assert registry.get_sample_value(f"{lag}_count") == len(ids)
    # The store's clock is a minute behind the deliverer's: each event waited that long.
    assert (registry.get_sample_value(f"{lag}_sum") or 0) >= 60 * len(ids) - 1
    disabled = "sessionstore_webhook_endpoints_disabled_total"
    assert registry.get_sample_value(disabled) == 4
    assert [w.state for w in await hooks.list(TENANT)].count("disabled") == 4


async def test_redis_failures_the_deliverer_meets_are_counted(prefix: str) -> None:
    """In the store's sessionstore_redis_errors_total{kind}, as store operations count them."""
    registry = CollectorRegistry()
    server = _embedded.new_server()
    store = AsyncSessionStore(
        fakeredis.FakeAsyncRedis(server=server),
        config=StoreConfig(prefix=prefix, events=True),
        metrics=StoreMetrics(registry=registry, tracing=False),
    )
    try:
        await Webhooks(store, allow_private=True).add(TENANT, "http://127.0.0.1:9/")
        server.connected = False
        errors = "sessionstore_redis_errors_total"
        async with Deliverer(store, **SHORT).running():
            await wait_until(
                lambda: (registry.get_sample_value(errors, {"kind": "ConnectionError"}) or 0) > 0,
                "a Redis failure counted",
            )
    finally:
        server.connected = True
        await store.aclose()


def test_every_outcome_is_shown_from_the_start() -> None:
    registry = CollectorRegistry()
    DeliveryMetrics(registry=registry)
    assert {outcome: attempts(registry, outcome) for outcome in OUTCOMES} == dict.fromkeys(
        OUTCOMES, 0.0
    )
    with pytest.raises(ValueError, match="outcome"):
        DeliveryMetrics(registry=CollectorRegistry()).attempt("HTTP 500")
