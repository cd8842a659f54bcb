"""Redis at maxmemory with ``noeviction``: new sessions are refused, existing ones keep working.

Eviction would be worse than refusal: evicting a user index silently ends sessions, and no
eviction policy can tell sessions from the keys that keep them revocable. So the store
expects ``noeviction``, where Redis refuses commands that may grow memory (OOM) and still
serves reads and deletes.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

import pytest

from sessionstore import SessionStore, StoreConfig, StoreWriteRejected
from tests import backends
from tests.reliability.servers import RedisProcess

TENANT = "acme-corp"
USER = 9
HEADROOM = 1024 * 1024  # bytes of maxmemory above what the server uses before the fill
MAX_FILL = 50_000  # sessions: far more than HEADROOM holds, so the loop always ends in OOM

pytestmark = pytest.mark.slow


def new_session(store: SessionStore, user_id: int = USER) -> tuple[Any, str]:
    return store.create(TENANT, user_id, ip_address="192.0.2.10", user_agent="pytest")


@pytest.fixture
def full_redis(redis_server: RedisProcess) -> Iterator[RedisProcess]:
    """The server after ``maxmemory`` was set just above its use (filled by each test)."""
    admin = redis_server.client()
    admin.config_set("maxmemory-policy", "noeviction")
    admin.config_set("maxmemory", admin.info("memory")["used_memory"] + HEADROOM)
    yield redis_server
    admin.config_set("maxmemory", 0)
    admin.close()


def fill(store: SessionStore, server: RedisProcess) -> int:
    """Create sessions of throwaway users until Redis refuses, then keep it over its limit.

    At the limit itself a small write may still slip through; Redis that others keep full
    is over it, which lowering ``maxmemory`` below the use reproduces. Returns how many fit.
    """
    for created in range(MAX_FILL):
        try:
            new_session(store, user_id=1000 + created)
        except StoreWriteRejected:
            with server.client() as admin:
                admin.config_set("maxmemory", admin.info("memory")["used_memory"] // 2)
            return created
    raise AssertionError(f"{MAX_FILL} sessions fit in {HEADROOM} bytes: maxmemory not applied")


@pytest.fixture
def store(full_redis: RedisProcess, prefix: str, clock: backends.Clock) -> Iterator[SessionStore]:
    with SessionStore.from_url(full_redis.url, config=StoreConfig(prefix=prefix), clock=clock) as s:
        yield s


def test_create_is_refused_and_the_rest_keeps_working(
    store: SessionStore, full_redis: RedisProcess
) -> None:
    kept, kept_token = new_session(store)
    revoked, revoked_token = new_session(store)
    assert fill(store, full_redis) > 0

    with pytest.raises(StoreWriteRejected):
        new_session(store)
    assert store.validate(TENANT, kept_token) == kept
    assert store.revoke(TENANT, USER, revoked.id)
    assert store.validate(TENANT, revoked_token) is None
    assert [s.id for s in store.list_user_sessions(TENANT, USER)] == [kept.id]
    assert store.revoke_all(TENANT, USER) == 1
    assert store.validate(TENANT, kept_token) is None


def test_create_works_again_once_memory_is_freed(
    store: SessionStore, full_redis: RedisProcess
) -> None:
    fill(store, full_redis)
    with pytest.raises(StoreWriteRejected):
        new_session(store)
    with full_redis.client() as admin:
        admin.config_set("maxmemory", 0)
    _, token = new_session(store)
    assert store.validate(TENANT, token) is not None


def test_validate_keeps_working_when_a_touch_is_due(
    store: SessionStore, full_redis: RedisProcess, clock: backends.Clock
) -> None:
    session, token = new_session(store)
    fill(store, full_redis)
    clock.advance(store.config.touch_interval.total_seconds() + 1)
    validated = store.validate(TENANT, token)
    assert validated is not None and validated.id == session.id


def test_a_fresh_store_can_revoke_all_at_maxmemory(
    store: SessionStore, full_redis: RedisProcess, prefix: str
) -> None:
    _, token = new_session(store)
    fill(store, full_redis)
    with SessionStore.from_url(full_redis.url, config=StoreConfig(prefix=prefix)) as fresh:
        assert fresh.revoke_all(TENANT, USER) == 1
    assert store.validate(TENANT, token) is None


@pytest.mark.parametrize("policy", ["allkeys-lru", "volatile-ttl", "noeviction"])
def test_an_evicting_policy_is_warned_about_once(
    redis_server: RedisProcess, caplog: pytest.LogCaptureFixture, policy: str
) -> None:
    redis_server.client().config_set("maxmemory-policy", policy)
    store = SessionStore.from_url(redis_server.url, config=StoreConfig(prefix="warn"))
    with caplog.at_level(logging.WARNING, logger="sessionstore"):
        new_session(store)
        new_session(store)
    warnings = [r.getMessage() for r in caplog.records if "maxmemory-policy" in r.getMessage()]
    if policy == "noeviction":
        assert warnings == []
    else:
        assert warnings == [
            f"Redis runs maxmemory-policy {policy}: it may delete live sessions and their "
            "index entries; sessionstore needs noeviction"
        ]
