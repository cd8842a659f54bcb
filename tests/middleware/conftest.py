"""Fixtures: the test app (apps.py) in both flavours, ASGI and WSGI, on this test's backend.

``make_web(**options)`` builds the app with those middleware options over a store of its own
(sharing the test's client, prefix and clock), and counts that store's Redis round trips, so
the test's own setup calls through ``store`` are never counted.
"""

from __future__ import annotations

import inspect
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import pytest

from sessionstore import AsyncSessionStore, SessionStore, StoreConfig
from tests import backends
from tests.middleware import apps

FLAVOURS = ["asgi", "wsgi"]
LAPTOP = "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_4) AppleWebKit/605.1.15 Safari/605.1.15"
PHONE = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) Mobile/15E148 Safari/604.1"


class RoundTrips:
    """How many batches (one round trip each) a store sent to Redis."""

    def __init__(self) -> None:
        self.count = 0


def count_round_trips(monkeypatch: pytest.MonkeyPatch, store: Any) -> RoundTrips:
    trips = RoundTrips()
    run = store._run

    def counted(batch: Any) -> Any:
        # The layout check runs once per store, before its first operation: not per request.
        trips.count += store._core.layout_checked
        return run(batch)  # the async store's coroutine is awaited by its caller, as before

    monkeypatch.setattr(store, "_run", counted)
    return trips


class Device:
    """One browser or API client with its own cookie jar, talking to the app in process."""

    def __init__(self, client: httpx.Client | httpx.AsyncClient) -> None:
        self.client = client

    @property
    def cookies(self) -> httpx.Cookies:
        return self.client.cookies

    async def request(self, method: str, url: str, **options: Any) -> httpx.Response:
        response = self.client.request(method, url, **options)
        return await response if inspect.isawaitable(response) else response

    async def get(self, url: str, **options: Any) -> httpx.Response:
        return await self.request("GET", url, **options)

    async def post(self, url: str, **options: Any) -> httpx.Response:
        return await self.request("POST", url, **options)

    async def login(self, user_id: int) -> httpx.Response:
        response = await self.post("/login", json={"user_id": user_id})
        assert response.status_code == 204, response.text
        return response


class Web:
    """The test app of one flavour, and the round trips its store made."""

    def __init__(self, flavour: str, app: Any, trips: RoundTrips) -> None:
        self.flavour = flavour
        self.app = app
        self.trips = trips
        self._clients: list[httpx.Client | httpx.AsyncClient] = []

    def device(self, user_agent: str = LAPTOP, peer: str = "127.0.0.1") -> Device:
        # https, so the cookie jar keeps and sends Secure cookies as a browser would.
        options: dict[str, Any] = {
            "base_url": "https://testserver",
            "headers": {"user-agent": user_agent},
        }
        client: httpx.Client | httpx.AsyncClient
        if self.flavour == "asgi":
            transport = httpx.ASGITransport(self.app, client=(peer, 50000))
            client = httpx.AsyncClient(transport=transport, **options)
        else:
            wsgi_transport = httpx.WSGITransport(self.app, remote_addr=peer)
            client = httpx.Client(transport=wsgi_transport, **options)
        self._clients.append(client)
        return Device(client)

    async def close(self) -> None:
        for client in self._clients:
            if isinstance(client, httpx.AsyncClient):
                await client.aclose()
            else:
                client.close()


@pytest.fixture(params=FLAVOURS)
def flavour(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
async def make_web(
    flavour: str,
    backend: str,
    client: Any,
    config: StoreConfig,
    clock: backends.Clock,
    fake_server: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> AsyncIterator[Callable[..., Web]]:
    built: list[Web] = []
    stores: list[AsyncSessionStore] = []

    def make(**options: Any) -> Web:
        if flavour == "asgi":
            app_store: Any = AsyncSessionStore(
                backends.async_client(backend, fake_server), config=config, clock=clock
            )
            stores.append(app_store)
            app: Any = apps.starlette_app(app_store, **options)
        else:
            app_store = SessionStore(client, config=config, clock=clock)
            app = apps.flask_app(app_store, **options)
        web = Web(flavour, app, count_round_trips(monkeypatch, app_store))
        built.append(web)
        return web

    yield make
    for web in built:
        await web.close()
    for async_store in stores:
        await async_store.aclose()


def session_cookie(response: httpx.Response, name: str = "session") -> str | None:
    """The raw Set-Cookie header a response sets for ``name``, if any."""
    for value in response.headers.get_list("set-cookie"):
        if value.startswith(f"{name}="):
            return value
    return None
