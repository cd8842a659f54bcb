"""SessionMiddleware for WSGI apps (Flask, Django, any other), and its helpers.

    app.wsgi_app = SessionMiddleware(app.wsgi_app, store=SessionStore.from_url(url),
                                     tenant="acme-corp")
    register_flask(app)  # Flask: answer refusals as the middleware would, not with a 500

Each request's session is ``environ["sessionstore.session"]`` (None when anonymous). It takes
one Redis round trip when the request carries a token and none when it does not. The helpers
take the environ (``flask.request.environ``, Django's ``request.environ``) and use the store,
tenant and cookie settings of the middleware it came through; the cookie they set or clear goes
on whatever response the app then sends, whatever its framework. The twin of asgi.py: what
they decide is policy.py's; this module reads the environ, calls the store and answers.
"""

from __future__ import annotations

from collections.abc import Iterable
from http import HTTPStatus
from typing import TYPE_CHECKING, Any, TypeVar, Unpack
from wsgiref.types import StartResponse, WSGIApplication, WSGIEnvironment

from ..errors import SessionStoreError, StoreUnavailable
from ..http.credentials import AmbiguousCredential
from ..http.origin import Origin
from ..model import Session
from ..store import SessionStore
from .dbsc import DbscRequest, binding_check_flow, endpoint_flow, registration_flow
from .policy import (
    ENVIRON_SESSION,
    EXCHANGE,
    GATE,
    Client,
    Exchange,
    Gate,
    HelperFlow,
    Policy,
    PolicyOptions,
    Refusal,
    Reply,
    list_my_sessions_flow,
    login_flow,
    logout_flow,
    sign_out_device_flow,
    sign_out_other_devices_flow,
    validation_flow,
)

if TYPE_CHECKING:
    from flask import Flask
    from flask.typing import ResponseReturnValue

__all__ = [
    "SessionMiddleware",
    "check_csrf_token",
    "csrf_token",
    "current_session",
    "error_reply",
    "flask_error_handler",
    "list_my_sessions",
    "login",
    "logout",
    "register_flask",
    "required_session",
    "sign_out_device",
    "sign_out_other_devices",
]

T = TypeVar("T")


class SessionMiddleware:
    """Validates the request's session token once, then passes the request on or refuses it.

    Options (all keywords, see ``sessionstore.middleware.Policy``): cookie_name, token_sources,
    required, exclude_paths, secure_cookie, same_site, trusted_origins, trusted_proxies,
    proxy_header, retry_after, device_bound (dbsc.py: it then serves the DBSC endpoints too).
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
        policy = self.gate.policy
        if policy.binding is not None:
            reply = _run(self.gate.store, endpoint_flow(policy, _dbsc_request(environ)))
            if reply is not None:
                return _refuse(start_response, reply)
        exchange = Exchange()
        environ[GATE] = self.gate
        environ[EXCHANGE] = exchange
        try:
            # WSGI servers join repeated header fields with commas: the rules expect that.
            cookies = environ.get("HTTP_COOKIE")
            exchange.credentials = policy.credentials(cookies, environ.get("HTTP_AUTHORIZATION"))
            _run(self.gate.store, validation_flow(policy, exchange))
            _run(self.gate.store, binding_check_flow(policy, exchange, cookies))
        except AmbiguousCredential as error:
            return _refuse(start_response, policy.ambiguous(error))
        except StoreUnavailable:
            return _refuse(start_response, policy.unavailable())
        refusal = policy.refusal(exchange, environ.get("PATH_INFO") or "/")
        if refusal is not None:
            return _refuse(start_response, refusal)

        environ[ENVIRON_SESSION] = exchange.session
        return self._call_app(environ, start_response, exchange)

    def _call_app(
        self, environ: WSGIEnvironment, start_response: StartResponse, exchange: Exchange
    ) -> Iterable[bytes]:
        policy = self.gate.policy

        def start_finished(
            status: str, headers: list[tuple[str, str]], exc_info: Any = None
        ) -> Any:
            exchange.started = True
            return start_response(status, policy.finish(exchange, list(headers)), exc_info)

        # A helper's refusal, or Redis failing under one, is answered here unless too late.
        # (Flask and Django turn view errors into 500 pages first: see error_reply.)
        try:
            return self.app(environ, start_finished)
        except (Refusal, StoreUnavailable) as error:
            reply = policy.error_reply(error)
            if exchange.started or reply is None:
                raise
            return _refuse(start_response, reply)


# -- helpers for the app's own views -------------------------------------------------------------


def current_session(environ: WSGIEnvironment) -> Session | None:
    """This request's session, None when anonymous."""
    return environ.get(ENVIRON_SESSION)


def required_session(environ: WSGIEnvironment) -> Session:
    """This request's session; SessionRequired (401) when none (see error_reply)."""
    gate, exchange = _context(environ)
    return gate.policy.require_session(exchange)


def error_reply(environ: WSGIEnvironment, error: BaseException) -> Reply | None:
    """The answer the middleware gives for ``error``: a Refusal's own (401, 403), or the 503 for
    StoreUnavailable; None for any other error. For frameworks that answer view errors before
    the middleware sees them (a Django middleware's process_exception; Flask: register_flask).
    The reply unpacks as ``status, headers, body``."""
    return _context(environ)[0].policy.error_reply(error)


def flask_error_handler(error: Exception) -> ResponseReturnValue:
    """A Flask error handler for Refusal and StoreUnavailable: the middleware's own answer
    (problem+json 401, 403, or 503 with Retry-After) instead of Flask's 500 page. Any other
    error, or one raised outside the middleware, goes on to Flask's own handling."""
    from flask import request  # here: only Flask apps import Flask

    reply = error_reply(request.environ, error) if GATE in request.environ else None
    if reply is None:
        raise error
    return reply.body, reply.status, list(reply.headers)


def register_flask(app: Flask) -> None:
    """Answer the session layer's errors in ``app`` as the middleware would: registers
    ``flask_error_handler`` for Refusal (CrossSiteRequest, SessionRequired) and for
    StoreUnavailable. The app's own handlers for other errors stay as they are."""
    app.register_error_handler(Refusal, flask_error_handler)
    app.register_error_handler(StoreUnavailable, flask_error_handler)


def login(
    environ: WSGIEnvironment,
    user_id: int,
    *,
    auth_method: str = "password",
    mfa_verified: bool = False,
    set_cookie: bool = True,
    check_origin: bool = True,
) -> tuple[Session, str]:
    """Sign the user in: start a session for this client; the session and its token.

    The response the app sends gets the session cookie (``set_cookie=False``: none, for bearer
    clients, which take the token from the app's answer). A session the request already had
    is revoked first, so signing in never leaves an old token alive. Raises CrossSiteRequest
    (403) for a request from another site's page (``sessionstore.http.origin``);
    ``check_origin=False`` only where the flow has a check of its own (an OAuth callback's
    state). With ``device_bound``, a cookie sign-in also offers the browser DBSC (dbsc.py).
    """
    gate, exchange = _context(environ)
    policy = gate.policy
    client = Client(
        peer=environ.get("REMOTE_ADDR"),
        forwarded_for=_header(environ, policy.proxy_header),
        user_agent=environ.get("HTTP_USER_AGENT", ""),
    )
    flow = login_flow(
        policy,
        exchange,
        user_id,
        client=client,
        origin=_origin(environ, check_origin),
        lifetime=gate.store.config.lifetime,
        auth_method=auth_method,
        mfa_verified=mfa_verified,
        set_cookie=set_cookie,
    )
    session, token = _run_publishing(environ, gate, exchange, flow)
    mount = str(environ.get("SCRIPT_NAME", ""))
    _run(gate.store, registration_flow(policy, exchange, token, mount))
    return session, token


def logout(environ: WSGIEnvironment, *, check_origin: bool = True) -> bool:
    """Revoke this request's session and clear its cookie; False if it had none to revoke."""
    gate, exchange = _context(environ)
    flow = logout_flow(gate.policy, exchange, _origin(environ, check_origin))
    return _run_publishing(environ, gate, exchange, flow)


def sign_out_other_devices(environ: WSGIEnvironment, *, check_origin: bool = True) -> int:
    """Revoke every session of this user but the current one; how many were revoked."""
    gate, exchange = _context(environ)
    origin = _origin(environ, check_origin)
    return _run(gate.store, sign_out_other_devices_flow(gate.policy, exchange, origin))


def sign_out_device(
    environ: WSGIEnvironment, session_id: str, *, check_origin: bool = True
) -> bool:
    """Revoke one of this user's own sessions (a "sign out" button on a devices page)."""
    gate, exchange = _context(environ)
    origin = _origin(environ, check_origin)
    return _run(gate.store, sign_out_device_flow(gate.policy, exchange, session_id, origin))


def list_my_sessions(environ: WSGIEnvironment) -> list[dict[str, Any]]:
    """The user's sessions as the spec's objects plus ``current``, true on this request's only."""
    gate, exchange = _context(environ)
    return _run(gate.store, list_my_sessions_flow(gate.policy, exchange))


def csrf_token(environ: WSGIEnvironment) -> str | None:
    """This session's synchronizer token for the app's forms; None when anonymous."""
    return _context(environ)[1].csrf_token()


def check_csrf_token(environ: WSGIEnvironment, submitted: str | None) -> None:
    """Raise CrossSiteRequest (403) unless ``submitted`` is this session's synchronizer token."""
    gate, exchange = _context(environ)
    gate.policy.check_csrf_token(exchange, submitted)


# -- WSGI plumbing -------------------------------------------------------------------------------


def _context(environ: WSGIEnvironment) -> tuple[Gate[SessionStore], Exchange]:
    gate: Gate[SessionStore] | None = environ.get(GATE)
    exchange: Exchange | None = environ.get(EXCHANGE)
    if gate is None or exchange is None:
        raise RuntimeError(
            "this helper needs sessionstore.middleware.wsgi.SessionMiddleware around the app"
        )
    return gate, exchange


def _run(store: SessionStore, flow: HelperFlow[T]) -> T:
    """Make the store calls a policy flow asks for, one after another; the flow's result."""
    try:
        call = next(flow)
        while True:
            try:
                result = getattr(store, call.method)(*call.args, **call.kwargs)
            except SessionStoreError as error:
                call = flow.throw(error)  # the flow may answer it (dbsc.py); else it goes on up
            else:
                call = flow.send(result)
    except StopIteration as done:
        return done.value  # type: ignore[no-any-return]


def _run_publishing(
    environ: WSGIEnvironment, gate: Gate[SessionStore], exchange: Exchange, flow: HelperFlow[T]
) -> T:
    """Run a flow that changes who is signed in, then publish the request's new session."""
    result = _run(gate.store, flow)
    environ[ENVIRON_SESSION] = exchange.session
    return result


def _dbsc_request(environ: WSGIEnvironment) -> DbscRequest:
    return DbscRequest(
        method=str(environ.get("REQUEST_METHOD", "GET")),
        path=environ.get("PATH_INFO") or "/",
        mount=str(environ.get("SCRIPT_NAME", "")),
        cookie=environ.get("HTTP_COOKIE"),
        authorization=environ.get("HTTP_AUTHORIZATION"),
        session_response=_header(environ, "secure-session-response"),
        session_id=_header(environ, "sec-secure-session-id"),
    )


def _origin(environ: WSGIEnvironment, check_origin: bool) -> Origin | None:
    """The request's origin for a helper to check; None when the caller opted out."""
    return Origin.from_environ(environ) if check_origin else None


def _header(environ: WSGIEnvironment, name: str) -> str | None:
    value = environ.get("HTTP_" + name.upper().replace("-", "_"))
    return None if value is None else str(value)


def _refuse(start_response: StartResponse, reply: Reply) -> list[bytes]:
    status = f"{reply.status} {HTTPStatus(reply.status).phrase}"
    start_response(status, list(reply.headers))
    return [reply.body]
