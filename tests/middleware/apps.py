"""The same small JSON app twice, Starlette over the ASGI middleware and Flask over the WSGI one,
so every middleware test runs unchanged against both. Each also runs its framework's own cookie
sessions (Starlette's SessionMiddleware, flask.session) beside ours, as real apps do for flash
messages and OAuth state.

GET  /whoami                  the request's session id, by the helper and by the raw key
GET  /health                  no session needed (tests exclude it)
GET  /me                      the session (401 from required_session when there is none)
POST /login                   {"user_id": n}: sign in, set the cookie
POST /api/login               {"user_id": n}: sign in a bearer client: {"token": ...}, no cookie
POST /logout                  {"revoked": bool}
GET  /sessions                the user's sessions, ``current`` marked
POST /sessions/others/revoke  {"count": n}
POST /sessions/<id>/revoke    {"revoked": bool}
GET  /csrf                    {"token": the session's synchronizer token or null}
POST /transfer                needs that token in ``x-csrf-token``: {"done": true}
GET  /visits                  counts visits in the framework's own cookie session
GET  /cached                  a response with its own Cache-Control and Vary
"""

from __future__ import annotations

from typing import Any

import flask
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.sessions import SessionMiddleware as StarletteCookieSessions
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from sessionstore import AsyncSessionStore, SessionStore
from sessionstore.middleware import asgi, wsgi

TENANT = "acme-corp"
FRAMEWORK_SECRET = "framework-cookie-secret-for-tests"


def _id(session: Any) -> str | None:
    return None if session is None else str(session.id)


# -- Starlette ----------------------------------------------------------------------------------


async def whoami(request: Request) -> Response:
    session = asgi.current_session(request)
    return JSONResponse({"session": _id(session), "state": _id(request.state.session)})


async def health(request: Request) -> Response:
    return PlainTextResponse("ok")


async def me(request: Request) -> Response:
    return JSONResponse({"session": asgi.required_session(request).id})


async def sign_in(request: Request) -> Response:
    body = await request.json()
    await asgi.login(request, body["user_id"])
    return Response(status_code=204)


async def sign_in_bearer(request: Request) -> Response:
    body = await request.json()
    session, token = await asgi.login(request, body["user_id"], set_cookie=False)
    return JSONResponse({"session": session.id, "token": token})


async def sign_out(request: Request) -> Response:
    return JSONResponse({"revoked": await asgi.logout(request)})


async def sessions(request: Request) -> Response:
    return JSONResponse(await asgi.list_my_sessions(request))


async def revoke_others(request: Request) -> Response:
    return JSONResponse({"count": await asgi.sign_out_other_devices(request)})


async def revoke_one(request: Request) -> Response:
    revoked = await asgi.sign_out_device(request, request.path_params["session_id"])
    return JSONResponse({"revoked": revoked})


async def csrf(request: Request) -> Response:
    return JSONResponse({"token": asgi.csrf_token(request)})


async def transfer(request: Request) -> Response:
    asgi.check_csrf_token(request, request.headers.get("x-csrf-token"))
    return JSONResponse({"done": True})


async def visits(request: Request) -> Response:
    request.session["visits"] = request.session.get("visits", 0) + 1
    session = asgi.current_session(request)
    return JSONResponse({"visits": request.session["visits"], "session": _id(session)})


async def cached(request: Request) -> Response:
    headers = {"cache-control": "max-age=60", "vary": "Accept-Encoding"}
    return JSONResponse({"session": _id(asgi.current_session(request))}, headers=headers)


def starlette_app(store: AsyncSessionStore, **options: Any) -> Starlette:
    routes = [
        Route("/whoami", whoami),
        Route("/health", health),
        Route("/me", me),
        Route("/login", sign_in, methods=["POST"]),
        Route("/api/login", sign_in_bearer, methods=["POST"]),
        Route("/logout", sign_out, methods=["POST"]),
        Route("/sessions", sessions),
        Route("/sessions/others/revoke", revoke_others, methods=["POST"]),
        Route("/sessions/{session_id}/revoke", revoke_one, methods=["POST"]),
        Route("/csrf", csrf),
        Route("/transfer", transfer, methods=["POST"]),
        Route("/visits", visits),
        Route("/cached", cached),
    ]
    middleware = [
        # Starlette's own cookie sessions outside ours, as the Starlette docs place them.
        Middleware(StarletteCookieSessions, secret_key=FRAMEWORK_SECRET),
        Middleware(asgi.SessionMiddleware, store=store, tenant=TENANT, **options),
    ]
    return Starlette(routes=routes, middleware=middleware)


def flask_app(store: SessionStore, **options: Any) -> flask.Flask:
    app = flask.Flask(__name__)
    app.secret_key = FRAMEWORK_SECRET  # flask.session: the cookie "session"
    # Let StoreUnavailable and refusals reach the middleware instead of Flask's 500 page.
    app.config["PROPAGATE_EXCEPTIONS"] = True
    environ = lambda: flask.request.environ  # noqa: E731

    @app.get("/whoami")
    def whoami() -> Any:
        # "state": the raw environ key, the WSGI counterpart of request.state.
        return {
            "session": _id(wsgi.current_session(environ())),
            "state": _id(environ()["sessionstore.session"]),
        }

    @app.get("/health")
    def health() -> Any:
        return "ok"

    @app.get("/me")
    def me() -> Any:
        return {"session": wsgi.required_session(environ()).id}

    @app.post("/login")
    def sign_in() -> Any:
        wsgi.login(environ(), flask.request.get_json()["user_id"])
        return "", 204

    @app.post("/api/login")
    def sign_in_bearer() -> Any:
        user_id = flask.request.get_json()["user_id"]
        session, token = wsgi.login(environ(), user_id, set_cookie=False)
        return {"session": session.id, "token": token}

    @app.post("/logout")
    def sign_out() -> Any:
        return {"revoked": wsgi.logout(environ())}

    @app.get("/sessions")
    def sessions() -> Any:
        return flask.jsonify(wsgi.list_my_sessions(environ()))

    @app.post("/sessions/others/revoke")
    def revoke_others() -> Any:
        return {"count": wsgi.sign_out_other_devices(environ())}

    @app.post("/sessions/<session_id>/revoke")
    def revoke_one(session_id: str) -> Any:
        return {"revoked": wsgi.sign_out_device(environ(), session_id)}

    _more_flask_routes(app, environ)
    app.wsgi_app = wsgi.SessionMiddleware(  # type: ignore[method-assign]
        app.wsgi_app, store=store, tenant=TENANT, **options
    )
    return app


def _more_flask_routes(app: flask.Flask, environ: Any) -> None:
    @app.get("/csrf")
    def csrf() -> Any:
        return {"token": wsgi.csrf_token(environ())}

    @app.post("/transfer")
    def transfer() -> Any:
        wsgi.check_csrf_token(environ(), flask.request.headers.get("x-csrf-token"))
        return {"done": True}

    @app.get("/visits")
    def visits() -> Any:
        flask.session["visits"] = flask.session.get("visits", 0) + 1
        session = wsgi.current_session(environ())
        return {"visits": flask.session["visits"], "session": _id(session)}

    @app.get("/cached")
    def cached() -> Any:
        body = {"session": _id(wsgi.current_session(environ()))}
        return body, 200, {"Cache-Control": "max-age=60", "Vary": "Accept-Encoding"}
