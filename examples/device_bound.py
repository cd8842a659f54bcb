"""Device-bound sessions (W3C DBSC): a stolen session cookie stops working within minutes.

    SESSIONSTORE_REDIS_URL=redis://127.0.0.1:6379/0 uvicorn examples.device_bound:app --port 8004
    uvicorn examples.device_bound:app --port 8004     # no URL: the embedded in-process store

``POST /login`` (form field ``user_id``) signs that user in to tenant ``acme-corp``; ``GET /me``
answers the signed-in user as JSON, or 401. ``GET /`` is a page with the sign-in form. A
browser that supports DBSC binds the session to a key it keeps (the login response offers it);
from then on every request also needs the short-lived bound cookie, which only that browser
can renew. ``DBSC_COOKIE_SECONDS`` (default 300) is its lifetime. Plain http on loopback, so
the cookies are not Secure (as in the other examples); keep the default behind TLS.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import AsyncIterator
from urllib.parse import parse_qs

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import Route

from sessionstore import AsyncSessionStore, InvalidArgument, StoreConfig
from sessionstore._core import inputs
from sessionstore.http.problems import CONTENT_TYPE, problem
from sessionstore.middleware.asgi import SessionMiddleware, current_session, login
from sessionstore.middleware.policy import DeviceBinding

TENANT = "acme-corp"
PAGE = """<!doctype html>
<title>Device-bound sessions</title>
<form method="post" action="/login">
  <label>User id <input name="user_id" value="456"></label> <button>Sign in</button>
</form>
<p><a href="/me">Who am I?</a></p>
"""


async def home(request: Request) -> Response:
    return HTMLResponse(PAGE)


async def sign_in(request: Request) -> Response:
    # A urlencoded form, read by hand: Starlette's request.form() needs python-multipart.
    form = parse_qs((await request.body()).decode())
    try:
        user_id = inputs.user_id_text(form.get("user_id", [""])[0])
    except InvalidArgument:
        body = problem(400, "user_id must be a user id (a whole number)")
        return JSONResponse(body, status_code=400, media_type=CONTENT_TYPE)
    session, _ = await login(request, user_id)  # the cookie and the DBSC offer go on the reply
    return JSONResponse(session.to_dict())


async def me(request: Request) -> Response:
    session = current_session(request)
    if session is None:
        body = problem(401, "Sign in first (POST /login), from a browser that keeps its key.")
        return JSONResponse(body, status_code=401, media_type=CONTENT_TYPE)
    return JSONResponse(session.to_dict())


def create_app(
    store: AsyncSessionStore, *, cookie_seconds: int = 300, binding: DeviceBinding | None = None
) -> Starlette:
    """The app on ``store``; bound cookies live ``cookie_seconds`` (``binding``: other
    options of the middleware's DeviceBinding, whose lifetime then wins)."""

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        yield
        await store.aclose()

    routes = [
        Route("/", home),
        Route("/login", sign_in, methods=["POST"]),
        Route("/me", me),
    ]
    binding = binding or DeviceBinding(cookie_seconds=cookie_seconds)
    middleware = [
        Middleware(
            SessionMiddleware,
            store=store,
            tenant=TENANT,
            device_bound=binding,
            secure_cookie=False,  # plain http on loopback; keep the default behind TLS
        )
    ]
    return Starlette(routes=routes, middleware=middleware, lifespan=lifespan)


def _store() -> AsyncSessionStore:
    url = os.environ.get("SESSIONSTORE_REDIS_URL") or None  # None: the embedded store
    prefix = os.environ.get("SESSIONSTORE_PREFIX", "example")
    return AsyncSessionStore.from_url(url, config=StoreConfig(prefix=prefix))


app = create_app(_store(), cookie_seconds=int(os.environ.get("DBSC_COOKIE_SECONDS", "300")))
