"""Fixtures for the admin API: the app in-process on every backend, and a real server process."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest

from sessionstore import AsyncSessionStore, StoreConfig
from sessionstore.admin import create_app
from sessionstore.admin.apikeys import ApiKeys
from sessionstore.admin.ratelimit import RateLimits
from tests import backends
from tests.api.helpers import CLIENT_ADDRESS, REAL_BACKENDS, TENANT_A, TENANT_B, Live, ServerProcess

# The files on the package's server processes (``live``) run on one worker, which starts them
# once; the rest of the package spreads over every worker (tests/grouping.py).
LIVE_SERVER_FILES = ("test_isolation.py", "test_live.py")


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    here = Path(__file__).parent
    for item in items:
        if item.path.parent == here and item.path.name in LIVE_SERVER_FILES:
            item.add_marker(pytest.mark.xdist_group("tests/api live servers"))


# -- in-process ---------------------------------------------------------------------------------


@pytest.fixture
def config(prefix: str) -> StoreConfig:
    """The admin API's store records events: the events endpoint answers from them."""
    return StoreConfig(prefix=prefix, events=True)


@pytest.fixture
def limits() -> RateLimits:
    return RateLimits()


@pytest.fixture
def api_keys(astore: AsyncSessionStore) -> ApiKeys:
    return ApiKeys(astore.client, astore.config.prefix)


@pytest.fixture
async def keys(api_keys: ApiKeys) -> dict[str, str]:
    """One API key per tenant."""
    return {tenant: (await api_keys.create(tenant))[1] for tenant in (TENANT_A, TENANT_B)}


@pytest.fixture
async def api(
    astore: AsyncSessionStore, limits: RateLimits, clock: backends.Clock
) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(astore, limits=limits, clock=clock)
    transport = httpx.ASGITransport(app=app, client=CLIENT_ADDRESS)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        yield client


# -- a real server process ------------------------------------------------------------------------


@pytest.fixture(scope="package", params=REAL_BACKENDS)
def live(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Live]:
    """One server per real backend for the whole package; tests use their own users."""
    client = backends.sync_client(request.param)
    url = backends.url_for(request.param)
    assert url is not None
    prefix = backends.new_prefix()
    server = ServerProcess(
        tmp_path_factory.mktemp("live"),
        "--redis-url",
        url,
        "--prefix",
        prefix,
        # The isolation and auth tests fail on purpose; none of them is about the throttle.
        "--rate-failed-auth",
        "1000/1",
    )
    live = Live(server, url, prefix, client)
    yield live
    live.http.close()
    server.stop()
    backends.delete_prefix(client, prefix)
    client.close()
