"""AsyncSessionStore: the same contract as SessionStore, awaited, on every backend."""

from __future__ import annotations

import asyncio
import inspect

import pytest

from sessionstore import AsyncSessionStore, InvalidUserId, SessionStore
from tests import backends

TENANT = "acme-corp"
AGENT = "Mozilla/5.0 (X11; Linux x86_64; rv:121.0) Gecko/20100101 Firefox/121.0"


async def login(store: AsyncSessionStore, user_id: int = 456, ip: str = "203.0.113.45"):
    return await store.create(
        TENANT, user_id, ip_address=ip, user_agent=AGENT, auth_method="social"
    )


async def test_lifecycle(astore: AsyncSessionStore) -> None:
    session, token = await login(astore)
    assert session.device.os == "Linux" and session.auth_method == "social"
    assert await astore.validate(TENANT, token) == session
    assert await astore.get(TENANT, session.id) == session
    assert [s.id for s in await astore.list_user_sessions(TENANT, 456)] == [session.id]
    page = await astore.list_sessions(TENANT, ip_address="203.0.113.45")
    assert [s.id for s in page.data] == [session.id] and not page.has_more
    assert await astore.mark_mfa_verified(TENANT, session.id)
    assert await astore.revoke(TENANT, 456, session.id)
    assert await astore.validate(TENANT, token) is None
    with pytest.raises(InvalidUserId):
        await astore.revoke_all(TENANT, -5)


async def test_sync_and_async_stores_see_the_same_sessions(
    astore: AsyncSessionStore, store: SessionStore
) -> None:
    session, token = await login(astore)
    assert store.validate(TENANT, token) == session
    assert store.revoke_all(TENANT, 456) == 1
    assert await astore.validate(TENANT, token) is None


async def test_concurrent_validations_and_revoke_all(
    astore: AsyncSessionStore, clock: backends.Clock
) -> None:
    made = [await login(astore, user_id=9, ip=f"10.0.0.{i}") for i in range(10)]
    results = await asyncio.gather(*(astore.validate(TENANT, t) for _, t in made))
    assert [r.id for r in results] == [s.id for s, _ in made]
    assert await astore.revoke_all(TENANT, 9) == 10
    assert await asyncio.gather(*(astore.validate(TENANT, t) for _, t in made)) == [None] * 10


async def test_pagination(astore: AsyncSessionStore, clock: backends.Clock) -> None:
    made = []
    for i in range(7):
        made.append((await login(astore, user_id=i))[0].id)
        clock.advance(0.01)
    seen, cursor = [], None
    while True:
        page = await astore.list_sessions(TENANT, limit=3, cursor=cursor)
        seen += [s.id for s in page.data]
        if not page.has_more:
            break
        cursor = page.next_cursor
    assert seen == made[::-1]


def test_twins_have_the_same_methods_and_signatures() -> None:
    def public(cls: type) -> dict[str, inspect.Signature]:
        return {
            name: inspect.signature(member)
            for name, member in vars(cls).items()
            if not name.startswith("_") and callable(member) and name not in {"close", "aclose"}
        }

    sync, asynchronous = public(SessionStore), public(AsyncSessionStore)
    assert sync.keys() == asynchronous.keys()
    for name, signature in sync.items():
        assert signature.parameters.keys() == asynchronous[name].parameters.keys(), name
        twin = getattr(AsyncSessionStore, name)
        if name == "tail":  # an iterator: an async generator on the async face
            assert inspect.isasyncgenfunction(twin)
        elif name != "from_url":
            assert inspect.iscoroutinefunction(twin), name
