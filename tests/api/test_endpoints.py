"""The four admin endpoints, in-process. The store they call is tested on every backend; these
run once, on the real Redis."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from sessionstore import AsyncSessionStore, StoreConfig
from sessionstore.admin import create_app
from tests import backends
from tests.api.helpers import TENANT_A, admin, bearer, is_problem


@pytest.fixture(params=backends.ONE_BACKEND)
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


UA_MAC = (
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 Chrome/120.0 Safari/537.36"
)


async def _create(astore: AsyncSessionStore, user_id: int, ip: str = "203.0.113.45") -> tuple:
    return await astore.create(TENANT_A, user_id, ip_address=ip, user_agent=UA_MAC)


async def test_list_user_sessions_most_recently_active_first(
    api: httpx.AsyncClient, astore: AsyncSessionStore, keys: dict, clock: backends.Clock
) -> None:
    first, first_token = await _create(astore, 42)
    clock.advance(5)
    second, _ = await _create(astore, 42)
    await _create(astore, 43)
    clock.advance(120)  # past the touch interval, so validating records activity
    assert await astore.validate(TENANT_A, first_token) is not None

    response = await api.get(admin(TENANT_A, "/users/42/sessions"), headers=bearer(keys[TENANT_A]))

    assert response.status_code == 200
    body = response.json()
    assert [item["id"] for item in body["data"]] == [first.id, second.id]
    assert body["hasMore"] is False and body["nextCursor"] is None
    assert body["data"][0] == (await astore.get(TENANT_A, first.id)).to_dict()


async def test_list_user_sessions_of_unknown_user_is_empty(
    api: httpx.AsyncClient, keys: dict
) -> None:
    response = await api.get(admin(TENANT_A, "/users/0/sessions"), headers=bearer(keys[TENANT_A]))
    assert response.json() == {"data": [], "hasMore": False, "nextCursor": None, "totalCount": 0}


async def test_revoke_one_session_immediately(
    api: httpx.AsyncClient, astore: AsyncSessionStore, keys: dict
) -> None:
    session, token = await _create(astore, 42)
    other, other_token = await _create(astore, 42)
    path = admin(TENANT_A, f"/users/42/sessions/{session.id}")

    response = await api.delete(path, headers=bearer(keys[TENANT_A]))

    assert response.status_code == 200
    assert response.json() == {"id": session.id, "revoked": True}
    assert await astore.validate(TENANT_A, token) is None
    assert await astore.validate(TENANT_A, other_token) is not None
    again = await api.delete(path, headers=bearer(keys[TENANT_A]))
    assert is_problem(again, 404)


async def test_revoke_needs_the_owner(
    api: httpx.AsyncClient, astore: AsyncSessionStore, keys: dict
) -> None:
    session, token = await _create(astore, 42)
    for path in (f"/users/43/sessions/{session.id}", "/users/42/sessions/sess_abc123xyz"):
        response = await api.delete(admin(TENANT_A, path), headers=bearer(keys[TENANT_A]))
        assert is_problem(response, 404)
    assert await astore.validate(TENANT_A, token) is not None


async def test_revoke_all_of_a_users_sessions(
    api: httpx.AsyncClient, astore: AsyncSessionStore, keys: dict
) -> None:
    tokens = [(await _create(astore, 42))[1] for _ in range(3)]
    _, bystander = await _create(astore, 43)
    path = admin(TENANT_A, "/users/42/sessions")

    response = await api.delete(path, headers=bearer(keys[TENANT_A]))

    assert response.status_code == 200
    assert response.json() == {"revoked": 3}
    assert [await astore.validate(TENANT_A, token) for token in tokens] == [None] * 3
    assert await astore.validate(TENANT_A, bystander) is not None
    assert (await api.get(path, headers=bearer(keys[TENANT_A]))).json()["data"] == []
    assert (await api.delete(path, headers=bearer(keys[TENANT_A]))).json() == {"revoked": 0}


async def test_list_all_sessions_newest_first_with_filters(
    api: httpx.AsyncClient, astore: AsyncSessionStore, keys: dict, clock: backends.Clock
) -> None:
    created = []
    for user_id, ip in [(42, "203.0.113.45"), (43, "203.0.113.45"), (42, "2001:db8::1")]:
        created.append((await _create(astore, user_id, ip))[0])
        clock.advance(1)
    newest_first = [session.id for session in reversed(created)]

    async def ids(query: str) -> list[str]:
        response = await api.get(
            admin(TENANT_A, f"/sessions{query}"), headers=bearer(keys[TENANT_A])
        )
        assert response.status_code == 200, response.text
        return [item["id"] for item in response.json()["data"]]

    assert await ids("") == newest_first
    assert await ids("?userId=42") == [created[2].id, created[0].id]
    assert await ids("?ipAddress=203.0.113.45") == [created[1].id, created[0].id]
    assert await ids("?ipAddress=::ffff:203.0.113.45&userId=43") == [created[1].id]
    assert await ids("?ipAddress=2001:DB8:0::1") == [created[2].id]
    assert await ids("?userId=44") == []


async def test_list_all_sessions_pages_with_a_cursor(
    api: httpx.AsyncClient, astore: AsyncSessionStore, keys: dict, clock: backends.Clock
) -> None:
    created = []
    for _ in range(5):
        created.append((await _create(astore, 42))[0].id)
        clock.advance(0.001)
    seen, cursor, pages = [], None, 0
    while True:
        query = "?limit=2" + (f"&cursor={cursor}" if cursor else "")
        response = await api.get(
            admin(TENANT_A, f"/sessions{query}"), headers=bearer(keys[TENANT_A])
        )
        body = response.json()
        pages += 1
        seen += [item["id"] for item in body["data"]]
        assert body["hasMore"] is (body["nextCursor"] is not None)
        cursor = body["nextCursor"]
        if cursor is None:
            break
    assert pages == 3
    assert seen == list(reversed(created))


async def test_head_answers_like_get_without_a_body(api: httpx.AsyncClient, keys: dict) -> None:
    response = await api.head(admin(TENANT_A, "/sessions"), headers=bearer(keys[TENANT_A]))
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"


async def test_no_answer_may_be_cached(api: httpx.AsyncClient, keys: dict) -> None:
    # Answers hold IP addresses and user agents: no shared or browser cache may keep them.
    answers = [
        await api.get(admin(TENANT_A, "/users/0/sessions"), headers=bearer(keys[TENANT_A])),
        await api.get(admin(TENANT_A, "/sessions"), headers=bearer(keys[TENANT_A])),
        await api.get(admin(TENANT_A, "/sessions")),  # 401
        await api.get(admin(TENANT_A, "/nowhere"), headers=bearer(keys[TENANT_A])),  # 404
    ]
    assert [response.status_code for response in answers] == [200, 200, 401, 404]
    assert {response.headers["cache-control"] for response in answers} == {"no-store"}


async def test_revoke_every_session_from_an_ip(
    api: httpx.AsyncClient, astore: AsyncSessionStore, keys: dict
) -> None:
    attacker = [(await _create(astore, user, "198.51.100.66"))[1] for user in (42, 43, 44)]
    _, office = await _create(astore, 42, "203.0.113.45")

    response = await api.delete(
        admin(TENANT_A, "/sessions?ipAddress=198.51.100.66"), headers=bearer(keys[TENANT_A])
    )

    assert response.status_code == 200
    assert response.json() == {"revoked": 3}
    assert [await astore.validate(TENANT_A, token) for token in attacker] == [None] * 3
    assert await astore.validate(TENANT_A, office) is not None


async def test_bulk_revocation_narrows_by_user_and_needs_a_filter_or_all(
    api: httpx.AsyncClient, astore: AsyncSessionStore, keys: dict
) -> None:
    _, theirs = await _create(astore, 43, "198.51.100.66")
    for user in (42, 42):
        await _create(astore, user, "198.51.100.66")
    auth = bearer(keys[TENANT_A])

    narrowed = await api.delete(
        admin(TENANT_A, "/sessions?ipAddress=198.51.100.66&userId=42"), headers=auth
    )
    assert narrowed.json() == {"revoked": 2}
    assert await astore.validate(TENANT_A, theirs) is not None

    for query in (
        "",
        "?all=false",
        "?all=1",
        "?ipAddress=198.51.100.300",
        "?userId=-1",
        "?limit=5",
    ):
        refused = await api.delete(admin(TENANT_A, f"/sessions{query}"), headers=auth)
        assert is_problem(refused, 422), query
    assert await astore.validate(TENANT_A, theirs) is not None

    everything = await api.delete(admin(TENANT_A, "/sessions?all=true"), headers=auth)
    assert everything.json() == {"revoked": 1}
    assert await astore.validate(TENANT_A, theirs) is None


async def test_events_record_who_revoked_and_page_in_order(
    api: httpx.AsyncClient, astore: AsyncSessionStore, keys: dict, clock: backends.Clock
) -> None:
    first, _ = await _create(astore, 42)
    clock.advance(1)
    second, _ = await _create(astore, 43)
    auth = bearer(keys[TENANT_A])
    clock.advance(1)  # a tenant's events are in time order (ties: by bucket)
    await api.delete(admin(TENANT_A, f"/users/42/sessions/{first.id}"), headers=auth)
    clock.advance(1)
    await api.delete(admin(TENANT_A, "/sessions?userId=43"), headers=auth)
    key_id = keys[TENANT_A][8:24]

    seen, cursor = [], None
    while True:
        query = "/events?limit=2" + (f"&after={cursor}" if cursor else "")
        page = (await api.get(admin(TENANT_A, query), headers=auth)).json()
        seen += page["data"]
        if not page["hasMore"]:
            break
        cursor = page["nextCursor"]
    assert [(e["type"], e["sessionId"], e["actor"]) for e in seen] == [
        ("session.created", first.id, "user"),
        ("session.created", second.id, "user"),
        ("session.revoked", first.id, f"admin:{key_id}"),
        ("session.revoked", second.id, f"admin:{key_id}"),
    ]
    revoked = await api.get(admin(TENANT_A, "/events?type=session.revoked&userId=43"), headers=auth)
    assert [(e["sessionId"], e["reason"]) for e in revoked.json()["data"]] == [(second.id, "bulk")]
    for query in ("?type=session.deleted", "?after=yesterday", "?limit=0", "?userId=x"):
        assert is_problem(await api.get(admin(TENANT_A, f"/events{query}"), headers=auth), 422)


async def test_events_are_404_when_the_server_records_none(
    backend: str, fake_server: Any, prefix: str, keys: dict
) -> None:
    store = AsyncSessionStore(
        backends.async_client(backend, fake_server), config=StoreConfig(prefix=prefix)
    )
    transport = httpx.ASGITransport(app=create_app(store))
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        answer = await client.get(admin(TENANT_A, "/events"), headers=bearer(keys[TENANT_A]))
    assert is_problem(answer, 404) and "--events" in answer.json()["detail"]
    await store.aclose()
