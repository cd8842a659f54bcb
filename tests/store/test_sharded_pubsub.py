"""Near-cache invalidations on sharded pub/sub (issue 22): every change is published with
SPUBLISH on its bucket's channel ``P:{T:bb}:changes``, in its key's slot, and a near cache
subscribes to a bucket's channel (SSUBSCRIBE, on the lane of the node owning the slot) before
it answers for, or keeps, any session of that bucket.

The same test code runs on the embedded server, Redis and the cluster; two stores on one
backend stand for two processes (tests/store/test_nearcache.py). Slot moves and failovers on a
cluster of the test's own: tests/cluster/test_sharded_pubsub.py.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest

from sessionstore import AsyncSessionStore, SessionStore, StoreConfig
from sessionstore._core.nearcache import ChannelBroken, Lane, NearCache, bucket_channel
from sessionstore._subscribers import Primaries, Subscriber
from tests import backends
from tests.store.test_nearcache import (
    TENANT,
    following,
    login,
    node_of,
    round_trips,
    wait_until,
)


@pytest.fixture
def cached(client: Any, prefix: str, clock: backends.Clock) -> Iterator[SessionStore]:
    config = StoreConfig(prefix=prefix, near_cache_size=100)
    yield from following(SessionStore(client, config=config, clock=clock))


@pytest.fixture
def other(client: Any, prefix: str, clock: backends.Clock) -> SessionStore:
    return SessionStore(client, config=StoreConfig(prefix=prefix), clock=clock)


def near(store: SessionStore | AsyncSessionStore) -> NearCache:
    cache = store._core.near
    assert cache is not None
    return cache


def channel_of(store: SessionStore | AsyncSessionStore, session_id: str) -> str:
    return bucket_channel(store._core.keys.session(TENANT, session_id))


def subscribers(client: Any, channel: str) -> int:
    """Connections subscribed to the shard channel, on the node that owns its slot."""
    reply = node_of(client, channel).execute_command("PUBSUB", "SHARDNUMSUB", channel)
    return int(reply[1])


def hit_from_memory(store: SessionStore, token: str, monkeypatch: pytest.MonkeyPatch) -> bool:
    """Whether a validate of ``token`` is answered without a round trip to Redis."""
    with monkeypatch.context() as patch:
        sent = round_trips(store, patch)
        hits = store.near_cache_stats().hits
        assert store.validate(TENANT, token) is not None
        return not sent and store.near_cache_stats().hits == hits + 1


# -- what is published, and who hears it --------------------------------------------------------


def test_a_revocation_is_published_in_its_shard_and_reaches_another_near_cache(
    client: Any, cached: SessionStore, other: SessionStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    session, token = login(other)
    assert cached.validate(TENANT, token) is not None
    assert hit_from_memory(cached, token, monkeypatch)
    channel = channel_of(other, session.id)
    key = other._core.keys.session(TENANT, session.id)
    listener = node_of(client, channel).pubsub()
    try:
        listener.subscribe(f"{other.config.prefix}:changes")  # the classic channel of before
        listener.execute_command("SSUBSCRIBE", channel)
        heard: list[tuple[str, bytes]] = []

        def listen() -> bool:
            message = listener.get_message(timeout=0.01)
            if message and message["type"] in ("message", "smessage"):
                heard.append((message["type"], message["data"]))
            return any(kind == "smessage" for kind, _ in heard)

        assert other.revoke(TENANT, 7, session.id)
        wait_until(lambda: cached.validate(TENANT, token) is None)
        assert near(cached).stats().invalidations >= 1
        wait_until(listen)
        assert heard == [("smessage", key.encode())]  # sharded only: nothing classic
    finally:
        listener.close()


async def test_an_async_near_cache_hears_the_shard_channel_too(
    backend: str, fake_server: Any, prefix: str, other: SessionStore
) -> None:
    config = StoreConfig(prefix=prefix, near_cache_size=100)
    store = AsyncSessionStore(backends.async_client(backend, fake_server), config=config)
    try:
        session, token = login(other)
        deadline = time.monotonic() + 1
        while store.near_cache_stats().hits == 0:
            assert time.monotonic() < deadline, "never answered from memory"
            assert await store.validate(TENANT, token) is not None
            await _pause()
        assert store.near_cache_stats().channels == 1
        assert other.revoke(TENANT, 7, session.id)
        deadline = time.monotonic() + 1
        while await store.validate(TENANT, token) is not None:
            assert time.monotonic() < deadline, "a revoked session still validates"
            await _pause()
    finally:
        await store.aclose()


async def _pause() -> None:
    import asyncio

    await asyncio.sleep(0.005)


# -- a bucket is cached only once its subscription is confirmed ---------------------------------


def test_a_bucket_is_not_answered_from_memory_until_its_subscription_is_confirmed(
    client: Any, cached: SessionStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    cache = near(cached)
    held: list[tuple[str, int]] = []
    confirm = cache.confirmed
    # The lane's confirmations are held back: the server has subscribed, the cache not heard.
    monkeypatch.setattr(cache, "confirmed", lambda name, lane: held.append((name, lane)))
    session, token = login(cached)
    channel = channel_of(cached, session.id)
    for _ in range(3):
        assert not hit_from_memory(cached, token, monkeypatch)
    assert cache.stats().size == 0 and cache.stats().channels == 0
    assert [name for name, _ in held] == [channel]
    assert subscribers(client, channel) == 1  # subscribed on the server all along

    # The confirmation arrives while a read is on its way: what that read found is not kept.
    run = cached._run

    def confirmed_meanwhile(batch: list[Any]) -> list[Any]:
        while held:
            confirm(*held.pop())
        return run(batch)

    with monkeypatch.context() as patch:
        patch.setattr(cached, "_run", confirmed_meanwhile)
        assert cached.validate(TENANT, token) is not None
    assert cache.stats().channels == 1
    assert cache.stats().size == 0
    assert not hit_from_memory(cached, token, monkeypatch)  # read after it: kept
    assert hit_from_memory(cached, token, monkeypatch)


def test_a_sync_validate_waits_for_its_buckets_confirmation(
    cached: SessionStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The first validate in a bucket asks for its channel and waits (bounded) for the lane's
    confirmation, so what it reads is kept and the next one is a hit."""
    _, token = login(cached)
    assert near(cached).stats().channels == 0
    assert cached.validate(TENANT, token) is not None
    assert near(cached).stats().channels == 1
    assert hit_from_memory(cached, token, monkeypatch)


def test_past_the_channel_cap_a_bucket_is_not_cached(
    cached: SessionStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    near(cached).max_channels = 1
    keys = cached._core.keys
    first = 7
    second = next(
        user
        for user in range(8, 200)
        if keys.bucket_of(TENANT, user) != keys.bucket_of(TENANT, first)
    )
    _, token = login(cached, first)
    _, beyond = login(cached, second)
    cached.validate(TENANT, token)
    for _ in range(3):
        assert not hit_from_memory(cached, beyond, monkeypatch)  # always asks Redis
    assert hit_from_memory(cached, token, monkeypatch)
    assert near(cached).stats().channels == 1


# -- breaks: the server's sunsubscribe, and a reconnect redis-py hides ---------------------------


def cached_and_followed(
    store: SessionStore, made: list[tuple[Any, str]], monkeypatch: pytest.MonkeyPatch
) -> tuple[str, int, Subscriber]:
    """Each (session, token) validated into the near cache; then the first's channel, the
    cache's resets so far, and the lane that follows the channel."""
    for _, token in made:
        store.validate(TENANT, token)
    session, token = made[0]
    assert hit_from_memory(store, token, monkeypatch)
    channel = channel_of(store, session.id)
    return channel, store.near_cache_stats().resets, lane_of(store, channel)


def lane_of(store: SessionStore, channel: str) -> Subscriber:
    """The store's subscriber whose connection confirmed ``channel``."""
    for subscriber in store._subscriber:
        live = subscriber._live
        if live is not None and channel in live[0]._heard:
            return subscriber  # type: ignore[no-any-return]
    raise AssertionError(f"no lane holds {channel}")


def test_an_sunsubscribe_from_the_server_empties_the_cache_and_it_resubscribes(
    client: Any, cached: SessionStore, other: SessionStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Redis pushes ``sunsubscribe`` for a slot's channels when the slot leaves the node. The
    lane never unsubscribes by itself, so the reply to an SUNSUBSCRIBE sent on its connection
    here is that same message. (A real slot move: tests/cluster/test_sharded_pubsub.py.)"""
    session, token = login(cached)
    channel, resets, subscriber = cached_and_followed(cached, [(session, token)], monkeypatch)
    with subscriber._sending:
        assert subscriber._live is not None
        subscriber._live[1].connection.send_command("SUNSUBSCRIBE", channel, check_health=False)
    wait_until(lambda: cached.near_cache_stats().resets > resets)
    assert cached.near_cache_stats().size == 0

    # Subscribed again, on a new connection, and heard from there.
    wait_until(lambda: cached.near_cache_stats().trusted and cached.near_cache_stats().channels)
    wait_until(lambda: subscribers(client, channel) == 1)
    wait_until(
        lambda: cached.validate(TENANT, token) and hit_from_memory(cached, token, monkeypatch)
    )
    assert other.revoke(TENANT, 7, session.id)
    wait_until(lambda: cached.validate(TENANT, token) is None)


def test_a_reconnect_redis_py_hides_empties_the_cache_and_the_bucket_is_subscribed_again(
    client: Any, cached: SessionStore, other: SessionStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    """redis-py remakes a broken pub/sub connection on its own (PubSub._reconnect: disconnect,
    connect, re-subscribe what it knows of). Here it does so once in the bucket's lane, with a
    revocation published while the lane is disconnected: on every backend (the embedded
    server has no CLIENT KILL; tests/store/test_nearcache.py kills from Redis)."""
    first, first_token = login(cached)
    second, second_token = login(cached)  # the same user: the same bucket
    made = [(first, first_token), (second, second_token)]
    channel, resets, subscriber = cached_and_followed(cached, made, monkeypatch)
    with subscriber._sending:
        assert subscriber._live is not None
        pubsub = subscriber._live[1]
        receive = pubsub.get_message

        def reconnecting_once(*args: Any, **kwargs: Any) -> Any:
            pubsub.get_message = receive
            pubsub.connection.disconnect()
            assert other.revoke(TENANT, 7, first.id)  # published while nobody listens here
            pubsub.connection.connect()  # and redis-py subscribes again on its own
            return receive(*args, **kwargs)

        pubsub.get_message = reconnecting_once
    wait_until(lambda: cached.validate(TENANT, first_token) is None)
    assert cached.near_cache_stats().resets > resets
    wait_until(lambda: cached.near_cache_stats().channels and subscribers(client, channel) == 1)
    wait_until(lambda: hit_from_memory(cached, second_token, monkeypatch))
    assert other.revoke(TENANT, 7, second.id)  # heard on the new subscription
    wait_until(lambda: cached.validate(TENANT, second_token) is None)


# -- the lane's rules, without a server ----------------------------------------------------------

KEY = "P:{acme-corp:a0}:s:k"
CHANNEL = bucket_channel(KEY)


def test_the_channel_of_a_session_key_is_its_buckets_in_its_slot() -> None:
    from redis.crc import key_slot

    assert CHANNEL == "P:{acme-corp:a0}:changes"
    assert key_slot(CHANNEL.encode()) == key_slot(KEY.encode())


def test_a_lane_asks_once_for_the_channels_it_owns() -> None:
    cache = NearCache(10)
    mine = Lane(cache, 0, 1, owns=lambda name: name == CHANNEL)
    theirs = Lane(cache, 1, 1, owns=lambda name: name != CHANNEL)
    cache.get(KEY, b"h", 0, 1)  # a miss asks for the bucket
    cache.get("P:{acme-corp:b1}:s:k", b"h", 0, 1)
    assert mine.to_subscribe() == [CHANNEL]
    assert theirs.to_subscribe() == ["P:{acme-corp:b1}:changes"]
    assert mine.to_subscribe() == [] and theirs.to_subscribe() == []


def test_a_second_confirmation_or_an_sunsubscribe_is_a_break() -> None:
    cache = NearCache(10)
    lane = Lane(cache, 0, 1)
    cache.get(KEY, b"h", 0, 1)
    assert lane.to_subscribe() == [CHANNEL]
    lane.received({"type": "ssubscribe", "channel": CHANNEL.encode(), "data": 1})
    with pytest.raises(ChannelBroken):
        lane.received({"type": "ssubscribe", "channel": CHANNEL.encode(), "data": 1})
    with pytest.raises(ChannelBroken):
        Lane(cache, 0, 1).received({"type": "sunsubscribe", "channel": CHANNEL, "data": 0})


def test_a_broken_lane_unsubscribes_only_its_own_buckets() -> None:
    cache = NearCache(10)
    cache.lanes = 2
    other = "P:{acme-corp:b1}:s:k"
    for key in (KEY, other):
        cache.get(key, b"h", 0, 1)
    cache.confirmed(CHANNEL, 0)
    cache.confirmed(bucket_channel(other), 1)
    topology = cache.topology
    cache.reset(0)
    assert cache.stats().channels == 1  # lane 1's subscription still stands
    assert cache.topology > topology  # every lane looks at the wanted channels again
    fresh = Lane(cache, 0, 1, owns=lambda name: name == CHANNEL)
    assert fresh.to_subscribe() == [CHANNEL]  # the new connection subscribes it again


def test_after_a_failover_the_demoted_nodes_lane_moves_to_the_promoted_one() -> None:
    from types import SimpleNamespace

    import redis.cluster

    names = ["127.0.0.1:7000", "127.0.0.1:7001", "127.0.0.1:7002"]
    client: Any = object.__new__(redis.cluster.RedisCluster)  # only its primaries are asked
    client.get_primaries = lambda: [SimpleNamespace(name=name) for name in names]
    client.get_node = lambda node_name: SimpleNamespace(redis_connection=node_name)
    primaries = Primaries(client)
    assert [primaries.sync_client(lane)[1] for lane in range(3)] == names
    names[1] = "127.0.0.1:7004"  # 7001's replica took over
    assert [primaries.moved(lane) for lane in range(3)] == [False, True, False]
    assert primaries.sync_client(1)[1] == "127.0.0.1:7004"
    primaries.held[2] = names[0]  # two lanes on one node: the higher one moves
    assert [primaries.moved(lane) for lane in range(3)] == [False, False, True]
    assert primaries.sync_client(2)[1] == "127.0.0.1:7002"
