"""A small Flask app signed in through sessionstore: sign in, a protected page, my devices.

    python examples/flask_app.py [--port 8001] [--redis-url redis://127.0.0.1:6379/0]

Runs on the embedded store unless --redis-url is given.
"""

from __future__ import annotations

import contextlib
from typing import Any

import options
import pages
from flask import Flask, make_response, redirect, request

from sessionstore import InvalidArgument, SessionStore, StoreConfig, StoreUnavailable, inputs
from sessionstore.wsgi import (
    SessionMiddleware,
    current_session,
    list_my_sessions,
    login,
    logout,
    sign_out_device,
    sign_out_other_devices,
)

TENANT = "acme-corp"


def create_app(store: SessionStore, *, secure_cookie: bool = True) -> Flask:
    app = Flask(__name__)
    # Anonymous visitors pass (pages send them to /login); health checks and the login page
    # never touch Redis. The forms need no CSRF token: the cookie is SameSite=Lax.
    middleware = SessionMiddleware(
        app.wsgi_app,
        store=store,
        tenant=TENANT,
        exclude_paths=["/healthz", "/login"],
        secure_cookie=secure_cookie,
    )
    app.wsgi_app = middleware  # type: ignore[method-assign]

    @app.errorhandler(StoreUnavailable)
    def store_unavailable(error: StoreUnavailable) -> Any:
        # Flask would answer 500: answer the middleware's 503 (the cookie is kept).
        reply = middleware.gate.policy.unavailable()
        return reply.body, reply.status, list(reply.headers)

    @app.get("/")
    def home() -> Any:
        session = current_session(request.environ)
        if session is None:
            return redirect("/login", 303)
        return pages.home_page(session.user_id)

    @app.get("/login")
    def login_form() -> Any:
        return pages.login_page()

    @app.post("/login")
    def sign_in() -> Any:
        try:
            user_id = inputs.user_id_text(request.form.get("user_id", ""))
        except InvalidArgument:
            return pages.login_page(), 400
        response = redirect("/", 303)
        login(request.environ, response, user_id)
        return response

    @app.get("/devices")
    def devices() -> Any:
        if current_session(request.environ) is None:
            return redirect("/login", 303)
        return pages.devices_page(list_my_sessions(request.environ))

    @app.post("/devices/others/revoke")
    def sign_out_others() -> Any:
        sign_out_other_devices(request.environ)
        return redirect("/devices", 303)

    @app.post("/devices/<session_id>/revoke")
    def sign_out_one(session_id: str) -> Any:
        with contextlib.suppress(InvalidArgument):  # not a session id: nothing to sign out
            sign_out_device(request.environ, session_id)
        return redirect("/devices", 303)

    @app.post("/logout")
    def sign_out() -> Any:
        response = make_response(redirect("/login", 303))
        logout(request.environ, response)
        return response

    @app.get("/healthz")
    def health() -> Any:
        return "ok"

    return app


def main() -> None:
    args = options.parse("Flask", port=8001)
    store = SessionStore.from_url(args.redis_url, config=StoreConfig(prefix=args.prefix))
    # Plain http on loopback, where clients drop Secure cookies. Behind TLS, keep the default.
    app = create_app(store, secure_cookie=False)
    print(f"Flask example on http://{args.host}:{args.port}/", flush=True)
    app.run(host=args.host, port=args.port, threaded=True)


if __name__ == "__main__":
    main()
