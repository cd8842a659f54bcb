"""Fixtures: the test app (apps.py) in both flavours, ASGI and WSGI, on this test's backend.

``make_web(**options)`` builds the app with those middleware options over a store of its own
(sharing the test's client, prefix and clock), and counts that store's Redis round trips, so
the test's own setup calls through ``store`` are never counted. Its devices talk to the app in
process (httpx's ASGI/WSGI transports); with ``make_web(live=True, ...)`` they talk HTTP to a
real server on a loopback port instead (uvicorn on the test's event loop, Werkzeug's server on a
thread), for what only a real server shows: repeated header fields, real Host and Origin.
"""

from __future__ import annotations

import inspect
import socket
import threading
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import pytest
import uvicorn
from werkzeug.serving import make_server

from sessionstore import AsyncSessionStore, SessionStore, StoreConfig
from tests import backends
from tests.middleware import apps

# One context for every client of a live server here: httpx makes one per client otherwise,
# loading the CA bundle again (about 30 ms of CPU each, a third of a live test's time).
LOOPBACK_TLS = httpx.create_ssl_context()

FLAVOURS = ["asgi", "wsgi"]
LAPTOP = "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_4) AppleWebKit/605.1.15 Safari/605.1.15"
PHONE = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) Mobile/15E148 Safari/604.1"
# The default cookie names: Secure (the default) and plain http on loopback.
COOKIE = "__Host-sessionstore"
PLAIN_COOKIE = "sessionstore"


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

    def __init__(self, client: httpx.Client | httpx.AsyncClient, web: Web) -> None:
        self.client = client
        self.web = web

    @property
    def cookies(self) -> httpx.Cookies:
        return self.client.cookies

    async def request(self, method: str, url: str, **options: Any) -> httpx.Response:
        if self.web.live:
            self.client.base_url = await self.web.serve()
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

    def __init__(self, flavour: str, app: Any, trips: RoundTrips, live: bool = False) -> None:
        self.flavour = flavour
        self.app = app
        self.trips = trips
        self.live = live
        self._clients: list[httpx.Client | httpx.AsyncClient] = []
        self._server: Any = None
        self._stop: Callable[[], Any] | None = None

    async def serve(self) -> str:
        """Start the real server (once); its base URL."""
        if self._server is None:
            if self.flavour == "asgi":
                self._server, self._stop = await _serve_asgi(self.app)
            else:
                self._server, self._stop = _serve_wsgi(self.app)
        return str(self._server)

    def device(self, user_agent: str = LAPTOP, peer: str = "127.0.0.1") -> Device:
        # https, so the cookie jar keeps and sends Secure cookies as a browser would.
        options: dict[str, Any] = {
            "base_url": "https://testserver",
            "headers": {"user-agent": user_agent},
        }
        client: httpx.Client | httpx.AsyncClient
        if self.live:
            # The server is on loopback, plain http: the peer is 127.0.0.1, base_url comes at
            # the first request, and tests send the cookies they mean by hand.
            options["base_url"] = "http://127.0.0.1"
            kind = httpx.AsyncClient if self.flavour == "asgi" else httpx.Client
            client = kind(verify=LOOPBACK_TLS, **options)
        elif self.flavour == "asgi":
            transport = httpx.ASGITransport(self.app, client=(peer, 50000))
            client = httpx.AsyncClient(transport=transport, **options)
        else:
            wsgi_transport = httpx.WSGITransport(self.app, remote_addr=peer)
            client = httpx.Client(transport=wsgi_transport, **options)
        self._clients.append(client)
        return Device(client, self)

    async def close(self) -> None:
        for client in self._clients:
            if isinstance(client, httpx.AsyncClient):
                await client.aclose()
            else:
                client.close()
        if self._stop is not None:
            stopped = self._stop()
            if inspect.isawaitable(stopped):
                await stopped


def _listening_socket() -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    return sock


async def _serve_asgi(app: Any) -> tuple[str, Callable[[], Any]]:
    """uvicorn's HTTP server on the running loop; stopped without uvicorn's shutdown pauses."""
    sock = _listening_socket()
    config = uvicorn.Config(app, lifespan="off", log_level="warning")
    config.load()
    server = uvicorn.Server(config)
    server.lifespan = config.lifespan_class(config)
    await server.startup(sockets=[sock])

    async def stop() -> None:
        for listener in server.servers:
            listener.close()
        for connection in list(server.server_state.connections):
            connection.shutdown()
        for listener in server.servers:
            await listener.wait_closed()
        sock.close()

    return f"http://127.0.0.1:{sock.getsockname()[1]}", stop


def _serve_wsgi(app: Any) -> tuple[str, Callable[[], Any]]:
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, args=(0.01,), daemon=True)
    thread.start()

    def stop() -> None:
        server.shutdown()
        server.server_close()
        thread.join()

    return f"http://127.0.0.1:{server.server_port}", stop


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

    def make(live: bool = False, **options: Any) -> Web:
        if flavour == "asgi":
            app_store: Any = AsyncSessionStore(
                backends.async_client(backend, fake_server), config=config, clock=clock
            )
            stores.append(app_store)
            app: Any = apps.starlette_app(app_store, **options)
        else:
            app_store = SessionStore(client, config=config, clock=clock)
            app = apps.flask_app(app_store, **options)
        web = Web(flavour, app, count_round_trips(monkeypatch, app_store), live)
        built.append(web)
        return web

    yield make
    for web in built:
        await web.close()
    for async_store in stores:
        await async_store.aclose()


def session_cookie(response: httpx.Response, name: str = COOKIE) -> str | None:
    """The raw Set-Cookie header a response sets for ``name``, if any."""
    for value in response.headers.get_list("set-cookie"):
        if value.startswith(f"{name}="):
            return value
    return None
