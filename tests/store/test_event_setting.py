"""Events are a setting of the deployment, kept in Redis: every store under the prefix records
them once any turns them on, whatever its own config says. Run on every backend."""

from __future__ import annotations

from typing import Any

from sessionstore import AsyncSessionStore, SessionStore, StoreConfig
from sessionstore._core import operations
from tests import backends

TENANT = "acme-corp"
IP = "203.0.113.7"


def created(store: SessionStore) -> int:
    return len(store.events(TENANT, types=["session.created"]).data)


def test_a_store_on_the_default_config_records_once_events_are_on(
    client: Any, prefix: str, clock: backends.Clock
) -> None:
    server = SessionStore(client, config=StoreConfig(prefix=prefix), clock=clock)
    server.enable_events()  # what `sessionstore serve --events` does
    app = SessionStore(client, config=StoreConfig(prefix=prefix), clock=clock)
    app.create(TENANT, 7, ip_address=IP, user_agent="pytest")
    assert created(server) == 1
    assert app.events_enabled() and server.events_enabled()


def test_a_running_store_follows_the_setting_within_its_refresh_bound(
    client: Any, prefix: str, clock: backends.Clock
) -> None:
    app = SessionStore(client, config=StoreConfig(prefix=prefix), clock=clock)
    elapsed = [0.0]  # the refresh bound runs on elapsed time, not on the sessions' clock
    app._core.monotonic = lambda: elapsed[0]
    app.create(TENANT, 1, ip_address=IP, user_agent="pytest")  # events off: nothing recorded
    operator = SessionStore(client, config=StoreConfig(prefix=prefix), clock=clock)
    operator.enable_events()
    app.create(TENANT, 2, ip_address=IP, user_agent="pytest")  # within the bound: not yet
    elapsed[0] += operations.SETTINGS_REFRESH
    app.create(TENANT, 3, ip_address=IP, user_agent="pytest")
    assert [event.user_id for event in operator.events(TENANT).data] == [3]
    operator.disable_events()
    elapsed[0] += operations.SETTINGS_REFRESH
    app.create(TENANT, 4, ip_address=IP, user_agent="pytest")
    assert created(operator) == 1
    assert not app.events_enabled()


def test_a_store_configured_with_events_turns_them_on_for_everyone(
    client: Any, prefix: str, clock: backends.Clock
) -> None:
    recorder = SessionStore(client, config=StoreConfig(prefix=prefix, events=True), clock=clock)
    recorder.create(TENANT, 1, ip_address=IP, user_agent="pytest")
    other = SessionStore(client, config=StoreConfig(prefix=prefix), clock=clock)
    other.revoke_all(TENANT, 1)
    assert [event.type for event in recorder.events(TENANT).data] == [
        "session.created",
        "session.revoked",
    ]


async def test_the_async_store_reads_and_sets_the_same_setting(
    backend: str, fake_server: Any, client: Any, prefix: str, clock: backends.Clock
) -> None:
    store = AsyncSessionStore(
        backends.async_client(backend, fake_server), config=StoreConfig(prefix=prefix), clock=clock
    )
    try:
        assert not await store.events_enabled()
        await store.enable_events()
        await store.create(TENANT, 1, ip_address=IP, user_agent="pytest")
        sync = SessionStore(client, config=StoreConfig(prefix=prefix), clock=clock)
        assert sync.events_enabled() and created(sync) == 1
    finally:
        await store.aclose()
