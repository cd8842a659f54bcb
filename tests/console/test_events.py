"""The console and session events, in-process on every backend: each revocation made from the
console is recorded with its API key as the actor."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest

from sessionstore import AsyncSessionStore, StoreConfig
from sessionstore.admin import create_app
from sessionstore.admin.apikeys import ApiKeys
from tests.console.test_security import LOCAL, TENANT, client_for, csrf_of, sign_in

SAME = {"Sec-Fetch-Site": "same-origin"}


@pytest.fixture
def config(prefix: str) -> StoreConfig:
    return StoreConfig(prefix=prefix, events=True)


@pytest.fixture
async def key_and_id(astore: AsyncSessionStore) -> tuple[str, str]:
    record, key = await ApiKeys(astore.client, astore.config.prefix).create(TENANT)
    return record.id, key


@pytest.fixture
async def console(
    astore: AsyncSessionStore, key_and_id: tuple[str, str]
) -> AsyncIterator[httpx.AsyncClient]:
    async with client_for(create_app(astore), LOCAL) as client:
        assert (await sign_in(client, key_and_id[1])).status_code == 303
        yield client


async def revocations(astore: AsyncSessionStore) -> list[tuple[str, str, str | None]]:
    page = await astore.events(TENANT, types=["session.revoked"])
    return [(event.session_id, event.actor, event.reason) for event in page.data]


async def test_every_console_revocation_records_its_api_key_as_the_actor(
    astore: AsyncSessionStore, key_and_id: tuple[str, str], console: httpx.AsyncClient
) -> None:
    key_id = key_and_id[0]
    actor = f"admin:{key_id}"
    one, _ = await astore.create(TENANT, 5, ip_address="192.0.2.5", user_agent="curl/8")
    alls = [await astore.create(TENANT, 6, ip_address="192.0.2.6", user_agent="curl/8")]
    alls.append(await astore.create(TENANT, 6, ip_address="192.0.2.7", user_agent="curl/8"))
    by_ip, _ = await astore.create(TENANT, 8, ip_address="198.51.100.8", user_agent="curl/8")
    csrf = await csrf_of(console)

    # Events of different users may share a millisecond and merge in bucket order: compare
    # each step's new events as a set.
    seen: set[tuple[str, str, str | None]] = set()

    async def new_revocations() -> set[tuple[str, str, str | None]]:
        now = set(await revocations(astore))
        fresh = now - seen
        seen.update(now)
        return fresh

    done = await console.post(
        "/console/sessions/revoke",
        data={"csrf": csrf, "user_id": "5", "session_id": one.id},
        headers=SAME,
    )
    assert done.status_code == 303
    assert await new_revocations() == {(one.id, actor, None)}

    done = await console.post("/console/users/6/revoke-all", data={"csrf": csrf}, headers=SAME)
    assert done.status_code == 303
    assert await new_revocations() == {(session.id, actor, "revoke_all") for session, _ in alls}

    done = await console.post(
        "/console/ip/revoke", data={"csrf": csrf, "ip": "198.51.100.8"}, headers=SAME
    )
    assert done.status_code == 303
    assert await new_revocations() == {(by_ip.id, actor, "bulk")}
