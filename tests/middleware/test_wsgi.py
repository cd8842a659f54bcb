"""The WSGI face in a real Flask app: refusals from inside a view, answered as the middleware
answers them (Flask turns view errors into 500 pages before the middleware sees them).

Runs once, on the embedded store (and on a Redis that is not there, for the 503): what is
tested is how Flask hands the error over, not Redis.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import flask
import pytest

from sessionstore import SessionStore, StoreConfig, StoreUnavailable
from sessionstore.middleware import CrossSiteRequest
from sessionstore.middleware.wsgi import (
    SessionMiddleware,
    check_csrf_token,
    error_reply,
    login,
    register_flask,
    required_session,
)
from tests import backends
from tests.api.helpers import unused_port

TENANT = "acme-corp"
CROSS_SITE = {"sec-fetch-site": "cross-site", "origin": "https://evil.test"}


def test_a_flask_error_handler_written_from_the_readme_answers_as_the_middleware() -> None:
    """README: ``error_reply(environ, error)`` gives the reply (status, headers, body)."""
    from flask import Flask, request

    app = Flask(__name__)

    @app.post("/login")
    def sign_in() -> str:
        login(request.environ, 7)  # refused: the request comes from another site's page
        return "signed in"

    @app.errorhandler(CrossSiteRequest)
    def answer(error: CrossSiteRequest) -> tuple[bytes, int, list[tuple[str, str]]]:
        reply = error_reply(request.environ, error)
        assert reply is not None
        status, headers, body = reply
        return body, status, list(headers)

    store = SessionStore()
    app.wsgi_app = SessionMiddleware(app.wsgi_app, store, "acme-corp")  # type: ignore[method-assign]
    answered = app.test_client().post("/login", headers={"sec-fetch-site": "cross-site"})
    assert answered.status_code == 403
    assert answered.headers["content-type"] == "application/problem+json"
    store.close()


def flask_app(store: SessionStore) -> flask.Flask:
    """A Flask app as apps write them: Flask's own error handling on (no PROPAGATE_EXCEPTIONS),
    the middleware around it, and register_flask for the session layer's errors."""
    app = flask.Flask(__name__)
    environ = lambda: flask.request.environ  # noqa: E731

    @app.post("/login")
    def sign_in() -> Any:
        session, _ = login(environ(), 7)
        return {"session": session.id}

    @app.get("/me")
    def me() -> Any:
        return {"session": required_session(environ()).id}

    @app.post("/transfer")
    def transfer() -> Any:
        check_csrf_token(environ(), flask.request.headers.get("x-csrf-token"))
        return {"done": True}

    @app.get("/broken")
    def broken() -> Any:
        raise ValueError("not the session layer's")

    register_flask(app)
    app.wsgi_app = SessionMiddleware(  # type: ignore[method-assign]
        app.wsgi_app, store=store, tenant=TENANT, secure_cookie=False
    )
    return app


@pytest.fixture
def store() -> Iterator[SessionStore]:
    with SessionStore(config=StoreConfig(prefix=backends.new_prefix())) as embedded:
        yield embedded


def assert_problem(response: Any, status: int) -> None:
    assert response.status_code == status
    assert response.headers["content-type"] == "application/problem+json"
    assert response.headers["cache-control"] == "no-store"
    assert response.json["status"] == status


def test_register_flask_answers_refusals_as_the_middleware(store: SessionStore) -> None:
    browser = flask_app(store).test_client()
    refused = browser.post("/login", headers=CROSS_SITE)
    assert_problem(refused, 403)
    assert "set-cookie" not in refused.headers
    assert store.list_user_sessions(TENANT, 7) == []

    anonymous = browser.get("/me")
    assert_problem(anonymous, 401)
    assert anonymous.headers["www-authenticate"] == "Bearer"

    signed_in = browser.post("/login", headers={"sec-fetch-site": "same-origin"})
    assert signed_in.status_code == 200
    assert browser.get("/me").json == signed_in.json
    assert_problem(browser.post("/transfer", headers={"x-csrf-token": "csrf_forged"}), 403)


def test_register_flask_leaves_other_errors_to_flask(store: SessionStore) -> None:
    broken = flask_app(store).test_client().get("/broken")
    assert broken.status_code == 500
    assert broken.headers["content-type"].startswith("text/html")  # Flask's own page


def test_register_flask_answers_an_unavailable_store_with_a_503() -> None:
    url = f"redis://127.0.0.1:{unused_port()}"
    with SessionStore.from_url(url, config=StoreConfig(prefix=backends.new_prefix())) as down:
        refused = flask_app(down).test_client().post("/login")
    assert_problem(refused, 503)
    assert refused.headers["retry-after"] == "1"


def test_the_flask_handler_outside_the_middleware_is_flasks_500() -> None:
    app = flask.Flask(__name__)

    @app.get("/")
    def down() -> Any:
        raise StoreUnavailable("no middleware to answer for")

    register_flask(app)
    answer = app.test_client().get("/")
    assert answer.status_code == 500
    assert answer.headers["content-type"].startswith("text/html")
