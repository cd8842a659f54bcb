"""A JSON API in FastAPI for bearer clients (a single-page app, a mobile app): sign in for a
token, then send it as ``Authorization: Bearer``.

    python examples/fastapi_app.py --redis-url redis://127.0.0.1:6379/0 [--port 8002]
    python examples/fastapi_app.py --embedded      # one-process demo, in-process store

    curl -X POST localhost:8002/api/login -H 'content-type: application/json' -d '{"user_id": 456}'
    curl localhost:8002/api/me -H 'Authorization: Bearer sst_...'

Only the header is read (``token_sources=["header"]``) and sign-in sets no cookie, so a page on
another site cannot ride on the session: the browser never sends the token by itself.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from typing import Any

import options
import uvicorn
from fastapi import FastAPI, Request, Response
from pydantic import BaseModel, Field

from sessionstore import AsyncSessionStore, StoreConfig
from sessionstore._core import inputs
from sessionstore.middleware.asgi import (
    SessionMiddleware,
    list_my_sessions,
    login,
    logout,
    sign_out_device,
)
from sessionstore.middleware.fastapi import CurrentSession, OptionalSession

TENANT = "acme-corp"


class Credentials(BaseModel):
    # A user id is all it takes here: a real app checks a password first, then calls login().
    user_id: int = Field(ge=0, le=inputs.MAX_USER_ID)


def create_app(store: AsyncSessionStore) -> FastAPI:
    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        yield
        await store.aclose()

    app = FastAPI(title="sessionstore example", lifespan=lifespan)
    app.add_middleware(
        SessionMiddleware,
        store=store,
        tenant=TENANT,
        token_sources=["header"],
        exclude_paths=["/healthz"],
    )

    @app.post("/api/login")
    async def sign_in(credentials: Credentials, request: Request, response: Response) -> Any:
        session, token = await login(request, credentials.user_id, set_cookie=False)
        response.headers["cache-control"] = "no-store"  # the token is in this answer
        return {"token": token, "session": session.to_dict()}

    @app.get("/api/me")
    async def me(session: CurrentSession) -> Any:
        return session.to_dict()

    @app.get("/api/hello")
    async def hello(session: OptionalSession) -> Any:
        return {"hello": "stranger" if session is None else f"user {session.user_id}"}

    @app.get("/api/sessions")
    async def sessions(session: CurrentSession, request: Request) -> Any:
        return await list_my_sessions(request)

    @app.delete("/api/sessions/{session_id}")
    async def sign_out_one(session: CurrentSession, session_id: str, request: Request) -> Any:
        return {"revoked": await sign_out_device(request, session_id)}

    @app.post("/api/logout")
    async def sign_out(request: Request) -> Any:
        return {"revoked": await logout(request)}

    @app.get("/healthz")
    async def health() -> str:
        return "ok"

    return app


def main() -> None:
    args = options.parse("FastAPI", port=8002)
    config = StoreConfig(prefix=args.prefix)
    store = AsyncSessionStore.from_url(options.store_url(args), config=config)
    print(f"FastAPI example on http://{args.host}:{args.port}/docs", flush=True)
    uvicorn.run(create_app(store), host=args.host, port=args.port, log_level="warning")


if __name__ == "__main__":
    main()
