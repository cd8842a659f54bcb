"""What the webhooks package asks of the store, beside its operations: ``newest_event_id``
(where a new endpoint's cursor starts) and ``run_script`` (registration's script). Every
backend."""

from __future__ import annotations

from typing import Any

import fakeredis
import pytest
from prometheus_client import CollectorRegistry

from sessionstore import AsyncSessionStore, SessionStore, StoreConfig, StoreUnavailable, _embedded
from sessionstore._core import scripts
from sessionstore.metrics import StoreMetrics
from tests import backends
from tests.webhooks.helpers import OTHER, TENANT, session_events


def webhook_keys(prefix: str, webhook_id: str) -> tuple[str, str]:
    """The keys registration's script takes: the tenant's id set and one webhook's hash."""
    return f"{prefix}:{{{TENANT}}}:webhooks", f"{prefix}:{{{TENANT}}}:webhook:{webhook_id}"


async def test_newest_event_id_is_the_tenants_newest_event(
    astore: AsyncSessionStore, store: SessionStore, clock: backends.Clock
) -> None:
    assert await astore.newest_event_id(TENANT) is None
    assert store.newest_event_id(TENANT) is None
    ids = await session_events(astore, clock, 2)
    assert await astore.newest_event_id(TENANT) == ids[-1]
    assert store.newest_event_id(TENANT) == ids[-1]
    assert await astore.newest_event_id(OTHER) is None


async def test_run_script_returns_the_scripts_reply(
    astore: AsyncSessionStore, client: Any, prefix: str
) -> None:
    index, record = webhook_keys(prefix, "wh_1")
    assert await astore.run_script(scripts.WEBHOOK_ADD, (index, record), 1, "wh_1", "url", "u")
    _, other = webhook_keys(prefix, "wh_2")
    full = await astore.run_script(scripts.WEBHOOK_ADD, (index, other), 1, "wh_2", "url", "u")
    assert full == 0  # the tenant may have one: refused
    assert client.smembers(index) == {b"wh_1"}
    assert client.hgetall(record) == {b"url": b"u"}


async def test_run_script_loads_the_script_after_noscript(prefix: str) -> None:
    """On a server of the test's own: SCRIPT FLUSH empties the script cache of every client."""
    client = fakeredis.FakeAsyncRedis(server=_embedded.new_server())
    store = AsyncSessionStore(client, config=StoreConfig(prefix=prefix))
    try:
        for webhook_id in ("wh_1", "wh_2"):
            await client.script_flush()
            keys = webhook_keys(prefix, webhook_id)
            assert await store.run_script(scripts.WEBHOOK_ADD, keys, 2, webhook_id, "url", "u")
        assert await client.smembers(keys[0]) == {b"wh_1", b"wh_2"}
    finally:
        await store.aclose()


async def test_run_script_calls_are_checked_for_one_slot(
    astore: AsyncSessionStore, prefix: str
) -> None:
    """The tests' own guard (conftest.py) sees run_script's calls too."""
    keys = (f"{prefix}:{{{TENANT}}}:webhooks", f"{prefix}:{{{OTHER}}}:webhook:wh_1")
    with pytest.raises(AssertionError, match="declares keys of slots"):
        await astore.run_script(scripts.WEBHOOK_ADD, keys, 1, "wh_1", "url", "u")


async def test_run_script_counts_redis_failures(prefix: str) -> None:
    """In the store's sessionstore_redis_errors_total{kind}, as its operations count them."""
    registry = CollectorRegistry()
    server = _embedded.new_server()
    store = AsyncSessionStore(
        fakeredis.FakeAsyncRedis(server=server),
        config=StoreConfig(prefix=prefix),
        metrics=StoreMetrics(registry=registry, tracing=False),
    )
    server.connected = False
    try:
        with pytest.raises(StoreUnavailable):
            await store.run_script(scripts.WEBHOOK_ADD, webhook_keys(prefix, "wh_1"), 1, "wh_1")
    finally:
        server.connected = True
        await store.aclose()
    errors = "sessionstore_redis_errors_total"
    assert registry.get_sample_value(errors, {"kind": "ConnectionError"}) == 1
