"""SessionMiddleware for ASGI apps (Starlette, FastAPI, any other), and its async helpers.

    app = Starlette(routes=..., middleware=[
        Middleware(SessionMiddleware, store=AsyncSessionStore.from_url(url), tenant="acme-corp"),
    ])

Each request's session is ``scope["sessionstore.session"]``, also ``request.state.session``
(None when anonymous): keys of its own, so Starlette's cookie SessionMiddleware (which owns
``scope["session"]``) can run beside it. It takes one Redis round trip when the request carries
a token and none when it does not. The helpers (``login``, ``logout``, ...) take the request and
use the store, tenant and cookie settings of the middleware it came through; the cookie they set
or clear goes on whatever response the app then sends.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Unpack

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ._core.inputs import AmbiguousCredential
from .aio import AsyncSessionStore
from .errors import StoreUnavailable
from .model import Session
from .web import (
    EXCHANGE,
    GATE,
    SCOPE_SESSION,
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

# A WebSocket refused before its handshake is accepted: the server answers 403 (ASGI spec),
# and the close code says why to clients that look.
_CLOSE_CODES = {400: 1008, 401: 1008, 403: 1008, 503: 1013}  # policy violation, try again later


class SessionMiddleware:
    """Validates the request's session token once, then passes the request on or refuses it.

    Options (all keywords, see ``sessionstore.web.Policy``): cookie_name, token_sources,
    required, exclude_paths, secure_cookie, same_site, trusted_origins, trusted_proxies,
    proxy_header, retry_after. Lifespan and other non-HTTP scopes pass straight through.
    """

    def __init__(
        self,
        app: ASGIApp,
        store: AsyncSessionStore,
        tenant: str,
        **options: Unpack[PolicyOptions],
    ) -> None:
        self.app = app
        self.gate = Gate(store, Policy(tenant, **options))

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return

        policy = self.gate.policy
        exchange = Exchange()
        scope[GATE] = self.gate
        scope[EXCHANGE] = exchange
        try:
            exchange.credentials = policy.credentials(
                _header(scope, b"cookie", "; "), _header(scope, b"authorization", ", ")
            )
            await self._validate(exchange)
        except AmbiguousCredential as error:
            await _refuse(scope, send, policy.ambiguous(error))
            return
        except StoreUnavailable:
            await _refuse(scope, send, policy.unavailable())
            return
        refusal = policy.refusal(exchange, _route_path(scope))
        if refusal is not None:
            await _refuse(scope, send, refusal)
            return

        _publish(scope, exchange.session)
        await self._call_app(scope, receive, send, exchange)

    async def _validate(self, exchange: Exchange) -> None:
        # No token: anonymous, no Redis call. Otherwise one call per token until one is live.
        store, tenant = self.gate.store, self.gate.policy.tenant
        for credential in exchange.credentials:
            if exchange.accept(credential, await store.validate(tenant, credential.token)):
                return

    async def _call_app(
        self, scope: Scope, receive: Receive, send: Send, exchange: Exchange
    ) -> None:
        policy = self.gate.policy

        async def send_finished(message: Message) -> None:
            if message["type"] == "http.response.start":
                exchange.started = True
                headers = [
                    (key.decode("latin-1"), value.decode("latin-1"))
                    for key, value in message.get("headers", ())
                ]
                finished = policy.finish(exchange, headers)[len(headers) :]
                if finished:
                    added = [(k.encode("latin-1"), v.encode("latin-1")) for k, v in finished]
                    message = {**message, "headers": [*message.get("headers", ()), *added]}
            elif message["type"] == "websocket.accept":
                exchange.started = True
            await send(message)

        # A helper's refusal, or Redis failing under one, is answered here unless too late.
        try:
            await self.app(scope, receive, send_finished)
        except (Refusal, StoreUnavailable) as error:
            reply = policy.error_reply(error)
            if exchange.started or reply is None:
                raise
            await _refuse(scope, send, reply)


# -- helpers for the app's own routes ----------------------------------------------------------


def current_session(request: Mapping[str, Any]) -> Session | None:
    """This request's session, None when anonymous. ``request``: a Starlette Request or a scope."""
    return request.get(SCOPE_SESSION)


def required_session(request: Mapping[str, Any]) -> Session:
    """This request's session; SessionRequired (401, answered by the middleware) when none."""
    session = current_session(request)
    if session is None:
        _, policy, exchange = _context(request)
        reply = policy.unauthenticated(exchange)
        raise SessionRequired(reply, "this resource needs a signed-in session")
    return session


async def login(
    request: Mapping[str, Any],
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
    is revoked first, so signing in never leaves an old token alive. The address is the
    peer's, or a trusted proxy's word for it (Policy). Raises CrossSiteRequest (403) for a
    request from another site's page (Policy.cross_site); ``check_origin=False`` only where the
    flow has a check of its own (an OAuth callback's state).
    """
    store, policy, exchange = _changing(request, check_origin)
    previous = exchange.session
    if previous is not None:
        await store.revoke(policy.tenant, previous.user_id, previous.id, actor=USER)
    session, token = await store.create(
        policy.tenant,
        user_id,
        ip_address=policy.client_ip(
            _peer(request), _header(request, policy.proxy_header.encode(), ", ")
        ),
        user_agent=_header(request, b"user-agent", " ") or "",
        auth_method=auth_method,
        mfa_verified=mfa_verified,
    )
    cookie = policy.session_cookie(token, cookie_max_age(store.config.lifetime))
    exchange.change(session, token, cookie if set_cookie else _stale_cookie(exchange, policy))
    _publish(_scope(request), session)
    return session, token


async def logout(request: Mapping[str, Any], *, check_origin: bool = True) -> bool:
    """Revoke this request's session and clear its cookie; False if it had none to revoke."""
    store, policy, exchange = _changing(request, check_origin)
    session = exchange.session
    revoked = session is not None and await store.revoke(
        policy.tenant, session.user_id, session.id, actor=USER
    )
    exchange.change(None, None, policy.clearing_cookie())
    _publish(_scope(request), None)
    return revoked


async def sign_out_other_devices(request: Mapping[str, Any], *, check_origin: bool = True) -> int:
    """Revoke every session of this user but the current one; how many were revoked."""
    store, policy, exchange = _changing(request, check_origin)
    current = exchange.session
    if current is None:
        return 0
    return await store.revoke_all(
        policy.tenant, current.user_id, except_session_id=current.id, actor=USER
    )


async def sign_out_device(
    request: Mapping[str, Any], session_id: str, *, check_origin: bool = True
) -> bool:
    """Revoke one of this user's own sessions (a "sign out" button on a devices page)."""
    store, policy, exchange = _changing(request, check_origin)
    current = exchange.session
    if current is None:
        return False
    return await store.revoke(policy.tenant, current.user_id, session_id, actor=USER)


async def list_my_sessions(request: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The user's sessions as the spec's objects plus ``current``, true on this request's only."""
    store, policy, exchange = _context(request)
    current = exchange.session
    if current is None:
        return []
    return mark_current(await store.list_user_sessions(policy.tenant, current.user_id), current)


def csrf_token(request: Mapping[str, Any]) -> str | None:
    """This session's synchronizer token for the app's forms; None when anonymous."""
    token = _context(request)[2].token
    return None if token is None else synchronizer_token(token)


def check_csrf_token(request: Mapping[str, Any], submitted: str | None) -> None:
    """Raise CrossSiteRequest (403) unless ``submitted`` is this session's synchronizer token."""
    _, policy, exchange = _context(request)
    if not synchronizer_token_matches(exchange.token, submitted):
        raise bad_synchronizer_token(policy)


def _changing(
    request: Mapping[str, Any], check_origin: bool
) -> tuple[AsyncSessionStore, Policy, Exchange]:
    store, policy, exchange = _context(request)
    policy.check_change(exchange, _origin(request) if check_origin else None)
    return store, policy, exchange


def _context(request: Mapping[str, Any]) -> tuple[AsyncSessionStore, Policy, Exchange]:
    gate: Gate[AsyncSessionStore] | None = request.get(GATE)
    exchange: Exchange | None = request.get(EXCHANGE)
    if gate is None or exchange is None:
        raise RuntimeError("this helper needs sessionstore.asgi.SessionMiddleware around the app")
    return gate.store, gate.policy, exchange


def _stale_cookie(exchange: Exchange, policy: Policy) -> str | None:
    # A bearer sign-in over a cookie session revokes that session: its cookie goes too.
    presented = any(credential.source == "cookie" for credential in exchange.credentials)
    return policy.clearing_cookie() if presented else None


# -- ASGI plumbing -------------------------------------------------------------------------------


def _scope(request: Mapping[str, Any]) -> Any:
    return getattr(request, "scope", request)  # a Starlette Request wraps the scope


def _publish(scope: Any, session: Session | None) -> None:
    scope[SCOPE_SESSION] = session
    # Starlette's request.state reads and writes this dict, so request.state.session works.
    scope.setdefault("state", {})["session"] = session


def _origin(request: Mapping[str, Any]) -> Origin:
    scheme = str(request.get("scheme", "http"))
    return Origin(
        scheme={"ws": "http", "wss": "https"}.get(scheme, scheme),
        host=_header(request, b"host", ","),
        sec_fetch_site=_header(request, b"sec-fetch-site", ","),
        origin=_header(request, b"origin", ","),
        referer=_header(request, b"referer", ","),
    )


def _header(scope: Mapping[str, Any], name: bytes, separator: str) -> str | None:
    values = [value.decode("latin-1") for key, value in scope["headers"] if key == name]
    return separator.join(values) if values else None


def _peer(scope: Mapping[str, Any]) -> str | None:
    client = scope.get("client")
    return None if client is None else str(client[0])


def _route_path(scope: Scope) -> str:
    # Under a mount or --root-path, match paths below it, as Starlette's router does.
    path: str = scope["path"]
    root: str = scope.get("root_path", "")
    if root and (path == root or path.startswith(root + "/")):
        return path[len(root) :] or "/"
    return path


async def _refuse(scope: Scope, send: Send, reply: Reply) -> None:
    if scope["type"] == "websocket":
        await send({"type": "websocket.close", "code": _CLOSE_CODES.get(reply.status, 1008)})
        return
    headers = [(key.encode("latin-1"), value.encode("latin-1")) for key, value in reply.headers]
    await send({"type": "http.response.start", "status": reply.status, "headers": headers})
    await send({"type": "http.response.body", "body": reply.body})
