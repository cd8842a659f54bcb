"""The ASGI middleware on scopes other than plain HTTP requests: lifespan, websockets, mounts."""

from __future__ import annotations

from typing import Any

import httpx
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Mount, Route

from sessionstore import AsyncSessionStore, SessionStore
from sessionstore.middleware.asgi import SessionMiddleware
from tests.middleware.apps import TENANT
from tests.middleware.conftest import COOKIE, LAPTOP, count_round_trips

Message = dict[str, Any]


class Recorder:
    """An ASGI app that remembers the scope it got and accepts websockets."""

    def __init__(self) -> None:
        self.scopes: list[dict[str, Any]] = []

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        self.scopes.append(scope)
        if scope["type"] == "websocket":
            await receive()
            await send({"type": "websocket.accept"})


async def drive(app: Any, scope: dict[str, Any], incoming: list[Message]) -> list[Message]:
    sent: list[Message] = []

    async def receive() -> Message:
        return incoming.pop(0)

    async def send(message: Message) -> None:
        sent.append(message)

    await app(scope, receive, send)
    return sent


def websocket_scope(headers: list[tuple[bytes, bytes]]) -> dict[str, Any]:
    return {"type": "websocket", "path": "/ws", "headers": headers, "client": ("127.0.0.1", 1)}


async def test_lifespan_passes_straight_through(
    astore: AsyncSessionStore, monkeypatch: Any
) -> None:
    inner = Recorder()
    trips = count_round_trips(monkeypatch, astore)
    scope = {"type": "lifespan", "asgi": {"version": "3.0"}, "state": {}}
    await drive(SessionMiddleware(inner, store=astore, tenant=TENANT, required=True), scope, [])
    assert inner.scopes == [{"type": "lifespan", "asgi": {"version": "3.0"}, "state": {}}]
    assert trips.count == 0


async def test_websocket_with_a_live_session_reaches_the_app(
    astore: AsyncSessionStore, store: SessionStore
) -> None:
    inner = Recorder()
    app = SessionMiddleware(inner, store=astore, tenant=TENANT, required=True)
    session, token = store.create(TENANT, 7, ip_address="192.0.2.1", user_agent=LAPTOP)
    scope = websocket_scope([(b"cookie", f"{COOKIE}={token}".encode())])
    sent = await drive(app, scope, [{"type": "websocket.connect"}])
    assert sent == [{"type": "websocket.accept"}]
    assert inner.scopes[0]["sessionstore.session"].id == session.id
    assert inner.scopes[0]["state"]["session"].id == session.id
    assert "session" not in inner.scopes[0]  # the key of Starlette's cookie sessions


async def test_websocket_without_a_session_is_closed_before_the_handshake(
    astore: AsyncSessionStore,
) -> None:
    inner = Recorder()
    app = SessionMiddleware(inner, store=astore, tenant=TENANT, required=True)
    sent = await drive(app, websocket_scope([]), [{"type": "websocket.connect"}])
    assert sent == [{"type": "websocket.close", "code": 1008}]
    assert inner.scopes == []


async def test_exclusions_match_below_a_mount(astore: AsyncSessionStore, monkeypatch: Any) -> None:
    async def whoami(request: Request) -> JSONResponse:
        return JSONResponse({"session": request.state.session})

    trips = count_round_trips(monkeypatch, astore)
    guarded = Starlette(
        routes=[Route("/health", whoami), Route("/me", whoami)],
        middleware=[
            Middleware(
                SessionMiddleware,
                store=astore,
                tenant=TENANT,
                required=True,
                exclude_paths=["/health"],
            )
        ],
    )
    app = Starlette(routes=[Mount("/api", app=guarded)])
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app), base_url="https://testserver"
    ) as client:
        assert (await client.get("/api/health")).json() == {"session": None}
        assert (await client.get("/api/me")).status_code == 401
    assert trips.count == 0
