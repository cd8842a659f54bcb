"""A burst of calls wider than the connection pool queues for connections instead of failing.

redis-py's cluster clients raise MaxConnectionsError as soon as a node's pool is exhausted;
the stores wait for a connection instead, as they do on a single Redis.
"""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from sessionstore import AsyncSessionStore, SessionStore, StoreConfig, _connection
from tests import backends

pytestmark = pytest.mark.cluster

TENANT = "acme-corp"
# One token, so every call goes to the same node: twice the pool, past redis-py's own
# 100 connections per node as well.
BURST = 2 * _connection.MAX_CONNECTIONS


async def test_an_async_burst_on_one_node_waits_its_turn(astore: AsyncSessionStore) -> None:
    session, token = await astore.create(TENANT, 1, ip_address="203.0.113.5", user_agent="x")
    found = await asyncio.gather(*(astore.validate(TENANT, token) for _ in range(BURST)))
    assert found == [session] * BURST


def test_threads_past_the_pool_wait_for_a_connection(client: Any, config: StoreConfig) -> None:
    # A pool of two makes the threads meet an exhausted pool for sure (``client`` cleans up).
    url = backends.url_for("cluster")
    with SessionStore.from_url(url, config=config, max_connections=2) as store:
        session, token = store.create(TENANT, 1, ip_address="203.0.113.5", user_agent="x")
        with ThreadPoolExecutor(16) as pool:
            found = list(pool.map(lambda _: store.validate(TENANT, token), range(64)))
    assert found == [session] * 64
