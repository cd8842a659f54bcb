"""Tenant isolation against a real server: a key reaches its own tenant and nothing else.

Tenants A and B both have a user 42. With A's key, every endpoint on B's paths answers 404,
byte for byte the same whether or not the object exists there (and the same as for a tenant
that has no data at all), and changes nothing in B.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import httpx
import pytest

from tests.api.helpers import TENANT_A, TENANT_B, TENANT_NONE, Live, admin, bearer, is_problem

UA = "Mozilla/5.0 (X11; Linux x86_64; rv:121.0) Gecko/20100101 Firefox/121.0"
IP = "198.51.100.42"
MISSING_SESSION = "sess_0000000000AAAAAAAAAAAAAAAAAAAAAA"


@dataclass
class World:
    key_a: str
    key_b: str
    session_a: str
    session_b: str
    tokens_b: list[str]


@pytest.fixture
def world(live: Live) -> Iterator[World]:
    store = live.store
    session_a, _ = store.create(TENANT_A, 42, ip_address=IP, user_agent=UA)
    created_b = [store.create(TENANT_B, 42, ip_address=IP, user_agent=UA) for _ in range(2)]
    yield World(
        key_a=live.key(TENANT_A),
        key_b=live.key(TENANT_B),
        session_a=session_a.id,
        session_b=created_b[0][0].id,
        tokens_b=[token for _, token in created_b],
    )
    for tenant in (TENANT_A, TENANT_B):
        store.revoke_all(tenant, 42)


def _requests(tenant: str, *, user: int, session: str) -> list[tuple[str, str]]:
    return [
        ("GET", admin(tenant, f"/users/{user}/sessions")),
        ("DELETE", admin(tenant, f"/users/{user}/sessions/{session}")),
        ("DELETE", admin(tenant, f"/users/{user}/sessions")),
        ("GET", admin(tenant, "/sessions")),
        ("GET", admin(tenant, f"/sessions?userId={user}")),
        ("GET", admin(tenant, f"/sessions?ipAddress={IP}")),
        ("GET", admin(tenant, f"/sessions?userId={user}&ipAddress={IP}&limit=1")),
        ("DELETE", admin(tenant, f"/sessions?ipAddress={IP}")),
        ("DELETE", admin(tenant, "/sessions?all=true")),
        # Even invalid input says nothing about a foreign tenant: 404, not 422.
        ("GET", admin(tenant, "/users/01/sessions")),
        ("GET", admin(tenant, "/sessions?limit=0")),
        ("DELETE", admin(tenant, "/sessions")),
    ]


def _answer(response: httpx.Response) -> tuple[int, str | None, bytes]:
    return response.status_code, response.headers.get("content-type"), response.content


def _b_state(live: Live, world: World) -> tuple:
    sessions = live.store.list_sessions(TENANT_B, user_id=42)
    return (
        [session.id for session in sessions.data],
        [live.store.validate(TENANT_B, token) is not None for token in world.tokens_b],
    )


def test_a_key_on_another_tenant_finds_nothing_and_changes_nothing(
    live: Live, world: World
) -> None:
    before = _b_state(live, world)
    headers = bearer(world.key_a)
    nowhere = [
        _answer(live.http.request(m, u, headers=headers))
        for m, u in _requests(TENANT_NONE, user=42, session=world.session_b)
    ]
    existing = [
        _answer(live.http.request(m, u, headers=headers))
        for m, u in _requests(TENANT_B, user=42, session=world.session_b)
    ]
    missing = [
        _answer(live.http.request(m, u, headers=headers))
        for m, u in _requests(TENANT_B, user=43, session=MISSING_SESSION)
    ]

    assert existing == missing == nowhere
    assert {status for status, _, _ in existing} == {404}
    assert _b_state(live, world) == before
    assert len(before[0]) == 2 and before[1] == [True, True]


def test_a_foreign_session_id_on_the_own_tenant_is_not_found(live: Live, world: World) -> None:
    path = admin(TENANT_A, f"/users/42/sessions/{world.session_b}")
    response = live.http.delete(path, headers=bearer(world.key_a))
    unknown = live.http.delete(
        admin(TENANT_A, f"/users/42/sessions/{MISSING_SESSION}"), headers=bearer(world.key_a)
    )
    assert is_problem(response, 404)
    assert _answer(response) == _answer(unknown)
    assert all(live.store.validate(TENANT_B, token) for token in world.tokens_b)


def test_filters_never_cross_tenants(live: Live, world: World) -> None:
    for query in ("?userId=42", f"?ipAddress={IP}", ""):
        response = live.http.get(admin(TENANT_A, f"/sessions{query}"), headers=bearer(world.key_a))
        assert response.status_code == 200
        ids = {item["id"] for item in response.json()["data"]}
        assert world.session_a in ids and world.session_b not in ids


def test_each_key_sees_its_own_tenant(live: Live, world: World) -> None:
    own_a = live.http.get(admin(TENANT_A, "/users/42/sessions"), headers=bearer(world.key_a))
    own_b = live.http.get(admin(TENANT_B, "/users/42/sessions"), headers=bearer(world.key_b))
    assert [item["id"] for item in own_a.json()["data"]] == [world.session_a]
    ids_b = {item["id"] for item in own_b.json()["data"]}
    assert len(ids_b) == 2 and world.session_b in ids_b


def test_revoke_all_on_the_own_tenant_leaves_the_other_alone(live: Live, world: World) -> None:
    response = live.http.delete(admin(TENANT_A, "/users/42/sessions"), headers=bearer(world.key_a))
    assert response.json() == {"revoked": 1}
    assert all(live.store.validate(TENANT_B, token) for token in world.tokens_b)
