"""The same small JSON app twice, Starlette over the ASGI middleware and Flask over the WSGI one,
so every middleware test runs unchanged against both.

GET  /whoami                  the request's session id, by the helper and by the raw key
GET  /health                  no session needed (tests exclude it)
POST /login                   {"user_id": n}: sign in, set the cookie
POST /logout                  {"revoked": bool}
GET  /sessions                the user's sessions, ``current`` marked
POST /sessions/others/revoke  {"count": n}
POST /sessions/<id>/revoke    {"revoked": bool}
"""

from __future__ import annotations

from typing import Any

import flask
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from sessionstore import AsyncSessionStore, SessionStore, asgi, wsgi

TENANT = "acme-corp"


def _id(session: Any) -> str | None:
    return None if session is None else str(session.id)


def starlette_app(store: AsyncSessionStore, **options: Any) -> Starlette:
    async def whoami(request: Request) -> Response:
        session = asgi.current_session(request)
        return JSONResponse({"session": _id(session), "state": _id(request.state.session)})

    async def health(request: Request) -> Response:
        return PlainTextResponse("ok")

    async def sign_in(request: Request) -> Response:
        body = await request.json()
        response = Response(status_code=204)
        await asgi.login(request, response, body["user_id"])
        return response

    async def sign_out(request: Request) -> Response:
        response = JSONResponse({})
        revoked = await asgi.logout(request, response)
        response.body = response.render({"revoked": revoked})
        response.headers["content-length"] = str(len(response.body))
        return response

    async def sessions(request: Request) -> Response:
        return JSONResponse(await asgi.list_my_sessions(request))

    async def revoke_others(request: Request) -> Response:
        return JSONResponse({"count": await asgi.sign_out_other_devices(request)})

    async def revoke_one(request: Request) -> Response:
        revoked = await asgi.sign_out_device(request, request.path_params["session_id"])
        return JSONResponse({"revoked": revoked})

    routes = [
        Route("/whoami", whoami),
        Route("/health", health),
        Route("/login", sign_in, methods=["POST"]),
        Route("/logout", sign_out, methods=["POST"]),
        Route("/sessions", sessions),
        Route("/sessions/others/revoke", revoke_others, methods=["POST"]),
        Route("/sessions/{session_id}/revoke", revoke_one, methods=["POST"]),
    ]
    middleware = [Middleware(asgi.SessionMiddleware, store=store, tenant=TENANT, **options)]
    return Starlette(routes=routes, middleware=middleware)


def flask_app(store: SessionStore, **options: Any) -> flask.Flask:
    app = flask.Flask(__name__)
    # Let StoreUnavailable reach the middleware (which answers 503) instead of Flask's 500.
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

    @app.post("/login")
    def sign_in() -> Any:
        response = flask.make_response("", 204)
        wsgi.login(environ(), response, flask.request.get_json()["user_id"])
        return response

    @app.post("/logout")
    def sign_out() -> Any:
        response = flask.make_response({})
        response.set_data(flask.json.dumps({"revoked": wsgi.logout(environ(), response)}))
        return response

    @app.get("/sessions")
    def sessions() -> Any:
        return flask.jsonify(wsgi.list_my_sessions(environ()))

    @app.post("/sessions/others/revoke")
    def revoke_others() -> Any:
        return {"count": wsgi.sign_out_other_devices(environ())}

    @app.post("/sessions/<session_id>/revoke")
    def revoke_one(session_id: str) -> Any:
        return {"revoked": wsgi.sign_out_device(environ(), session_id)}

    app.wsgi_app = wsgi.SessionMiddleware(  # type: ignore[method-assign]
        app.wsgi_app, store=store, tenant=TENANT, **options
    )
    return app
