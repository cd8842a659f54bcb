"""Every error is problem+json with the documented status; bad input is never a 500.

Bad input is refused before the store reads Redis, so those cases run once, on the real Redis
(``RULE``); the store under the API is tested on every backend."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest

from sessionstore import AsyncSessionStore, StoreConfig
from sessionstore.admin import create_app
from sessionstore.admin.apikeys import mint
from tests import backends
from tests.api.helpers import TENANT_A, admin, bearer, is_problem, typo, unused_port

RULE = pytest.mark.parametrize("backend", backends.ONE_BACKEND, indirect=True)

BAD_USER_IDS = ["01", "+1", "1e3", "-1", "1.0", "%201", "9223372036854775808", "abc", "0x1"]
BAD_QUERIES = [
    "userId=01",
    "userId=",
    "userId=-1",
    "userId=9223372036854775808",
    "ipAddress=x",
    "ipAddress=",
    "ipAddress=203.0.113.0/24",
    "ipAddress=fe80::1%25eth0",
    "ipAddress=010.1.1.1",
    "limit=0",
    "limit=1001",
    "limit=01",
    "limit=1.5",
    "limit=%2B5",
    "limit=",
    "limit=%D9%A3",  # an Arabic-Indic three: int() would take it
    "cursor=",
    "cursor=!!!",
    "cursor=bm90LWEtY3Vyc29y",
    "cursor=" + "A" * 200,
]


@pytest.mark.parametrize("user_id", BAD_USER_IDS)
@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/users/{}/sessions"),
        ("DELETE", "/users/{}/sessions"),
        ("DELETE", "/users/{}/sessions/sess_x"),
    ],
)
@RULE
async def test_bad_user_id_is_422(
    api: httpx.AsyncClient, keys: dict, method: str, path: str, user_id: str
) -> None:
    url = admin(TENANT_A, path.format(user_id))
    response = await api.request(method, url, headers=bearer(keys[TENANT_A]))
    assert is_problem(response, 422), response.text


@pytest.mark.parametrize("query", BAD_QUERIES)
@RULE
async def test_bad_listing_query_is_422(api: httpx.AsyncClient, keys: dict, query: str) -> None:
    response = await api.get(admin(TENANT_A, f"/sessions?{query}"), headers=bearer(keys[TENANT_A]))
    assert is_problem(response, 422), response.text


@pytest.mark.parametrize(
    "path",
    [
        "/",
        "/nope",
        "/t/acme-corp/api/v1/admin/nope",
        "/t/acme-corp/api/v1/admin/sessions/",
        "/t/acme-corp/api/v1/admin/users/42/sessions/",
        "/t/acme-corp/api/v2/admin/sessions",
        "/t/acme-corp/api/v1/openapi.json/",
    ],
)
@RULE
async def test_unknown_routes_are_404(api: httpx.AsyncClient, keys: dict, path: str) -> None:
    response = await api.get(path, headers=bearer(keys[TENANT_A]))
    assert is_problem(response, 404)


@pytest.mark.parametrize(
    ("method", "path", "allowed"),
    [
        ("POST", "/sessions", {"GET", "HEAD", "DELETE"}),
        ("PATCH", "/sessions", {"GET", "HEAD", "DELETE"}),
        ("PUT", "/users/42/sessions", {"GET", "HEAD", "DELETE"}),
        ("GET", "/users/42/sessions/sess_x", {"DELETE"}),
        ("OPTIONS", "/users/42/sessions/sess_x", {"DELETE"}),
    ],
)
@RULE
async def test_wrong_method_is_405_with_allow(
    api: httpx.AsyncClient, keys: dict, method: str, path: str, allowed: set[str]
) -> None:
    response = await api.request(method, admin(TENANT_A, path), headers=bearer(keys[TENANT_A]))
    assert is_problem(response, 405)
    assert set(response.headers["allow"].split(", ")) == allowed


# -- Redis down ---------------------------------------------------------------------------------


@pytest.fixture
async def dead_api() -> AsyncIterator[httpx.AsyncClient]:
    """The app on a Redis that is not there: every lookup fails."""
    store = AsyncSessionStore.from_url(
        f"redis://127.0.0.1:{unused_port()}", config=StoreConfig(prefix="unreachable")
    )
    transport = httpx.ASGITransport(app=create_app(store))
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        yield client
    await store.aclose()


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/users/42/sessions"),
        ("DELETE", "/users/42/sessions"),
        ("DELETE", "/users/42/sessions/sess_x"),
        ("GET", "/sessions"),
        ("DELETE", "/sessions?ipAddress=198.51.100.66"),
    ],
)
async def test_redis_down_is_503_with_retry_after(
    dead_api: httpx.AsyncClient, method: str, path: str
) -> None:
    _, key = mint()  # well formed, so the server has to ask Redis about it
    response = await dead_api.request(method, admin(TENANT_A, path), headers=bearer(key))
    assert is_problem(response, 503)
    assert int(response.headers["retry-after"]) >= 1
    assert "Traceback" not in response.text


async def test_a_mistyped_key_is_refused_without_asking_redis(dead_api: httpx.AsyncClient) -> None:
    _, key = mint()
    flipped = typo(key, 20)
    # Were Redis consulted, the dead server would make this a 503.
    for credential in (flipped, key[:-1], key + "0", "sk_live_", "sk_test_" + key[8:]):
        response = await dead_api.get(admin(TENANT_A, "/sessions"), headers=bearer(credential))
        assert is_problem(response, 401), credential
