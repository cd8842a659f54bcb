"""Fixtures for webhooks: a store recording events, a real HTTP receiver on loopback, and
deliverers (each on its own Redis client, as separate processes would be)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any

import fakeredis
import pytest

from sessionstore import AsyncSessionStore, StoreConfig
from sessionstore.webhooks import Deliverer, Webhooks
from tests import backends
from tests.webhooks.helpers import FAST
from tests.webhooks.receiver import Receiver


@pytest.fixture
def clock() -> backends.Clock:
    """The store's clock, a minute behind the real one: the tests move it a few milliseconds
    per event, and a deliverer on the real clock must never see events from its future (it
    waits for those to settle)."""
    clock = backends.Clock()
    clock.advance(-60)
    return clock


@pytest.fixture
def config(prefix: str) -> StoreConfig:
    return StoreConfig(prefix=prefix, events=True)


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    receiver = Receiver()
    await receiver.start()
    yield receiver
    await receiver.close()


@pytest.fixture
def hooks(astore: AsyncSessionStore) -> Webhooks:
    return Webhooks(astore, allow_private=True)


DelivererFactory = Callable[..., Deliverer]


@pytest.fixture
async def deliverers(
    backend: str, config: StoreConfig, fake_server: fakeredis.FakeServer
) -> AsyncIterator[DelivererFactory]:
    """``deliverers(**options)``: a new Deliverer on a client of its own (FAST by default)."""
    stores: list[AsyncSessionStore] = []

    def make(**options: Any) -> Deliverer:
        store = AsyncSessionStore(backends.async_client(backend, fake_server), config=config)
        stores.append(store)
        return Deliverer(store, **{**FAST, **options})

    yield make
    for store in stores:
        await store.aclose()
