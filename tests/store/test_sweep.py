"""The background sweep visits the registered buckets, never the keyspace: what it costs, and
what keeps it complete when the registry is changed outside the store."""

from __future__ import annotations

from typing import Any

import pytest

from sessionstore import SessionStore, StoreConfig
from tests import backends
from tests.store.test_store import count_calls

TENANT = "acme-corp"
IP = "203.0.113.7"
DAY = 86400


@pytest.fixture
def config(prefix: str) -> StoreConfig:
    return StoreConfig(prefix=prefix, events=True)


def login(store: SessionStore, user: int, tenant: str = TENANT) -> Any:
    return store.create(tenant, user, ip_address=IP, user_agent="pytest")[0]


def expired_ids(store: SessionStore, tenant: str = TENANT) -> list[str]:
    return sorted(
        event.session_id
        for event in store.events(tenant, types=["session.expired"], limit=1000).data
    )


def test_after_its_first_run_a_sweep_never_scans(
    store: SessionStore, clock: backends.Clock, monkeypatch: pytest.MonkeyPatch
) -> None:
    ended = sorted(login(store, user).id for user in range(2, 6))
    clock.advance(2 * DAY)
    calls = count_calls(store, monkeypatch)
    assert store.sweep_expired() >= 4  # a new prefix: nothing written before the registry
    assert "scan" not in calls
    assert [session for session in ended if session not in expired_ids(store)] == []


def test_buckets_written_before_the_registry_are_found_once(
    store: SessionStore, client: Any, clock: backends.Clock, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An upgrade: sessions whose buckets no create registered."""
    ended = sorted(login(store, user).id for user in range(4))
    keys = store._core.keys
    client.delete(keys.registry(), keys.registry_seeded())
    fresh = SessionStore(client, config=store._core.config, clock=clock)  # remembers nothing
    clock.advance(2 * DAY)
    calls = count_calls(fresh, monkeypatch)
    assert fresh.sweep_expired() >= 4
    assert "scan" in calls
    assert expired_ids(fresh) == ended
    calls.clear()
    fresh.sweep_expired()
    assert "scan" not in calls


def test_a_bucket_registered_again_during_a_sweep_stays_registered(
    store: SessionStore, client: Any, clock: backends.Clock, config: StoreConfig
) -> None:
    first = login(store, 1)
    store.sweep_expired()
    clock.advance(2 * DAY)  # the bucket's registration has passed its time
    other = SessionStore(client, config=config, clock=clock)  # another process logs user 1 in
    second = login(other, 1)
    store.sweep_expired()
    registry = client.zrange(store._core.keys.registry(), 0, -1)
    assert store._core.keys.created_index_of(TENANT, second.id).encode() in registry
    assert expired_ids(store) == [first.id]
    clock.advance(2 * DAY)
    store.sweep_expired()
    assert expired_ids(store) == sorted([first.id, second.id])


def test_a_registration_deleted_by_hand_comes_back_with_the_next_create_elsewhere(
    store: SessionStore, client: Any, clock: backends.Clock, config: StoreConfig
) -> None:
    login(store, 1)
    store.sweep_expired()
    client.zrem(store._core.keys.registry(), *client.zrange(store._core.keys.registry(), 0, -1))
    ended = login(SessionStore(client, config=config, clock=clock), 1)
    clock.advance(2 * DAY)
    store.sweep_expired()
    assert ended.id in expired_ids(store)


def test_the_registry_lasts_as_long_as_its_longest_session(
    store: SessionStore, client: Any, config: StoreConfig
) -> None:
    session = login(store, 1)
    ttl_ms = client.pttl(store._core.keys.registry())
    session_ttl_ms = client.pttl(store._core.keys.session(TENANT, session.id))
    step_ms = store._core.registered.step_ms
    assert session_ttl_ms - 1000 <= ttl_ms <= session_ttl_ms + step_ms + 1000


def test_a_process_registers_a_bucket_once_per_step(
    store: SessionStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    login(store, 1)
    calls = count_calls(store, monkeypatch)
    login(store, 1)
    assert calls == ["evalsha"]  # the bucket is registered long enough: the script alone
