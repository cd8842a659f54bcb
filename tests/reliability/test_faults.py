"""A hung or vanished Redis: validation fails closed, quickly, and recovers without losing state.

Faults are real: SIGSTOP (hung: the kernel still accepts connections, nobody answers) and
SIGKILL then a restart on the same port (gone). The server fsyncs its AOF on every write so
that the restart can bring the sessions back, as a persistent deployment would.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable

import pytest

from sessionstore import (
    AsyncSessionStore,
    Session,
    SessionStore,
    StoreConfig,
    StoreUnavailable,
)
from sessionstore._core.nearcache import TRUSTED_FOR
from tests.reliability.servers import RedisProcess, wait_for

TENANT = "acme-corp"
USER = 42
# A hang detector, not a latency assertion: the configured budget is ~1 s per call.
HANG_DETECTOR_SECONDS = 5.0

pytestmark = pytest.mark.slow


@pytest.fixture(params=["hung", "gone"])
def fault(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def inject(server: RedisProcess, fault: str) -> None:
    if fault == "hung":
        server.pause()
    else:
        server.crash()


def heal(server: RedisProcess, fault: str) -> None:
    if fault == "hung":
        server.resume()
    else:
        server.start()  # same port, same directory: the AOF is replayed


def create(store: SessionStore) -> tuple[Session, str]:
    return store.create(TENANT, USER, ip_address="203.0.113.7", user_agent="pytest")


def assert_fails_closed(call: Callable[[], object]) -> float:
    """``call`` must raise StoreUnavailable (never answer) within the hang detector."""
    started = time.monotonic()
    with pytest.raises(StoreUnavailable):
        call()
    elapsed = time.monotonic() - started
    assert elapsed < HANG_DETECTOR_SECONDS
    return elapsed


async def assert_fails_closed_async(call: Callable[[], Awaitable[object]]) -> float:
    started = time.monotonic()
    with pytest.raises(StoreUnavailable):
        await call()
    elapsed = time.monotonic() - started
    assert elapsed < HANG_DETECTOR_SECONDS
    return elapsed


def test_validate_fails_closed_then_recovers(
    aof_server: RedisProcess, prefix: str, fault: str, measure: Callable[[str, float], None]
) -> None:
    store = SessionStore.from_url(aof_server.url, config=StoreConfig(prefix=prefix))
    live, live_token = create(store)
    revoked, revoked_token = create(store)
    victim, victim_token = create(store)
    assert store.revoke(TENANT, USER, revoked.id)

    inject(aof_server, fault)
    for label, token in (("live", live_token), ("revoked", revoked_token)):
        elapsed = assert_fails_closed(lambda token=token: store.validate(TENANT, token))
        measure(f"{fault}: validate {label} token", elapsed)
    measure(f"{fault}: create", assert_fails_closed(lambda: create(store)))
    measure(f"{fault}: revoke", assert_fails_closed(lambda: store.revoke(TENANT, USER, victim.id)))

    started = time.monotonic()
    heal(aof_server, fault)
    # The very first call after the fault ends must succeed, on the same store object.
    session = store.validate(TENANT, live_token)
    measure(f"{fault}: recovery (heal + first validate)", time.monotonic() - started)

    assert session is not None and session.id == live.id
    assert store.validate(TENANT, revoked_token) is None
    # A write that failed has an unknown outcome (a hung server runs it when it wakes up):
    # the caller retries it, and the retry gives a definite answer.
    store.revoke(TENANT, USER, victim.id)
    assert store.validate(TENANT, victim_token) is None
    listed = {s.id for s in store.list_user_sessions(TENANT, USER)}
    assert live.id in listed and not {revoked.id, victim.id} & listed
    store.close()


async def test_async_validate_fails_closed_then_recovers(
    aof_server: RedisProcess, prefix: str, fault: str, measure: Callable[[str, float], None]
) -> None:
    config = StoreConfig(prefix=prefix)
    with SessionStore.from_url(aof_server.url, config=config) as setup:
        live, live_token = create(setup)
        revoked, revoked_token = create(setup)
        assert setup.revoke(TENANT, USER, revoked.id)
    store = AsyncSessionStore.from_url(aof_server.url, config=config)
    assert (await store.validate(TENANT, live_token)) is not None  # the pool holds a connection

    inject(aof_server, fault)
    for label, token in (("live", live_token), ("revoked", revoked_token)):
        elapsed = await assert_fails_closed_async(lambda token=token: store.validate(TENANT, token))
        measure(f"{fault}: async validate {label} token", elapsed)

    heal(aof_server, fault)
    session = await store.validate(TENANT, live_token)
    assert session is not None and session.id == live.id
    assert (await store.validate(TENANT, revoked_token)) is None
    assert [s.id for s in await store.list_user_sessions(TENANT, USER)] == [live.id]
    await store.aclose()


def test_a_long_hang_deletes_nothing(aof_server: RedisProcess, prefix: str) -> None:
    """Sessions outlive a 3 s hang during which clients keep failing: a blip is not a logout."""
    store = SessionStore.from_url(aof_server.url, config=StoreConfig(prefix=prefix))
    tokens = [create(store)[1] for _ in range(3)]
    raw = aof_server.client()
    keys_before = sorted(raw.scan_iter(match=f"{prefix}:*"))

    aof_server.pause()
    deadline = time.monotonic() + 3
    while time.monotonic() < deadline:
        with pytest.raises(StoreUnavailable):
            store.validate(TENANT, tokens[0])
    aof_server.resume()

    assert all(store.validate(TENANT, token) is not None for token in tokens)
    assert sorted(raw.scan_iter(match=f"{prefix}:*")) == keys_before
    raw.close()
    store.close()


def drop_client_connections(server: RedisProcess) -> None:
    with server.client() as admin:
        admin.client_kill_filter(_type="normal", skipme=True)


def test_a_dropped_connection_is_retried(redis_server: RedisProcess, prefix: str) -> None:
    """A server-side disconnect (restart, idle kill, failover) costs a retry, not an error."""
    store = SessionStore.from_url(redis_server.url, config=StoreConfig(prefix=prefix))
    _, token = create(store)
    drop_client_connections(redis_server)
    assert store.validate(TENANT, token) is not None
    store.close()


async def test_async_a_dropped_connection_is_retried(
    redis_server: RedisProcess, prefix: str
) -> None:
    with SessionStore.from_url(redis_server.url, config=StoreConfig(prefix=prefix)) as setup:
        _, token = create(setup)
    store = AsyncSessionStore.from_url(redis_server.url, config=StoreConfig(prefix=prefix))
    assert (await store.validate(TENANT, token)) is not None
    drop_client_connections(redis_server)
    assert (await store.validate(TENANT, token)) is not None
    await store.aclose()


def test_a_near_cache_fails_closed_too(
    aof_server: RedisProcess, prefix: str, fault: str, measure: Callable[[str, float], None]
) -> None:
    """A cached session is no excuse: once the channel goes quiet, validate asks Redis."""
    config = StoreConfig(prefix=prefix, near_cache_size=100)
    store = SessionStore.from_url(aof_server.url, config=config)
    deadline = time.monotonic() + HANG_DETECTOR_SECONDS
    while not store.near_cache_stats().trusted:
        assert time.monotonic() < deadline
        time.sleep(0.01)
    live, live_token = create(store)
    store.validate(TENANT, live_token)
    assert store.validate(TENANT, live_token) is not None
    assert store.near_cache_stats().hits == 1  # answered from memory

    inject(aof_server, fault)
    time.sleep(TRUSTED_FOR * 2)  # no PONG since: the cache no longer vouches for anything
    measure(
        f"{fault}: near-cached validate",
        assert_fails_closed(lambda: store.validate(TENANT, live_token)),
    )
    assert store.near_cache_stats().size == 0

    heal(aof_server, fault)
    wait_for(lambda: store.near_cache_stats().trusted)
    session = store.validate(TENANT, live_token)
    assert session is not None and session.id == live.id
    store.close()
