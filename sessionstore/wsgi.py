"""SessionMiddleware for WSGI apps (Flask, Django, any other), and its helpers.

    app.wsgi_app = SessionMiddleware(app.wsgi_app, store=SessionStore.from_url(url),
                                     tenant="acme-corp")

Each request's session is ``environ["sessionstore.session"]`` (None when anonymous). It takes
one Redis round trip when the request carries a token and none when it does not. The helpers
take the environ (``flask.request.environ``) and use the store, tenant and cookie settings of
the middleware it came through. The twin of asgi.py: the decisions live in web.py.
"""

from __future__ import annotations

from collections.abc import Iterable
from http import HTTPStatus
from typing import Any, Unpack
from wsgiref.types import StartResponse, WSGIApplication, WSGIEnvironment

from .errors import StoreUnavailable
from .model import Session
from .store import SessionStore
from .web import (
    ENVIRON_SESSION,
    GATE,
    Credential,
    Gate,
    Policy,
    PolicyOptions,
    Reply,
    cookie_max_age,
    mark_current,
    sets_cookie,
)


class SessionMiddleware:
    """Validates the request's session token once, then passes the request on or refuses it.

    Options (all keywords, see ``sessionstore.web.Policy``): cookie_name, token_sources,
    required, exclude_paths, secure_cookie, same_site, trusted_proxies, proxy_header,
    retry_after.
    """

    def __init__(
        self,
        app: WSGIApplication,
        store: SessionStore,
        tenant: str,
        **options: Unpack[PolicyOptions],
    ) -> None:
        self.app = app
        self.gate = Gate(store, Policy(tenant, **options))

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        environ[GATE] = self.gate
        policy = self.gate.policy
        if policy.exempt(environ.get("PATH_INFO") or "/"):
            environ[ENVIRON_SESSION] = None
            return self._call_app(environ, start_response)

        credential = _credential(environ, policy)
        try:
            session = self._validate(credential)
        except StoreUnavailable:
            return _refuse(start_response, policy.unavailable())
        refusal = policy.refusal(credential, session)
        if refusal is not None:
            return _refuse(start_response, refusal)

        environ[ENVIRON_SESSION] = session
        if policy.clears_cookie(credential, session):
            start_response = _clearing_cookie(start_response, policy)
        return self._call_app(environ, start_response)

    def _validate(self, credential: Credential | None) -> Session | None:
        if credential is None:
            return None  # anonymous: no Redis call
        return self.gate.store.validate(self.gate.policy.tenant, credential.token)

    def _call_app(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        # The helpers reach Redis too: an outage there is a 503 as well, unless too late.
        # (Flask turns view errors into 500s first: see examples/flask_app.py.)
        started = False

        def start_tracking(
            status: str, headers: list[tuple[str, str]], exc_info: Any = None
        ) -> Any:
            nonlocal started
            started = True
            return start_response(status, headers, exc_info)

        try:
            return self.app(environ, start_tracking)
        except StoreUnavailable:
            if started:
                raise
            return _refuse(start_response, self.gate.policy.unavailable())


# -- helpers for the app's own views -------------------------------------------------------------


def current_session(environ: WSGIEnvironment) -> Session | None:
    """This request's session, None when anonymous."""
    return environ.get(ENVIRON_SESSION)


def login(
    environ: WSGIEnvironment,
    response: Any,
    user_id: int,
    *,
    auth_method: str = "password",
    mfa_verified: bool = False,
) -> Session:
    """Sign the user in: start a session for this client and set its cookie on ``response``.

    ``response`` is a Flask/Werkzeug response (its headers have ``add``). A session the request
    already had is revoked first, so signing in never leaves an old token alive.
    """
    store, policy = _gate(environ)
    previous = _presented_session(environ)
    if previous is not None:
        store.revoke(policy.tenant, previous.user_id, previous.id)
    session, token = store.create(
        policy.tenant,
        user_id,
        ip_address=policy.client_ip(
            environ.get("REMOTE_ADDR"), _header(environ, policy.proxy_header)
        ),
        user_agent=environ.get("HTTP_USER_AGENT", ""),
        auth_method=auth_method,
        mfa_verified=mfa_verified,
    )
    response.headers.add(
        "Set-Cookie", policy.session_cookie(token, cookie_max_age(store.config.lifetime))
    )
    return session


def logout(environ: WSGIEnvironment, response: Any) -> bool:
    """Revoke this request's session and clear its cookie; False if it had none to revoke."""
    store, policy = _gate(environ)
    session = _presented_session(environ)
    revoked = session is not None and store.revoke(policy.tenant, session.user_id, session.id)
    response.headers.add("Set-Cookie", policy.clearing_cookie())
    return revoked


def sign_out_other_devices(environ: WSGIEnvironment) -> int:
    """Revoke every session of this user but the current one; how many were revoked."""
    store, policy = _gate(environ)
    current = current_session(environ)
    if current is None:
        return 0
    return store.revoke_all(policy.tenant, current.user_id, except_session_id=current.id)


def sign_out_device(environ: WSGIEnvironment, session_id: str) -> bool:
    """Revoke one of this user's own sessions (a "sign out" button on a devices page)."""
    store, policy = _gate(environ)
    current = current_session(environ)
    if current is None:
        return False
    return store.revoke(policy.tenant, current.user_id, session_id)


def list_my_sessions(environ: WSGIEnvironment) -> list[dict[str, Any]]:
    """The user's sessions as the spec's objects plus ``current``, true on this request's only."""
    store, policy = _gate(environ)
    current = current_session(environ)
    if current is None:
        return []
    return mark_current(store.list_user_sessions(policy.tenant, current.user_id), current)


def _presented_session(environ: WSGIEnvironment) -> Session | None:
    # On an excluded path (login, logout) the middleware read no token: read it here.
    session = current_session(environ)
    if session is not None:
        return session
    store, policy = _gate(environ)
    credential = _credential(environ, policy)
    return None if credential is None else store.validate(policy.tenant, credential.token)


def _gate(environ: WSGIEnvironment) -> tuple[SessionStore, Policy]:
    gate: Gate[SessionStore] | None = environ.get(GATE)
    if gate is None:
        raise RuntimeError("this helper needs sessionstore.wsgi.SessionMiddleware around the app")
    return gate.store, gate.policy


# -- WSGI plumbing -------------------------------------------------------------------------------


def _credential(environ: WSGIEnvironment, policy: Policy) -> Credential | None:
    return policy.find_token(environ.get("HTTP_COOKIE"), environ.get("HTTP_AUTHORIZATION"))


def _header(environ: WSGIEnvironment, name: str) -> str | None:
    value = environ.get("HTTP_" + name.upper().replace("-", "_"))
    return None if value is None else str(value)


def _clearing_cookie(start_response: StartResponse, policy: Policy) -> StartResponse:
    def start_clearing_cookie(
        status: str, headers: list[tuple[str, str]], exc_info: Any = None
    ) -> Any:
        cookies = (value for key, value in headers if key.lower() == "set-cookie")
        # The app may have just set a fresh one (a login page): that one wins.
        if not sets_cookie(cookies, policy.cookie_name):
            headers = [*headers, ("Set-Cookie", policy.clearing_cookie())]
        return start_response(status, headers, exc_info)

    return start_clearing_cookie


def _refuse(start_response: StartResponse, reply: Reply) -> list[bytes]:
    status = f"{reply.status} {HTTPStatus(reply.status).phrase}"
    start_response(status, list(reply.headers))
    return [reply.body]
