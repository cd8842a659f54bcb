"""Sharded near-cache invalidations on a cluster of the test's own, while slots move and
replicas take over.

When a slot leaves a node, Redis drops that node's subscriptions to the slot's shard channels
and tells each subscriber (``sunsubscribe``). The near cache takes that for a break: it empties
itself, reads the slot map again and subscribes the bucket on the primary that owns it now.
And no change crosses the cluster bus to every node any more.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from redis.crc import key_slot

from sessionstore import AsyncSessionStore, SessionStore, StoreConfig, StoreUnavailable
from sessionstore._core.nearcache import bucket_channel
from tests.cluster.local import LocalCluster, Node
from tests.store.test_nearcache import wait_until
from tests.store.test_sharded_pubsub import hit_from_memory

pytestmark = [pytest.mark.cluster, pytest.mark.slow]

TENANT = "acme-corp"
SETTLES_WITHIN = 10.0  # seconds: a slot move or failover, then a new subscription


@pytest.fixture(scope="module")
def cluster() -> Iterator[LocalCluster]:
    # Its own range (test_reshard.py starts at 7100, test_failover.py at 7500): two sessions
    # that probe the same free ports at once may both start there.
    with LocalCluster(7700).running() as cluster:
        yield cluster


@pytest.fixture
def cached(cluster: LocalCluster, prefix: str) -> Iterator[SessionStore]:
    config = StoreConfig(prefix=prefix, near_cache_size=100)
    with SessionStore.from_url(cluster.url, config=config) as store:
        wait_until(lambda: store.near_cache_stats().trusted, SETTLES_WITHIN)
        yield store


@pytest.fixture
def other(cluster: LocalCluster, prefix: str) -> Iterator[SessionStore]:
    with SessionStore.from_url(cluster.url, config=StoreConfig(prefix=prefix)) as store:
        yield store


def login(store: SessionStore) -> tuple[Any, str]:
    return store.create(TENANT, 7, ip_address="203.0.113.5", user_agent="x")


def channel_of(store: SessionStore | AsyncSessionStore, session_id: str) -> str:
    return bucket_channel(store._core.keys.session(TENANT, session_id))


def subscribers(cluster: LocalCluster, node: Node, channel: str) -> int:
    return int(cluster.client(node.port).execute_command("PUBSUB", "SHARDNUMSUB", channel)[1])


def with_traffic(
    store: SessionStore, token: str, condition: Callable[[], bool]
) -> Callable[[], bool]:
    """The condition, checked after one validate, as an app's requests keep coming."""

    def check() -> bool:
        with contextlib.suppress(StoreUnavailable):
            store.validate(TENANT, token)
        return condition()

    return check


def move_slot(cluster: LocalCluster, slot: int) -> tuple[Node, Node]:
    """Move ``slot`` with its keys to another primary, as redis-cli does; returns (from, to)."""
    source = cluster.owner(slot)
    target = next(node for node in cluster.primaries() if node.id != source.id)
    keys = cluster.client(source.port).cluster("getkeysinslot", slot, 1000)
    cluster.begin_moving(slot, target, keys[:1])
    cluster.finish_moving(slot, source, target)
    return source, target


def bus_messages(cluster: LocalCluster) -> dict[str, int]:
    totals = {"publish": 0, "publishshard": 0}
    for node in cluster.nodes():
        info = cluster.client(node.port).cluster("info")
        for kind in totals:
            totals[kind] += int(info.get(f"cluster_stats_messages_{kind}_sent", 0))
    return totals


def test_no_change_is_broadcast_over_the_cluster_bus(
    cluster: LocalCluster, cached: SessionStore, other: SessionStore
) -> None:
    """A revocation is published in its shard: to the shard's replica, not to every node."""
    sessions = [login(other) for _ in range(10)]
    for _, token in sessions:
        cached.validate(TENANT, token)
    before = bus_messages(cluster)
    for session, token in sessions:
        assert other.revoke(TENANT, 7, session.id)
        wait_until(lambda token=token: cached.validate(TENANT, token) is None)  # type: ignore[misc]
    after = bus_messages(cluster)
    assert after["publish"] == before["publish"]
    # One replica per primary here: each revocation reaches it, and no other node.
    assert after["publishshard"] - before["publishshard"] == len(sessions)


def test_a_slot_move_empties_the_cache_and_the_bucket_is_followed_on_its_new_primary(
    cluster: LocalCluster,
    cached: SessionStore,
    other: SessionStore,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    first, first_token = login(other)
    second, second_token = login(other)  # the same user: the same bucket, the same slot
    for token in (first_token, second_token):
        cached.validate(TENANT, token)
    assert hit_from_memory(cached, first_token, monkeypatch)
    channel = channel_of(cached, first.id)
    resets = cached.near_cache_stats().resets
    source, target = move_slot(cluster, key_slot(channel.encode()))

    wait_until(lambda: cached.near_cache_stats().resets > resets, SETTLES_WITHIN)
    wait_until(lambda: subscribers(cluster, target, channel) == 1, SETTLES_WITHIN)
    assert subscribers(cluster, source, channel) == 0
    wait_until(lambda: hit_from_memory(cached, first_token, monkeypatch), SETTLES_WITHIN)
    assert other.revoke(TENANT, 7, first.id)  # published on the new primary, heard there
    wait_until(lambda: cached.validate(TENANT, first_token) is None)
    assert cached.validate(TENANT, second_token) is not None


async def test_an_async_near_cache_follows_a_slot_move(
    cluster: LocalCluster, prefix: str, other: SessionStore
) -> None:
    config = StoreConfig(prefix=prefix, near_cache_size=100)
    store = AsyncSessionStore.from_url(cluster.url, config=config)
    try:
        session, token = login(other)
        channel = channel_of(store, session.id)

        async def until_hit() -> None:
            deadline = time.monotonic() + SETTLES_WITHIN
            hits = store.near_cache_stats().hits
            while store.near_cache_stats().hits == hits:
                assert time.monotonic() < deadline, "never answered from memory"
                assert await store.validate(TENANT, token) is not None
                await asyncio.sleep(0.005)

        await until_hit()
        resets = store.near_cache_stats().resets
        source, target = move_slot(cluster, key_slot(channel.encode()))
        deadline = time.monotonic() + SETTLES_WITHIN
        while subscribers(cluster, target, channel) != 1:
            assert time.monotonic() < deadline, "not subscribed on the new primary"
            await store.validate(TENANT, token)
            await asyncio.sleep(0.01)
        assert store.near_cache_stats().resets > resets
        assert subscribers(cluster, source, channel) == 0
        await until_hit()
        assert other.revoke(TENANT, 7, session.id)
        deadline = time.monotonic() + 1
        while await store.validate(TENANT, token) is not None:
            assert time.monotonic() < deadline, "a revoked session still validates"
            await asyncio.sleep(0.005)
    finally:
        await store.aclose()


def test_after_a_failover_the_bucket_is_followed_on_the_promoted_replica(
    cluster: LocalCluster,
    cached: SessionStore,
    other: SessionStore,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    session, token = login(other)
    cached.validate(TENANT, token)
    assert hit_from_memory(cached, token, monkeypatch)
    channel = channel_of(cached, session.id)
    primary = cluster.owner(key_slot(channel.encode()))
    resets = cached.near_cache_stats().resets
    replica = cluster.replica_of(primary)
    cluster.wait_for_replica_acks(primary)
    cluster.fail_over(replica)

    wait_until(lambda: cached.near_cache_stats().resets > resets, SETTLES_WITHIN)
    # The emptied cache is safe at once; it follows the promoted node once the store's slot map
    # has it, which an app's next requests bring about (their MOVED replies refresh the map).
    followed = with_traffic(cached, token, lambda: subscribers(cluster, replica, channel) == 1)
    wait_until(followed, SETTLES_WITHIN)
    wait_until(lambda: hit_from_memory(cached, token, monkeypatch), SETTLES_WITHIN)
    revoked = False
    deadline = time.monotonic() + SETTLES_WITHIN
    while not revoked:  # the other store may meet the switch first
        assert time.monotonic() < deadline
        try:
            revoked = other.revoke(TENANT, 7, session.id)
        except Exception:
            time.sleep(0.1)
    wait_until(lambda: cached.validate(TENANT, token) is None)
