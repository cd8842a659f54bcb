"""A burst of calls wider than the connection pool queues for connections instead of failing.

redis-py's cluster clients raise MaxConnectionsError as soon as a node's pool is exhausted;
the stores wait for a connection instead, as they do on a single Redis.
"""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
import redis

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


async def test_a_call_queued_behind_slow_calls_gets_its_turn_when_one_ends() -> None:
    # Calls in flight for longer than a socket timeout, as on a loaded machine, yet within a
    # call's bound: the one queued behind them waits for a turn instead of failing.
    turns = _connection.ClusterTurns()
    held = asyncio.Event()

    async def slow_call() -> None:
        async with turns:
            if turns._turns.locked():
                held.set()
            await asyncio.sleep(_connection.SOCKET_TIMEOUT + 0.1)

    in_flight = [asyncio.create_task(slow_call()) for _ in range(_connection.MAX_CONNECTIONS)]
    await held.wait()
    async with turns:  # failed with "no free connection" when the wait was SOCKET_TIMEOUT
        pass
    await asyncio.gather(*in_flight)


async def test_a_call_queued_behind_calls_that_never_end_fails_after_the_bound() -> None:
    turns = _connection.ClusterTurns()
    taken = [turns.__aenter__() for _ in range(_connection.MAX_CONNECTIONS)]
    await asyncio.gather(*taken)  # every turn held by a call that hangs
    with pytest.raises(redis.exceptions.ConnectionError, match="no free connection"):
        async with turns:
            pass


def test_threads_past_the_pool_wait_for_a_connection(client: Any, config: StoreConfig) -> None:
    # A pool of two makes the threads meet an exhausted pool for sure (``client`` cleans up).
    url = backends.url_for("cluster")
    with SessionStore.from_url(url, config=config, max_connections=2) as store:
        session, token = store.create(TENANT, 1, ip_address="203.0.113.5", user_agent="x")
        with ThreadPoolExecutor(16) as pool:
            found = list(pool.map(lambda _: store.validate(TENANT, token), range(64)))
    assert found == [session] * 64
