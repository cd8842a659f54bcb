"""Scripts come back after SCRIPT FLUSH on every node (the NOSCRIPT path, as after a failover)."""

from __future__ import annotations

from typing import Any

import pytest

from sessionstore import AsyncSessionStore, SessionStore
from sessionstore._core import scripts
from tests import backends

pytestmark = pytest.mark.cluster

TENANT = "acme-corp"


def flush_scripts(client: Any) -> None:
    """Empty every primary's script cache: the store's next calls meet NOSCRIPT. (The cluster
    is shared: another test may load a script meanwhile, and a call then finds it; checking
    that none is loaded here failed CI for that reason alone.)"""
    for node in client.get_primaries():
        assert client.get_redis_connection(node).script_flush()


def loaded_everywhere(client: Any, script: scripts.Script) -> bool:
    return all(
        client.get_redis_connection(node).script_exists(script.sha) == [True]
        for node in client.get_primaries()
    )


def test_every_operation_reloads_its_script(
    store: SessionStore, client: Any, clock: backends.Clock
) -> None:
    # Twelve users: their keys, hence the scripts' calls, reach every primary.
    logins = {
        user: store.create(TENANT, user, ip_address="203.0.113.5", user_agent="x")
        for user in range(12)
    }
    flush_scripts(client)

    clock.advance(60)  # due a touch: validate asks its script
    assert all(store.validate(TENANT, token) for _, token in logins.values())
    assert loaded_everywhere(client, scripts.VALIDATE)

    flush_scripts(client)
    session, _ = logins[0]
    assert store.get(TENANT, session.id).id == session.id  # (touched above)
    assert store.mark_mfa_verified(TENANT, session.id)
    assert store.revoke(TENANT, 0, session.id)
    assert store.revoke_all(TENANT, 1) == 1
    assert len(store.list_user_sessions(TENANT, 2)) == 1
    fresh, token = store.create(TENANT, 2, ip_address="203.0.113.5", user_agent="x")
    assert store.validate(TENANT, token) == fresh
    assert {s.id for s in store.list_sessions(TENANT).data} == {
        fresh.id,
        *(s.id for user, (s, _) in logins.items() if user > 1),
    }


async def test_the_async_store_reloads_too(astore: AsyncSessionStore, client: Any) -> None:
    logins = [
        await astore.create(TENANT, user, ip_address="203.0.113.5", user_agent="x")
        for user in range(12)
    ]
    flush_scripts(client)
    for session, token in logins:
        assert await astore.validate(TENANT, token) == session
    flush_scripts(client)
    assert await astore.revoke_all(TENANT, 3) == 1
    fresh, token = await astore.create(TENANT, 3, ip_address="203.0.113.5", user_agent="x")
    assert await astore.validate(TENANT, token) == fresh
    assert loaded_everywhere(client, scripts.CREATE)
