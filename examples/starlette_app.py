"""A small Starlette app signed in through sessionstore: sign in, a protected page, my devices.

    python examples/starlette_app.py --redis-url redis://127.0.0.1:6379/0 [--port 8000]
    python examples/starlette_app.py --embedded    # one-process demo, in-process store

Starlette's own cookie sessions (``request.session``, the cookie ``session``) carry the flash
messages beside it. FastAPI: see fastapi_app.py.
"""

from __future__ import annotations

import contextlib
import secrets
from collections.abc import AsyncIterator
from urllib.parse import parse_qs

import options
import pages
import uvicorn
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.sessions import SessionMiddleware as CookieSessions
from starlette.requests import Request
from starlette.responses import HTMLResponse, PlainTextResponse, RedirectResponse, Response
from starlette.routing import Route

from sessionstore import AsyncSessionStore, InvalidArgument, StoreConfig
from sessionstore._core import inputs
from sessionstore.middleware.asgi import (
    SessionMiddleware,
    current_session,
    list_my_sessions,
    login,
    logout,
    sign_out_device,
    sign_out_other_devices,
)

TENANT = "acme-corp"


def see_other(url: str) -> Response:
    return RedirectResponse(url, status_code=303)


async def home(request: Request) -> Response:
    session = current_session(request)
    if session is None:
        return see_other("/login")
    return HTMLResponse(pages.home_page(session.user_id))


async def login_form(request: Request) -> Response:
    return HTMLResponse(pages.login_page(request.session.pop("flash", None)))


async def sign_in(request: Request) -> Response:
    # A urlencoded form, read by hand: Starlette's request.form() needs python-multipart.
    form = parse_qs((await request.body()).decode())
    try:
        user_id = inputs.user_id_text(form.get("user_id", [""])[0])
    except InvalidArgument:
        return HTMLResponse(pages.login_page(), status_code=400)
    await login(request, user_id)  # the middleware puts the cookie on the response
    return see_other("/")


async def devices(request: Request) -> Response:
    if current_session(request) is None:
        return see_other("/login")
    return HTMLResponse(pages.devices_page(await list_my_sessions(request)))


async def sign_out_one(request: Request) -> Response:
    with contextlib.suppress(InvalidArgument):  # not a session id: nothing to sign out
        await sign_out_device(request, request.path_params["session_id"])
    return see_other("/devices")


async def sign_out_others(request: Request) -> Response:
    await sign_out_other_devices(request)
    return see_other("/devices")


async def sign_out(request: Request) -> Response:
    await logout(request)
    request.session["flash"] = "You have signed out."
    return see_other("/login")


async def health(request: Request) -> Response:
    return PlainTextResponse("ok")


def create_app(store: AsyncSessionStore, *, secure_cookie: bool = True) -> Starlette:
    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        yield
        await store.aclose()

    routes = [
        Route("/", home),
        Route("/login", login_form, methods=["GET"]),
        Route("/login", sign_in, methods=["POST"]),
        Route("/devices", devices),
        Route("/devices/others/revoke", sign_out_others, methods=["POST"]),
        Route("/devices/{session_id}/revoke", sign_out_one, methods=["POST"]),
        Route("/logout", sign_out, methods=["POST"]),
        Route("/healthz", health),
    ]
    # Anonymous visitors pass (pages send them to /login); health checks never touch Redis.
    # The helpers refuse sign-ins and sign-outs posted from another site's page (403).
    middleware = [
        Middleware(CookieSessions, secret_key=secrets.token_hex(32), https_only=secure_cookie),
        Middleware(
            SessionMiddleware,
            store=store,
            tenant=TENANT,
            exclude_paths=["/healthz", "/login"],
            secure_cookie=secure_cookie,
        ),
    ]
    return Starlette(routes=routes, middleware=middleware, lifespan=lifespan)


def main() -> None:
    args = options.parse("Starlette", port=8000)
    config = StoreConfig(prefix=args.prefix)
    store = AsyncSessionStore.from_url(options.store_url(args), config=config)
    # Plain http on loopback, where clients drop Secure cookies. Behind TLS, keep the default.
    app = create_app(store, secure_cookie=False)
    print(f"Starlette example on http://{args.host}:{args.port}/", flush=True)
    uvicorn.run(app, host=args.host, port=args.port, log_level="warning")


if __name__ == "__main__":
    main()
