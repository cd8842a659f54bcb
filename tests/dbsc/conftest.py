"""Fixtures: a DBSC-enabled app in both faces (the example app for ASGI, its twin for WSGI) on
this test's backend, and ``Browser``: a cookie jar that sends what a browser would.

Time moves with the store's clock (``clock.advance``), never by sleeping. Events are on, so the
tests can read ``session.bound`` and ``session.binding_failed``.
"""

from __future__ import annotations

import importlib.util
import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

import httpx
import pytest

from sessionstore import AsyncSessionStore, SessionStore, StoreConfig
from sessionstore.middleware import wsgi
from sessionstore.middleware.policy import DeviceBinding
from tests.dbsc.client import Device, Key

TENANT = "acme-corp"
COOKIE_SECONDS = 300
FACES = ["asgi", "wsgi"]
_EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "device_bound.py"
# Keys take a while to make (RSA above all): one set for the whole run.
KEYS = {algorithm: Key.new(algorithm) for algorithm in ("ES256", "RS256")}
OTHER_KEY = Key.new("ES256")


def example_module() -> Any:
    spec = importlib.util.spec_from_file_location("device_bound_example", _EXAMPLE)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


EXAMPLE = example_module()


def wsgi_app(store: SessionStore, binding: DeviceBinding) -> Any:
    """The example app's twin for WSGI: POST /login, GET /me."""

    def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> list[bytes]:
        path = environ.get("PATH_INFO")
        if path == "/login" and environ["REQUEST_METHOD"] == "POST":
            length = int(environ.get("CONTENT_LENGTH") or 0)
            form = parse_qs(environ["wsgi.input"].read(length).decode())
            session, _ = wsgi.login(environ, int(form["user_id"][0]))
            return _json(start_response, "200 OK", session.to_dict())
        session = wsgi.current_session(environ)
        if path == "/me" and session is not None:
            return _json(start_response, "200 OK", session.to_dict())
        return _json(start_response, "401 Unauthorized", {"status": 401})

    return wsgi.SessionMiddleware(app, store, TENANT, device_bound=binding, secure_cookie=False)


def _json(start_response: Callable[..., Any], status: str, body: Any) -> list[bytes]:
    start_response(status, [("content-type", "application/json")])
    return [json.dumps(body).encode()]


@pytest.fixture
def config(prefix: str) -> StoreConfig:
    return StoreConfig(prefix=prefix, events=True)


@pytest.fixture(params=FACES)
def face(request: pytest.FixtureRequest) -> str:
    return str(request.param)


class Response:
    """What a test reads of a response: status, headers (every value), JSON body."""

    def __init__(self, response: httpx.Response) -> None:
        self.status = response.status_code
        self.headers = response.headers
        self.content = response.content

    def json(self) -> Any:
        return json.loads(self.content)

    def header(self, name: str) -> str | None:
        return self.headers.get(name)


class Browser:
    """A cookie jar and a DBSC device; ``send`` goes through the app in process."""

    def __init__(self, web: Web, key: Key) -> None:
        self.web = web
        self.cookies: dict[str, str] = {}
        self.device = Device(key)

    def copy_cookies(self) -> Browser:
        """A thief: every cookie this browser holds, and a key of its own."""
        thief = Browser(self.web, OTHER_KEY)
        thief.cookies = dict(self.cookies)
        thief.device.session_id = self.device.session_id
        thief.device.refresh_url = self.device.refresh_url
        return thief

    async def send(
        self, method: str, path: str, headers: dict[str, str] | None = None, **kwargs: Any
    ) -> Response:
        sent = dict(headers or {})
        if self.cookies:
            sent["cookie"] = "; ".join(f"{name}={value}" for name, value in self.cookies.items())
        response = await self.web.request(method, path, headers=sent, **kwargs)
        for value in response.headers.get_list("set-cookie"):
            pair = value.split(";", 1)[0]
            name, _, cookie = pair.partition("=")
            if "Max-Age=0" in value or not cookie:
                self.cookies.pop(name, None)
            else:
                self.cookies[name] = cookie
        self.device.challenged(response.headers.get("secure-session-challenge"))
        return response

    async def login(self, user_id: int = 456, *, register: bool = True) -> Response:
        answer = await self.send("POST", "/login", data={"user_id": str(user_id)})
        assert answer.status == 200
        offer = answer.header("secure-session-registration")
        assert offer is not None
        if register:
            registered = await self.register(offer)
            assert registered.status == 200, registered.content
        return answer

    async def register(self, offer: str) -> Response:
        path, headers = self.device.registration(offer)
        answer = await self.send("POST", path, headers)
        if answer.status == 200:
            self.device.registered(answer.json())
            self.device.challenged(answer.header("secure-session-challenge"))
        return answer

    async def refresh(self, challenge: str | None = None) -> Response:
        """One refresh as a browser makes it: with the cached challenge if any; on a 403,
        again with the challenge it gives."""
        assert self.device.refresh_url is not None
        answer = await self.send(
            "POST", self.device.refresh_url, self.device.refresh_headers(challenge)
        )
        if answer.status == 403:
            self.device.cached_challenge = None
            self.device.challenged(answer.header("secure-session-challenge"))
            answer = await self.send("POST", self.device.refresh_url, self.device.refresh_headers())
        return answer

    def drop_bound_cookie(self) -> None:
        """What a browser does when the bound cookie's Max-Age has passed."""
        assert self.device.cookie_name is not None
        self.cookies.pop(self.device.cookie_name, None)

    async def me(self) -> Response:
        return await self.send("GET", "/me")


class Web:
    """One app (a face on a store) and how to reach it."""

    def __init__(self, face: str, app: Any, store: Any) -> None:
        self.face = face
        self.store = store
        if face == "asgi":
            self._async = httpx.AsyncClient(
                transport=httpx.ASGITransport(app=app), base_url="http://127.0.0.1"
            )
        else:
            self._sync = httpx.Client(
                transport=httpx.WSGITransport(app=app), base_url="http://127.0.0.1"
            )

    async def request(self, method: str, path: str, **kwargs: Any) -> Response:
        if self.face == "asgi":
            return Response(await self._async.request(method, path, **kwargs))
        return Response(self._sync.request(method, path, **kwargs))

    def browser(self, algorithm: str = "ES256") -> Browser:
        return Browser(self, KEYS[algorithm])

    async def events(self) -> list[tuple[str, str | None]]:
        page = await self.call("events", TENANT)
        return [(event.type, event.reason) for event in page.data]

    async def call(self, method: str, *args: Any, **kwargs: Any) -> Any:
        result = getattr(self.store, method)(*args, **kwargs)
        return await result if hasattr(result, "__await__") else result


@pytest.fixture
def make_web(
    face: str, store: SessionStore, astore: AsyncSessionStore
) -> Iterator[Callable[..., Web]]:
    def make(**binding: Any) -> Web:
        options = DeviceBinding(cookie_seconds=COOKIE_SECONDS, **binding)
        if face == "asgi":
            app = EXAMPLE.create_app(astore, binding=options)
            return Web(face, app, astore)
        return Web(face, wsgi_app(store, options), store)

    yield make
