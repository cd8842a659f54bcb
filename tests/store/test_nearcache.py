"""The near cache: hot sessions validate from memory, and every change reaches every process.

Two stores on one backend stand for two processes: ``cached`` keeps a near cache, ``other``
changes sessions behind its back. Bounds here are generous (1 s) so they cannot flake; the
real distribution is measured by the benchmark.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from datetime import timedelta
from typing import Any

import pytest

from sessionstore import AsyncSessionStore, SessionStore, StoreConfig
from sessionstore._core.flows import ScriptCall
from sessionstore._core.nearcache import TRUSTED_FOR, NearCache, bucket_channel
from sessionstore.model import Session
from tests import backends

TENANT = "acme-corp"
IP = "203.0.113.7"
VISIBLE_WITHIN = 1.0  # seconds: the tests' bound; the benchmark reports the real one


@pytest.fixture
def cached(client: Any, prefix: str, clock: backends.Clock) -> Iterator[SessionStore]:
    config = StoreConfig(prefix=prefix, near_cache_size=100, max_sessions_per_user=3)
    yield from following(SessionStore(client, config=config, clock=clock))


@pytest.fixture
def other(client: Any, prefix: str, clock: backends.Clock) -> SessionStore:
    return SessionStore(
        client, config=StoreConfig(prefix=prefix, max_sessions_per_user=3), clock=clock
    )


def following(store: SessionStore) -> Iterator[SessionStore]:
    """A near-cached store once it trusts its cache, until the test is done with it."""
    wait_until(lambda: store.near_cache_stats().trusted)
    yield store
    stop_following(store)


def stop_following(store: SessionStore) -> None:
    for subscriber in store._subscriber:
        subscriber.stop()
    for subscriber in store._subscriber:
        subscriber.join(timeout=5)


def wait_until(condition: Callable[[], object], within: float = VISIBLE_WITHIN) -> None:
    deadline = time.monotonic() + within
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"not true within {within} s")
        time.sleep(0.005)


def round_trips(store: SessionStore, monkeypatch: pytest.MonkeyPatch) -> list[int]:
    sent: list[int] = []
    run = store._run

    def counted(batch: list[Any]) -> list[Any]:
        sent.append(len(batch))
        return run(batch)

    monkeypatch.setattr(store, "_run", counted)
    return sent


def login(store: SessionStore, user_id: int = 7) -> tuple[Session, str]:
    return store.create(TENANT, user_id, ip_address=IP, user_agent="pytest")


def test_a_hot_session_validates_from_memory(
    cached: SessionStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    session, token = login(cached)
    assert cached.validate(TENANT, token) == session  # asks Redis, then remembers
    sent = round_trips(cached, monkeypatch)
    for _ in range(50):
        assert cached.validate(TENANT, token) == session
    assert sent == []
    stats = cached.near_cache_stats()
    assert (stats.hits, stats.size) == (50, 1)


def test_a_wrong_secret_is_never_answered_from_memory(cached: SessionStore) -> None:
    _, token = login(cached)
    cached.validate(TENANT, token)
    forged = token[:-1] + ("A" if token[-1] != "A" else "B")
    assert cached.validate(TENANT, forged) is None
    assert cached.validate(TENANT, token) is not None


@pytest.mark.parametrize(
    "change",
    [
        "revoke",
        "revoke_all",
        "revoke_sessions",
        "the cap",
    ],
)
def test_every_ending_reaches_the_cache(
    cached: SessionStore, other: SessionStore, clock: backends.Clock, change: str
) -> None:
    session, token = login(cached)
    # Cached first: a bucket is cached once its subscription is confirmed (a loaded machine
    # may take longer than the first validate waits for it).
    wait_until(lambda: cached.validate(TENANT, token) and cached.near_cache_stats().size)
    if change == "revoke":
        assert other.revoke(TENANT, 7, session.id)
    elif change == "revoke_all":
        assert other.revoke_all(TENANT, 7) == 1
    elif change == "revoke_sessions":
        assert other.revoke_sessions(TENANT, ip_address=IP) == 1
    else:
        for _ in range(3):
            clock.advance(1)  # the cap of 3 evicts the session that ends first: this one
            login(other)
    wait_until(lambda: cached.validate(TENANT, token) is None)
    assert cached.near_cache_stats().invalidations >= 1


def test_an_mfa_update_and_a_touch_elsewhere_are_seen(
    cached: SessionStore, other: SessionStore, clock: backends.Clock
) -> None:
    session, token = login(cached)
    cached.validate(TENANT, token)
    other.mark_mfa_verified(TENANT, session.id)
    wait_until(lambda: cached.validate(TENANT, token).mfa_verified)  # type: ignore[union-attr]
    clock.advance(61)
    touched = other.validate(TENANT, token)  # a touch by another process
    assert touched is not None
    wait_until(
        lambda: cached.validate(TENANT, token).last_active_at == touched.last_active_at  # type: ignore[union-attr]
    )


def test_a_touch_publishes_nothing_and_an_ending_does(
    cached: SessionStore, other: SessionStore, clock: backends.Clock
) -> None:
    """Only what a cached answer depends on is announced: endings and changes, not activity."""
    session, token = login(cached)
    marker, _ = login(cached)  # the same user: the same node, so heard after any earlier change
    assert cached.validate(TENANT, token) is not None
    clock.advance(61)
    heard = cached._core.near.announced  # type: ignore[union-attr]
    announced: list[str] = []

    def hearing(key: str) -> None:
        announced.append(key)
        heard(key)

    cached._core.near.announced = hearing  # type: ignore[union-attr,method-assign]
    touched = other.validate(TENANT, token)  # a touch by another process
    assert touched is not None and touched.last_active_at > session.last_active_at
    assert other.revoke(TENANT, 7, marker.id)  # an ending, published after the touch
    marker_key = other._core.keys.session(TENANT, marker.id)
    wait_until(lambda: marker_key in announced)
    assert set(announced) == {marker_key}  # the touch before it published nothing


def test_expiry_and_the_touch_interval_are_kept(
    cached: SessionStore, clock: backends.Clock, monkeypatch: pytest.MonkeyPatch
) -> None:
    _, token = login(cached)
    cached.validate(TENANT, token)
    clock.advance(61)  # a touch is due: Redis records it
    sent = round_trips(cached, monkeypatch)
    touched = cached.validate(TENANT, token)
    assert sent and touched is not None
    assert touched.last_active_at.timestamp() == pytest.approx(clock.now, abs=0.001)
    clock.advance(2 * 86400)  # past its end: never answered from memory
    assert cached.validate(TENANT, token) is None


def test_a_broken_channel_empties_the_cache_and_it_is_bypassed(
    cached: SessionStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    _, token = login(cached)
    cached.validate(TENANT, token)
    resets = cached.near_cache_stats().resets
    stop_following(cached)  # the subscribers stop: nothing vouches for the cache any more
    time.sleep(TRUSTED_FOR)
    sent = round_trips(cached, monkeypatch)
    assert cached.validate(TENANT, token) is not None
    assert sent  # asked Redis
    stats = cached.near_cache_stats()
    assert (stats.size, stats.trusted) == (0, False) and stats.resets > resets


KEY = "P:{acme-corp:a0}:s:k"  # a session key: its bucket's channel is P:{acme-corp:a0}:changes


def subscribed(cache: NearCache, key: str = KEY) -> None:
    """What a lane does for the key's bucket: asked for by a miss, then confirmed."""
    cache.get(key, b"h", 0, 1)
    cache.confirmed(bucket_channel(key), 0)


def test_a_read_in_flight_during_a_change_does_not_refill_the_cache() -> None:
    cache = NearCache(10)
    cache.ponged(time.monotonic())
    subscribed(cache)
    session = Session.__new__(Session)
    read_from = cache.generation()
    cache.announced(KEY)  # the change arrives while the read is on its way
    object.__setattr__(session, "last_active_at", _epoch())
    object.__setattr__(session, "expires_at", _epoch())
    cache.put(KEY, session, b"h", read_from)
    assert cache.stats().size == 0
    cache.put(KEY, session, b"h", cache.generation())
    assert cache.stats().size == 1
    before_reset = cache.generation()
    cache.reset()  # the channel broke: what was read before cannot be vouched for
    cache.ponged(time.monotonic())
    cache.put(KEY, session, b"h", before_reset)
    assert cache.stats().size == 0
    cache.put(KEY, session, b"h", cache.generation())
    assert cache.stats().size == 1


def _epoch() -> Any:
    from datetime import UTC, datetime

    return datetime.now(UTC)


async def test_the_async_store_caches_and_sees_revocations(
    backend: str, fake_server: Any, prefix: str, other: SessionStore
) -> None:
    config = StoreConfig(prefix=prefix, near_cache_size=100)
    store = AsyncSessionStore(backends.async_client(backend, fake_server), config=config)
    session, token = await store.create(TENANT, 7, ip_address=IP, user_agent="pytest")
    assert await store.validate(TENANT, token) is not None
    deadline = time.monotonic() + VISIBLE_WITHIN
    while not store.near_cache_stats().trusted:  # the subscriber starts with the first validate
        assert time.monotonic() < deadline
        await store.validate(TENANT, token)
        await _pause()
    await store.validate(TENANT, token)
    hits = store.near_cache_stats().hits
    assert await store.validate(TENANT, token) is not None
    assert store.near_cache_stats().hits == hits + 1
    other.revoke(TENANT, 7, session.id)
    deadline = time.monotonic() + VISIBLE_WITHIN
    while await store.validate(TENANT, token) is not None:
        assert time.monotonic() < deadline
        await _pause()
    await store.aclose()


async def _pause() -> None:
    import asyncio

    await asyncio.sleep(0.005)


def test_on_a_cluster_every_primarys_lane_must_vouch() -> None:
    cache = NearCache(10)
    cache.lanes = 3  # one subscriber per primary
    now = time.monotonic()
    cache.ponged(now, 0)
    cache.ponged(now, 1)
    assert not cache.trusted()
    cache.ponged(now, 2)
    assert cache.trusted()
    cache.reset()  # any lane breaking takes them all out
    assert not cache.trusted()


def test_a_cluster_store_listens_on_every_primary(backend: str, cached: SessionStore) -> None:
    primaries = len(cached.client.get_primaries()) if backend == "cluster" else 1
    assert len(cached._subscriber) == primaries == cached._core.near.lanes  # type: ignore[union-attr]


# -- a reconnect that redis-py hides is still a break ----------------------------------------


def node_of(client: Any, key: str) -> Any:
    """A plain client of the node that holds ``key`` (the client itself off a cluster)."""
    if hasattr(client, "get_node_from_key"):
        return client.get_node_from_key(key).redis_connection
    return client


def revoke_in_the_gap(other: SessionStore, monkeypatch: pytest.MonkeyPatch) -> None:
    """Make ``other``'s next script run in one MULTI right after CLIENT KILL TYPE pubsub on the
    session's node: its announcement is published while no subscriber is connected, and
    redis-py reconnects and re-subscribes on its own a moment later."""
    run_alone = other._call

    def killing_first(call: Any) -> Any:
        if not isinstance(call, ScriptCall):
            return run_alone(call)
        pipe = node_of(other.client, call.keys[0]).pipeline(transaction=True)
        pipe.execute_command("CLIENT", "KILL", "TYPE", "pubsub")
        pipe.execute_command("EVAL", call.script.source, len(call.keys), *call.keys, *call.args)
        return pipe.execute()[-1]

    monkeypatch.setattr(other, "_call", killing_first)


def test_a_revocation_published_while_a_lane_reconnects_is_not_missed(
    cached: SessionStore, other: SessionStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    session, token = login(cached)
    assert cached.validate(TENANT, token) is not None
    revoke_in_the_gap(other, monkeypatch)
    assert other.revoke(TENANT, 7, session.id)
    wait_until(lambda: cached.validate(TENANT, token) is None)
    # and the cache comes back: pings sent before the drop are not credited after it
    wait_until(lambda: cached.near_cache_stats().trusted)


async def test_the_async_store_misses_no_revocation_across_a_reconnect(
    backend: str,
    fake_server: Any,
    prefix: str,
    other: SessionStore,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    config = StoreConfig(prefix=prefix, near_cache_size=100)
    store = AsyncSessionStore(backends.async_client(backend, fake_server), config=config)
    try:
        session, token = await store.create(TENANT, 7, ip_address=IP, user_agent="pytest")
        deadline = time.monotonic() + VISIBLE_WITHIN
        while not store.near_cache_stats().trusted:
            assert time.monotonic() < deadline
            await store.validate(TENANT, token)
            await _pause()
        assert await store.validate(TENANT, token) is not None
        revoke_in_the_gap(other, monkeypatch)
        assert other.revoke(TENANT, 7, session.id)
        deadline = time.monotonic() + VISIBLE_WITHIN
        while await store.validate(TENANT, token) is not None:
            assert time.monotonic() < deadline, "a revoked session still validates"
            await _pause()
        deadline = time.monotonic() + VISIBLE_WITHIN
        while not store.near_cache_stats().trusted:
            assert time.monotonic() < deadline, "the cache never came back"
            await store.validate(TENANT, token)
            await _pause()
    finally:
        await store.aclose()


# -- changes that publish nothing: max_age, and keyspace notifications where they are on ------


def session_key(store: SessionStore, session: Session) -> str:
    return store._core.keys.session(TENANT, session.id)


def test_a_session_deleted_outside_the_scripts_is_not_answered_past_max_age(
    client: Any, prefix: str, clock: backends.Clock
) -> None:
    config = StoreConfig(
        prefix=prefix, near_cache_size=100, near_cache_max_age=timedelta(milliseconds=200)
    )
    store = SessionStore(client, config=config, clock=clock)
    try:
        wait_until(lambda: store.near_cache_stats().trusted)
        session, token = login(store)
        assert store.validate(TENANT, token) is not None
        client.delete(session_key(store, session))  # an operator's DEL: nothing is published
        wait_until(lambda: store.validate(TENANT, token) is None)
    finally:
        store.close()


def test_no_cached_answer_outlives_the_default_max_age() -> None:
    now = [100.0]
    cache = NearCache(10, clock=lambda: now[0])
    cache.ponged(now[0])
    subscribed(cache)
    session = Session.__new__(Session)
    object.__setattr__(session, "last_active_at", _epoch())
    object.__setattr__(session, "expires_at", _epoch() + timedelta(hours=1))
    cache.put(KEY, session, b"h", cache.generation())
    now_ms = int(_epoch().timestamp() * 1000)
    assert cache.get(KEY, b"h", now_ms, 60_000) is session
    now[0] += StoreConfig().near_cache_max_age.total_seconds()
    cache.ponged(now[0])
    assert cache.get(KEY, b"h", now_ms, 60_000) is None


# The cluster's nodes are shared: their keyspace notifications stay as they are.
@pytest.mark.parametrize(
    "backend",
    [pytest.param("fake", marks=pytest.mark.fake), pytest.param("redis", marks=pytest.mark.redis)],
)
def test_with_keyspace_notifications_a_del_is_seen_at_once(
    notifying_store: tuple[SessionStore, Any],
) -> None:
    store, client = notifying_store
    session, token = login(store)
    # the create's own notifications may arrive while the first validates are in flight
    wait_until(lambda: store.validate(TENANT, token) and store.near_cache_stats().size == 1)
    invalidations = store.near_cache_stats().invalidations
    client.delete(session_key(store, session))
    wait_until(lambda: store.near_cache_stats().invalidations > invalidations)
    assert store.validate(TENANT, token) is None  # long before max_age (5 s)


@pytest.fixture
def notifying_store(
    backend: str, client: Any, prefix: str, clock: backends.Clock, tmp_path: Any
) -> Iterator[tuple[SessionStore, Any]]:
    """A near-cached store whose server has keyspace notifications on: the embedded server of
    this test, or a private redis-server (the shared ones keep their settings)."""
    server = None
    if backend == "redis":
        from tests.reliability.servers import NO_PERSISTENCE, start_server

        server = start_server(tmp_path / "redis", *NO_PERSISTENCE)
        client = server.client()
    client.config_set("notify-keyspace-events", "Kgx")
    store = SessionStore(client, config=StoreConfig(prefix=prefix, near_cache_size=100))
    try:
        wait_until(lambda: store.near_cache_stats().trusted)
        yield store, client
    finally:
        store.close()
        if server is not None:
            server.stop()
