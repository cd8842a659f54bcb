"""SessionMiddleware for WSGI apps (Flask, Django, any other), and its helpers.

    app.wsgi_app = SessionMiddleware(app.wsgi_app, store=SessionStore.from_url(url),
                                     tenant="acme-corp")

Each request's session is ``environ["sessionstore.session"]`` (None when anonymous). It takes
one Redis round trip when the request carries a token and none when it does not. The helpers
take the environ (``flask.request.environ``, Django's ``request.environ``) and use the store,
tenant and cookie settings of the middleware it came through; the cookie they set or clear goes
on whatever response the app then sends, whatever its framework. The twin of asgi.py: the
decisions live in web.py.
"""

from __future__ import annotations

from collections.abc import Iterable
from http import HTTPStatus
from typing import Any, Unpack
from wsgiref.types import StartResponse, WSGIApplication, WSGIEnvironment

from ._core.inputs import AmbiguousCredential
from .errors import StoreUnavailable
from .model import Session
from .store import SessionStore
from .web import (
    ENVIRON_SESSION,
    EXCHANGE,
    GATE,
    USER,
    Exchange,
    Gate,
    Origin,
    Policy,
    PolicyOptions,
    Refusal,
    Reply,
    SessionRequired,
    bad_synchronizer_token,
    cookie_max_age,
    mark_current,
    synchronizer_token,
    synchronizer_token_matches,
)


class SessionMiddleware:
    """Validates the request's session token once, then passes the request on or refuses it.

    Options (all keywords, see ``sessionstore.web.Policy``): cookie_name, token_sources,
    required, exclude_paths, secure_cookie, same_site, trusted_origins, trusted_proxies,
    proxy_header, retry_after.
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
        exchange = Exchange()
        environ[GATE] = self.gate
        environ[EXCHANGE] = exchange
        try:
            # WSGI servers join repeated header fields with commas: the rules expect that.
            exchange.credentials = policy.credentials(
                environ.get("HTTP_COOKIE"), environ.get("HTTP_AUTHORIZATION")
            )
            self._validate(exchange)
        except AmbiguousCredential as error:
            return _refuse(start_response, policy.ambiguous(error))
        except StoreUnavailable:
            return _refuse(start_response, policy.unavailable())
        refusal = policy.refusal(exchange, environ.get("PATH_INFO") or "/")
        if refusal is not None:
            return _refuse(start_response, refusal)

        environ[ENVIRON_SESSION] = exchange.session
        return self._call_app(environ, start_response, exchange)

    def _validate(self, exchange: Exchange) -> None:
        # No token: anonymous, no Redis call. Otherwise one call per token until one is live.
        store, tenant = self.gate.store, self.gate.policy.tenant
        for credential in exchange.credentials:
            if exchange.accept(credential, store.validate(tenant, credential.token)):
                return

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
    session = current_session(environ)
    if session is None:
        _, policy, exchange = _context(environ)
        reply = policy.unauthenticated(exchange)
        raise SessionRequired(reply, "this resource needs a signed-in session")
    return session


def error_reply(environ: WSGIEnvironment, error: BaseException) -> Reply | None:
    """The answer the middleware gives for ``error``: a Refusal's own (401, 403), or the 503 for
    StoreUnavailable; None for any other error. For frameworks that answer view errors before
    the middleware sees them (a Flask errorhandler, a Django middleware's process_exception)."""
    return _context(environ)[1].error_reply(error)


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
    (403) for a request from another site's page (Policy.cross_site); ``check_origin=False``
    only where the flow has a check of its own (an OAuth callback's state).
    """
    store, policy, exchange = _changing(environ, check_origin)
    previous = exchange.session
    if previous is not None:
        store.revoke(policy.tenant, previous.user_id, previous.id, actor=USER)
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
    cookie = policy.session_cookie(token, cookie_max_age(store.config.lifetime))
    exchange.change(session, token, cookie if set_cookie else _stale_cookie(exchange, policy))
    environ[ENVIRON_SESSION] = session
    return session, token


def logout(environ: WSGIEnvironment, *, check_origin: bool = True) -> bool:
    """Revoke this request's session and clear its cookie; False if it had none to revoke."""
    store, policy, exchange = _changing(environ, check_origin)
    session = exchange.session
    revoked = session is not None and store.revoke(
        policy.tenant, session.user_id, session.id, actor=USER
    )
    exchange.change(None, None, policy.clearing_cookie())
    environ[ENVIRON_SESSION] = None
    return revoked


def sign_out_other_devices(environ: WSGIEnvironment, *, check_origin: bool = True) -> int:
    """Revoke every session of this user but the current one; how many were revoked."""
    store, policy, exchange = _changing(environ, check_origin)
    current = exchange.session
    if current is None:
        return 0
    return store.revoke_all(
        policy.tenant, current.user_id, except_session_id=current.id, actor=USER
    )


def sign_out_device(
    environ: WSGIEnvironment, session_id: str, *, check_origin: bool = True
) -> bool:
    """Revoke one of this user's own sessions (a "sign out" button on a devices page)."""
    store, policy, exchange = _changing(environ, check_origin)
    current = exchange.session
    if current is None:
        return False
    return store.revoke(policy.tenant, current.user_id, session_id, actor=USER)


def list_my_sessions(environ: WSGIEnvironment) -> list[dict[str, Any]]:
    """The user's sessions as the spec's objects plus ``current``, true on this request's only."""
    store, policy, exchange = _context(environ)
    current = exchange.session
    if current is None:
        return []
    return mark_current(store.list_user_sessions(policy.tenant, current.user_id), current)


def csrf_token(environ: WSGIEnvironment) -> str | None:
    """This session's synchronizer token for the app's forms; None when anonymous."""
    token = _context(environ)[2].token
    return None if token is None else synchronizer_token(token)


def check_csrf_token(environ: WSGIEnvironment, submitted: str | None) -> None:
    """Raise CrossSiteRequest (403) unless ``submitted`` is this session's synchronizer token."""
    _, policy, exchange = _context(environ)
    if not synchronizer_token_matches(exchange.token, submitted):
        raise bad_synchronizer_token(policy)


def _changing(
    environ: WSGIEnvironment, check_origin: bool
) -> tuple[SessionStore, Policy, Exchange]:
    store, policy, exchange = _context(environ)
    policy.check_change(exchange, _origin(environ) if check_origin else None)
    return store, policy, exchange


def _context(environ: WSGIEnvironment) -> tuple[SessionStore, Policy, Exchange]:
    gate: Gate[SessionStore] | None = environ.get(GATE)
    exchange: Exchange | None = environ.get(EXCHANGE)
    if gate is None or exchange is None:
        raise RuntimeError("this helper needs sessionstore.wsgi.SessionMiddleware around the app")
    return gate.store, gate.policy, exchange


def _stale_cookie(exchange: Exchange, policy: Policy) -> str | None:
    # A bearer sign-in over a cookie session revokes that session: its cookie goes too.
    presented = any(credential.source == "cookie" for credential in exchange.credentials)
    return policy.clearing_cookie() if presented else None


# -- WSGI plumbing -------------------------------------------------------------------------------


def _origin(environ: WSGIEnvironment) -> Origin:
    host = environ.get("HTTP_HOST")
    if host is None and environ.get("SERVER_NAME"):
        host = f"{environ['SERVER_NAME']}:{environ.get('SERVER_PORT', '')}".rstrip(":")
    return Origin(
        scheme=str(environ.get("wsgi.url_scheme", "http")),
        host=host,
        sec_fetch_site=environ.get("HTTP_SEC_FETCH_SITE"),
        origin=environ.get("HTTP_ORIGIN"),
        referer=environ.get("HTTP_REFERER"),
    )


def _header(environ: WSGIEnvironment, name: str) -> str | None:
    value = environ.get("HTTP_" + name.upper().replace("-", "_"))
    return None if value is None else str(value)


def _refuse(start_response: StartResponse, reply: Reply) -> list[bytes]:
    status = f"{reply.status} {HTTPStatus(reply.status).phrase}"
    start_response(status, list(reply.headers))
    return [reply.body]
