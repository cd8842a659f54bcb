"""SessionMiddleware for ASGI apps (Starlette, FastAPI, any other), and its async helpers.

    app = Starlette(routes=..., middleware=[
        Middleware(SessionMiddleware, store=AsyncSessionStore.from_url(url), tenant="acme-corp"),
    ])

Each request's session is ``scope["sessionstore.session"]``, also ``request.state.session``
(None when anonymous): keys of its own, so Starlette's cookie SessionMiddleware (which owns
``scope["session"]``) can run beside it. It takes one Redis round trip when the request carries
a token and none when it does not. The helpers (``login``, ``logout``, ...) take the request and
use the store, tenant and cookie settings of the middleware it came through; the cookie they set
or clear goes on whatever response the app then sends. What they decide is policy.py's; this
module reads the scope, awaits the store and sends.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeVar, Unpack

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ..aio import AsyncSessionStore
from ..errors import SessionStoreError, StoreUnavailable
from ..http.credentials import AmbiguousCredential, scope_header
from ..http.origin import Origin
from ..model import Session
from .dbsc import DbscRequest, binding_check_flow, endpoint_flow, registration_flow
from .policy import (
    EXCHANGE,
    GATE,
    SCOPE_SESSION,
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

__all__ = [
    "SessionMiddleware",
    "check_csrf_token",
    "csrf_token",
    "current_session",
    "list_my_sessions",
    "login",
    "logout",
    "required_session",
    "sign_out_device",
    "sign_out_other_devices",
]

T = TypeVar("T")

# A WebSocket refused before its handshake is accepted: the server answers 403 (ASGI spec),
# and the close code says why to clients that look.
_CLOSE_CODES = {400: 1008, 401: 1008, 403: 1008, 503: 1013}  # policy violation, try again later


class SessionMiddleware:
    """Validates the request's session token once, then passes the request on or refuses it.

    Options (all keywords, see ``sessionstore.middleware.Policy``): cookie_name, token_sources,
    required, exclude_paths, secure_cookie, same_site, trusted_origins, trusted_proxies,
    proxy_header, retry_after, device_bound (dbsc.py: it then serves the DBSC endpoints too).
    Lifespan and other non-HTTP scopes pass straight through.
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
        if policy.binding is not None and scope["type"] == "http":
            reply = await _run(self.gate.store, endpoint_flow(policy, _dbsc_request(scope)))
            if reply is not None:
                await _refuse(scope, send, reply)
                return
        exchange = Exchange()
        scope[GATE] = self.gate
        scope[EXCHANGE] = exchange
        try:
            cookies = scope_header(scope, b"cookie", "; ")
            exchange.credentials = policy.credentials(
                cookies, scope_header(scope, b"authorization", ", ")
            )
            await _run(self.gate.store, validation_flow(policy, exchange))
            await _run(self.gate.store, binding_check_flow(policy, exchange, cookies))
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
    gate, exchange = _context(request)
    return gate.policy.require_session(exchange)


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
    request from another site's page (``sessionstore.http.origin``); ``check_origin=False``
    only where the flow has a check of its own (an OAuth callback's state). With
    ``device_bound``, a cookie sign-in also offers the browser DBSC (dbsc.py).
    """
    gate, exchange = _context(request)
    policy = gate.policy
    client = Client(
        peer=_peer(request),
        forwarded_for=scope_header(request, policy.proxy_header.encode(), ", "),
        user_agent=scope_header(request, b"user-agent", " ") or "",
    )
    flow = login_flow(
        policy,
        exchange,
        user_id,
        client=client,
        origin=_origin(request, check_origin),
        lifetime=gate.store.config.lifetime,
        auth_method=auth_method,
        mfa_verified=mfa_verified,
        set_cookie=set_cookie,
    )
    session, token = await _run_publishing(request, gate, exchange, flow)
    mount = str(_scope(request).get("root_path", ""))
    await _run(gate.store, registration_flow(policy, exchange, token, mount))
    return session, token


async def logout(request: Mapping[str, Any], *, check_origin: bool = True) -> bool:
    """Revoke this request's session and clear its cookie; False if it had none to revoke."""
    gate, exchange = _context(request)
    flow = logout_flow(gate.policy, exchange, _origin(request, check_origin))
    return await _run_publishing(request, gate, exchange, flow)


async def sign_out_other_devices(request: Mapping[str, Any], *, check_origin: bool = True) -> int:
    """Revoke every session of this user but the current one; how many were revoked."""
    gate, exchange = _context(request)
    origin = _origin(request, check_origin)
    return await _run(gate.store, sign_out_other_devices_flow(gate.policy, exchange, origin))


async def sign_out_device(
    request: Mapping[str, Any], session_id: str, *, check_origin: bool = True
) -> bool:
    """Revoke one of this user's own sessions (a "sign out" button on a devices page)."""
    gate, exchange = _context(request)
    origin = _origin(request, check_origin)
    return await _run(gate.store, sign_out_device_flow(gate.policy, exchange, session_id, origin))


async def list_my_sessions(request: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The user's sessions as the spec's objects plus ``current``, true on this request's only."""
    gate, exchange = _context(request)
    return await _run(gate.store, list_my_sessions_flow(gate.policy, exchange))


def csrf_token(request: Mapping[str, Any]) -> str | None:
    """This session's synchronizer token for the app's forms; None when anonymous."""
    return _context(request)[1].csrf_token()


def check_csrf_token(request: Mapping[str, Any], submitted: str | None) -> None:
    """Raise CrossSiteRequest (403) unless ``submitted`` is this session's synchronizer token."""
    gate, exchange = _context(request)
    gate.policy.check_csrf_token(exchange, submitted)


# -- ASGI plumbing -------------------------------------------------------------------------------


def _context(request: Mapping[str, Any]) -> tuple[Gate[AsyncSessionStore], Exchange]:
    gate: Gate[AsyncSessionStore] | None = request.get(GATE)
    exchange: Exchange | None = request.get(EXCHANGE)
    if gate is None or exchange is None:
        raise RuntimeError(
            "this helper needs sessionstore.middleware.asgi.SessionMiddleware around the app"
        )
    return gate, exchange


async def _run(store: AsyncSessionStore, flow: HelperFlow[T]) -> T:
    """Make the store calls a policy flow asks for, awaiting each; the flow's result."""
    try:
        call = next(flow)
        while True:
            try:
                result = await getattr(store, call.method)(*call.args, **call.kwargs)
            except SessionStoreError as error:
                call = flow.throw(error)  # the flow may answer it (dbsc.py); else it goes on up
            else:
                call = flow.send(result)
    except StopIteration as done:
        return done.value  # type: ignore[no-any-return]


async def _run_publishing(
    request: Mapping[str, Any],
    gate: Gate[AsyncSessionStore],
    exchange: Exchange,
    flow: HelperFlow[T],
) -> T:
    """Run a flow that changes who is signed in, then publish the request's new session."""
    result = await _run(gate.store, flow)
    _publish(_scope(request), exchange.session)
    return result


def _scope(request: Mapping[str, Any]) -> Any:
    return getattr(request, "scope", request)  # a Starlette Request wraps the scope


def _publish(scope: Any, session: Session | None) -> None:
    scope[SCOPE_SESSION] = session
    # Starlette's request.state reads and writes this dict, so request.state.session works.
    scope.setdefault("state", {})["session"] = session


def _origin(request: Mapping[str, Any], check_origin: bool) -> Origin | None:
    """The request's origin for a helper to check; None when the caller opted out."""
    return Origin.from_scope(request) if check_origin else None


def _peer(scope: Mapping[str, Any]) -> str | None:
    client = scope.get("client")
    return None if client is None else str(client[0])


def _dbsc_request(scope: Scope) -> DbscRequest:
    return DbscRequest(
        method=scope["method"],
        path=_route_path(scope),
        mount=str(scope.get("root_path", "")),
        cookie=scope_header(scope, b"cookie", "; "),
        authorization=scope_header(scope, b"authorization", ", "),
        session_response=scope_header(scope, b"secure-session-response", ", "),
        session_id=scope_header(scope, b"sec-secure-session-id", ", "),
    )


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
