"""SessionMiddleware for ASGI apps (Starlette, FastAPI, any other), and its async helpers.

    app = Starlette(routes=..., middleware=[
        Middleware(SessionMiddleware, store=AsyncSessionStore.from_url(url), tenant="acme-corp"),
    ])

Each request's session is ``scope["session"]``, also ``request.state.session`` (None when
anonymous). It takes one Redis round trip when the request carries a token and none when it does
not. The helpers (``login``, ``logout``, ...) take the request and use the store, tenant and
cookie settings of the middleware it came through. (``scope["session"]`` is the key Starlette's
own cookie SessionMiddleware uses too: use one or the other.)
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Unpack

from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from .aio import AsyncSessionStore
from .errors import StoreUnavailable
from .model import Session
from .web import (
    GATE,
    SCOPE_SESSION,
    Credential,
    Gate,
    Policy,
    PolicyOptions,
    Reply,
    cookie_max_age,
    mark_current,
    sets_cookie,
)

# A WebSocket refused before its handshake is accepted: the server answers 403 (ASGI spec),
# and the close code says why to clients that look.
_CLOSE_CODES = {401: 1008, 503: 1013}  # policy violation, try again later


class SessionMiddleware:
    """Validates the request's session token once, then passes the request on or refuses it.

    Options (all keywords, see ``sessionstore.web.Policy``): cookie_name, token_sources,
    required, exclude_paths, secure_cookie, same_site, trusted_proxies, proxy_header,
    retry_after. Lifespan and other non-HTTP scopes pass straight through.
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

        scope[GATE] = self.gate
        policy = self.gate.policy
        if policy.exempt(_route_path(scope)):
            _publish(scope, None)
            await self._call_app(scope, receive, send)
            return

        credential = _credential(scope, policy)
        try:
            session = await self._validate(credential)
        except StoreUnavailable:
            await _refuse(scope, send, policy.unavailable())
            return
        refusal = policy.refusal(credential, session)
        if refusal is not None:
            await _refuse(scope, send, refusal)
            return

        _publish(scope, session)
        if scope["type"] == "http" and policy.clears_cookie(credential, session):
            send = _clearing_cookie(send, policy)
        await self._call_app(scope, receive, send)

    async def _validate(self, credential: Credential | None) -> Session | None:
        if credential is None:
            return None  # anonymous: no Redis call
        return await self.gate.store.validate(self.gate.policy.tenant, credential.token)

    async def _call_app(self, scope: Scope, receive: Receive, send: Send) -> None:
        # The helpers reach Redis too: an outage there is a 503 as well, unless too late.
        started = False

        async def send_tracking_start(message: Message) -> None:
            nonlocal started
            started = True
            await send(message)

        try:
            await self.app(scope, receive, send_tracking_start)
        except StoreUnavailable:
            if started:
                raise
            await _refuse(scope, send, self.gate.policy.unavailable())


# -- helpers for the app's own routes ----------------------------------------------------------


def current_session(request: Mapping[str, Any]) -> Session | None:
    """This request's session, None when anonymous. ``request``: a Starlette Request or a scope."""
    return request.get(SCOPE_SESSION)


async def login(
    request: Mapping[str, Any],
    response: Response,
    user_id: int,
    *,
    auth_method: str = "password",
    mfa_verified: bool = False,
) -> Session:
    """Sign the user in: start a session for this client and set its cookie on ``response``.

    A session the request already had is revoked first, so signing in never leaves an old
    token alive. The address is the peer's, or a trusted proxy's word for it (Policy).
    """
    store, policy = _gate(request)
    previous = await _presented_session(request)
    if previous is not None:
        await store.revoke(policy.tenant, previous.user_id, previous.id)
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
    response.headers.append(
        "set-cookie", policy.session_cookie(token, cookie_max_age(store.config.lifetime))
    )
    return session


async def logout(request: Mapping[str, Any], response: Response) -> bool:
    """Revoke this request's session and clear its cookie; False if it had none to revoke."""
    store, policy = _gate(request)
    session = await _presented_session(request)
    revoked = session is not None and await store.revoke(policy.tenant, session.user_id, session.id)
    response.headers.append("set-cookie", policy.clearing_cookie())
    return revoked


async def sign_out_other_devices(request: Mapping[str, Any]) -> int:
    """Revoke every session of this user but the current one; how many were revoked."""
    store, policy = _gate(request)
    current = current_session(request)
    if current is None:
        return 0
    return await store.revoke_all(policy.tenant, current.user_id, except_session_id=current.id)


async def sign_out_device(request: Mapping[str, Any], session_id: str) -> bool:
    """Revoke one of this user's own sessions (a "sign out" button on a devices page)."""
    store, policy = _gate(request)
    current = current_session(request)
    if current is None:
        return False
    return await store.revoke(policy.tenant, current.user_id, session_id)


async def list_my_sessions(request: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The user's sessions as the spec's objects plus ``current``, true on this request's only."""
    store, policy = _gate(request)
    current = current_session(request)
    if current is None:
        return []
    return mark_current(await store.list_user_sessions(policy.tenant, current.user_id), current)


async def _presented_session(request: Mapping[str, Any]) -> Session | None:
    # On an excluded path (login, logout) the middleware read no token: read it here.
    session = current_session(request)
    if session is not None:
        return session
    store, policy = _gate(request)
    credential = _credential(request, policy)
    return None if credential is None else await store.validate(policy.tenant, credential.token)


def _gate(request: Mapping[str, Any]) -> tuple[AsyncSessionStore, Policy]:
    gate: Gate[AsyncSessionStore] | None = request.get(GATE)
    if gate is None:
        raise RuntimeError("this helper needs sessionstore.asgi.SessionMiddleware around the app")
    return gate.store, gate.policy


# -- ASGI plumbing -------------------------------------------------------------------------------


def _publish(scope: Scope, session: Session | None) -> None:
    scope[SCOPE_SESSION] = session
    # Starlette's request.state reads and writes this dict, so request.state.session works.
    scope.setdefault("state", {})["session"] = session


def _credential(scope: Mapping[str, Any], policy: Policy) -> Credential | None:
    return policy.find_token(
        _header(scope, b"cookie", "; "), _header(scope, b"authorization", ", ")
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


def _clearing_cookie(send: Send, policy: Policy) -> Send:
    async def send_clearing_cookie(message: Message) -> None:
        if message["type"] == "http.response.start":
            headers = list(message.get("headers", ()))
            cookies = (v.decode("latin-1") for k, v in headers if k.lower() == b"set-cookie")
            # The app may have just set a fresh one (a login page): that one wins.
            if not sets_cookie(cookies, policy.cookie_name):
                headers.append((b"set-cookie", policy.clearing_cookie().encode("latin-1")))
                message = {**message, "headers": headers}
        await send(message)

    return send_clearing_cookie


async def _refuse(scope: Scope, send: Send, reply: Reply) -> None:
    if scope["type"] == "websocket":
        await send({"type": "websocket.close", "code": _CLOSE_CODES[reply.status]})
        return
    headers = [(key.encode("latin-1"), value.encode("latin-1")) for key, value in reply.headers]
    await send({"type": "http.response.start", "status": reply.status, "headers": headers})
    await send({"type": "http.response.body", "body": reply.body})
