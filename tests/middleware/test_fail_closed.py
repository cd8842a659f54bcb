"""A frozen Redis: both middlewares answer 503, for valid and revoked tokens alike, and recover.

Runs on a redis-server of its own (tests/reliability/servers.py), paused with SIGSTOP and
resumed with SIGCONT by pid; the app and its store live through the outage unchanged.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest

from sessionstore import AsyncSessionStore, SessionStore, StoreConfig
from tests.middleware import apps
from tests.middleware.apps import TENANT
from tests.middleware.conftest import COOKIE, LAPTOP, RoundTrips, Web, session_cookie
from tests.reliability.servers import RedisProcess, start_server

pytestmark = pytest.mark.slow
POLICY: dict[str, Any] = {"required": True, "exclude_paths": ["/login"]}


@pytest.fixture
def redis_process(tmp_path: Path) -> Iterator[RedisProcess]:
    server = start_server(tmp_path)
    yield server
    server.stop()


@pytest.fixture
async def web(flavour: str, redis_process: RedisProcess) -> AsyncIterator[Web]:
    config = StoreConfig(prefix="middleware-outage")
    if flavour == "asgi":
        store: Any = AsyncSessionStore.from_url(redis_process.url, config=config)
        app: Any = apps.starlette_app(store, **POLICY)
    else:
        store = SessionStore.from_url(redis_process.url, config=config)
        app = apps.flask_app(store, **POLICY)
    web = Web(flavour, app, RoundTrips())
    yield web
    await web.close()
    if flavour == "asgi":
        await store.aclose()
    else:
        store.close()


def assert_unavailable(response: Any) -> None:
    assert response.status_code == 503
    assert response.headers["content-type"] == "application/problem+json"
    assert response.headers["retry-after"] == "1"
    assert response.json()["status"] == 503
    # A blip must not sign anyone out.
    assert session_cookie(response) is None


async def test_a_frozen_store_fails_closed_and_recovers(
    web: Web, redis_process: RedisProcess
) -> None:
    with SessionStore.from_url(
        redis_process.url, config=StoreConfig(prefix="middleware-outage")
    ) as setup:
        live, live_token = setup.create(TENANT, 1, ip_address="192.0.2.1", user_agent=LAPTOP)
        revoked, revoked_token = setup.create(TENANT, 1, ip_address="192.0.2.1", user_agent=LAPTOP)
        setup.revoke(TENANT, 1, revoked.id)
    browser = web.device()
    browser.cookies.set(COOKIE, live_token)
    api = web.device()
    as_bearer = {"authorization": f"Bearer {revoked_token}"}
    assert (await browser.get("/whoami")).json()["session"] == live.id

    redis_process.pause()
    try:
        assert_unavailable(await browser.get("/whoami"))
        assert_unavailable(await api.get("/whoami", headers=as_bearer))
        # The helpers' own Redis calls fail closed too: no cookie without a stored session.
        assert_unavailable(await web.device().post("/login", json={"user_id": 2}))
        # No token, no Redis call: anonymous requests are refused by policy, not by the outage.
        assert (await web.device().get("/whoami")).status_code == 401
    finally:
        redis_process.resume()

    assert (await browser.get("/whoami")).json()["session"] == live.id
    assert browser.cookies[COOKIE] == live_token
    assert (await api.get("/whoami", headers=as_bearer)).status_code == 401
