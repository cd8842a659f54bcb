"""A small Flask app signed in through sessionstore: sign in, a protected page, my devices.

    python examples/flask_app.py --redis-url redis://127.0.0.1:6379/0 [--port 8001]
    python examples/flask_app.py --embedded        # one-process demo, in-process store

Flask's own cookie session (``flask.session``, the cookie ``session``) carries the flash
messages beside it: sessionstore's cookie is ``sessionstore`` here (``__Host-sessionstore``
behind TLS).
"""

from __future__ import annotations

import contextlib
import secrets
from typing import Any

import options
import pages
from flask import Flask, flash, get_flashed_messages, redirect, request

from sessionstore import InvalidArgument, SessionStore, StoreConfig
from sessionstore._core import inputs
from sessionstore.middleware.wsgi import (
    SessionMiddleware,
    current_session,
    list_my_sessions,
    login,
    logout,
    register_flask,
    sign_out_device,
    sign_out_other_devices,
)

TENANT = "acme-corp"


def create_app(store: SessionStore, *, secure_cookie: bool = True) -> Flask:
    app = Flask(__name__)
    app.secret_key = secrets.token_hex(32)  # flask.session, for the flash messages
    # Anonymous visitors pass (pages send them to /login); health checks never touch Redis.
    # The helpers refuse sign-ins and sign-outs posted from another site's page (403).
    app.wsgi_app = SessionMiddleware(  # type: ignore[method-assign]
        app.wsgi_app,
        store=store,
        tenant=TENANT,
        exclude_paths=["/healthz", "/login"],
        secure_cookie=secure_cookie,
    )
    # Flask would answer a refusal or an unreachable store with its 500 page: answer as the
    # middleware does instead (403 problem+json, or 503 keeping the cookie).
    register_flask(app)

    @app.get("/")
    def home() -> Any:
        session = current_session(request.environ)
        if session is None:
            return redirect("/login", 303)
        return pages.home_page(session.user_id)

    @app.get("/login")
    def login_form() -> Any:
        messages = get_flashed_messages()
        return pages.login_page(messages[0] if messages else None)

    @app.post("/login")
    def sign_in() -> Any:
        try:
            user_id = inputs.user_id_text(request.form.get("user_id", ""))
        except InvalidArgument:
            return pages.login_page(), 400
        login(request.environ, user_id)  # the middleware puts the cookie on the response
        return redirect("/", 303)

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
        logout(request.environ)
        flash("You have signed out.")
        return redirect("/login", 303)

    @app.get("/healthz")
    def health() -> Any:
        return "ok"

    return app


def main() -> None:
    args = options.parse("Flask", port=8001)
    store = SessionStore.from_url(options.store_url(args), config=StoreConfig(prefix=args.prefix))
    # Plain http on loopback, where clients drop Secure cookies. Behind TLS, keep the default.
    app = create_app(store, secure_cookie=False)
    print(f"Flask example on http://{args.host}:{args.port}/", flush=True)
    app.run(host=args.host, port=args.port, threaded=True)


if __name__ == "__main__":
    main()
