"""The admin REST API: a Starlette app over an AsyncSessionStore.

A request to ``/t/{tenant}/api/v1/admin/...`` meets, in this order: the API key (401), the
rate limits (429), the tenant (404 for any tenant but the key's own, before anything about
that tenant is read or validated), then the endpoint's input checks (422) and the store (503
when Redis cannot be reached). Every error is ``application/problem+json``.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Final

from starlette.applications import Starlette
from starlette.datastructures import MutableHeaders
from starlette.endpoints import HTTPEndpoint
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Match, Mount, Route, Router
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from .._core import inputs, tokens
from .._logs import logged_path
from ..aio import AsyncSessionStore
from ..errors import InvalidArgument, InvalidTenant, StoreUnavailable
from ..metrics import ApiMetrics
from ..model import Page
from . import console, openapi
from .apikeys import ApiKeys
from .problems import CONTENT_TYPE, problem_bytes
from .ratelimit import HEAVY, Cost, InFlight, Limiter, RateLimits, retry_after

log = logging.getLogger("sessionstore.api")

NOT_FOUND = "No such resource."
ADMIN_KEY = "sessionstore.admin_key"
ADMIN_PLACE = "sessionstore.admin_place"  # (tenant, heavy) of a call that holds a place
IN_FLIGHT_RETRY_AFTER = 1.0  # seconds: a call of the same tenant is likely done by then
UNAVAILABLE_RETRY_AFTER = "1"
_LIMIT_TEXT = re.compile(r"[1-9][0-9]{0,3}")


def problem_response(status: int, detail: str, headers: dict[str, str] | None = None) -> Response:
    return Response(
        problem_bytes(status, detail), status_code=status, media_type=CONTENT_TYPE, headers=headers
    )


def bearer_credential(request: Request) -> str | None:
    """The request's bearer credential, by the rule the session middlewares share (inputs):
    every Authorization field joined, and more than one credential is AmbiguousCredential."""
    return inputs.bearer_token(inputs.joined(request.headers.getlist("authorization"), ", "))


# -- what a call costs ------------------------------------------------------------------------

# Rate-limit tokens of one call, by route (as the admin router names it) and method; every
# other call costs one token. A page costs a token per 100 items of its limit (1 at the
# default of 100, 10 at 1,000). An events page with a filter costs 10 whatever its limit: it
# may read its whole budget (events.PAGE_BUDGET, 2,000 stream entries) before it finds one
# match. A revocation by IP address or of the whole tenant visits every bucket: 10.
PAGE: Final = Cost(per_items=100)
ROUTE_COSTS: Final[Mapping[tuple[str, str], Cost]] = {
    ("/sessions", "GET"): PAGE,
    ("/sessions", "DELETE"): Cost(filtered=10, filters=frozenset({"ipAddress", "all"})),
    ("/events", "GET"): Cost(per_items=100, filtered=10, filters=frozenset({"type", "userId"})),
    ("/webhooks/{webhook_id}/deliveries", "GET"): PAGE,
}


# -- the gate in front of every admin route -------------------------------------------------


class AdminGate:
    """Pure ASGI middleware: only the tenant's own API key, within its limits, gets through.

    A call takes its route's cost in tokens (ROUTE_COSTS) from its key's bucket and from its
    tenant's, and a tenant has at most ``limits.in_flight_per_tenant`` calls in progress (4),
    of which ``limits.heavy_in_flight_per_tenant`` (1) may cost HEAVY tokens or more: one more
    is refused at once, 429 with ``Retry-After: 1``, before it spends a token. No queue: a
    queued call would hold its connection and memory on the very event loop the cap is there
    to share, and a client already handles 429 and Retry-After from the rate limits. Heavy
    calls are also paced per tenant (``limits.heavy_per_tenant``, 5 a second), so that a full
    token bucket cannot be spent on heavy calls back to back.
    """

    def __init__(
        self,
        app: ASGIApp,
        *,
        api_keys: ApiKeys,
        limits: RateLimits,
        clock: Callable[[], float],
        per_key: Limiter | None = None,
        routes: Sequence[BaseRoute] = (),
        costs: Mapping[tuple[str, str], Cost] = ROUTE_COSTS,
    ) -> None:
        """``per_key``: the per-key buckets, when shared (create_app shares them with the
        console, so a key's sign-ins and clicks spend the same budget as its API calls).
        ``routes``: the routes behind the gate, whose ``costs`` it charges."""
        self.app = app
        self.api_keys = api_keys
        self.per_key = Limiter(limits.per_key, clock=clock) if per_key is None else per_key
        self.per_tenant = Limiter(limits.per_tenant, clock=clock)
        self.failed_auth = Limiter(limits.failed_auth_per_ip, clock=clock)
        self.in_flight = InFlight(limits.in_flight_per_tenant, limits.heavy_in_flight_per_tenant)
        self.heavy_per_tenant = Limiter(limits.heavy_per_tenant, clock=clock)
        self.routes = routes
        self.costs = costs

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        refusal = await self.refusal(Request(scope))
        if refusal is not None:
            await refusal(scope, receive, send)
            return
        tenant, heavy = scope[ADMIN_PLACE]
        try:
            await self.app(scope, receive, send)
        finally:
            self.in_flight.leave(tenant, heavy=heavy)

    def cost(self, request: Request) -> int:
        """The tokens the call takes: its route's declared cost, else one."""
        method = "GET" if request.method == "HEAD" else request.method
        for route in self.routes:
            if isinstance(route, Route) and route.matches(request.scope)[0] is Match.FULL:
                cost = self.costs.get((route.path, method))
                return 1 if cost is None else cost.tokens(request.query_params)
        return 1

    async def refusal(self, request: Request) -> Response | None:
        try:
            credential = bearer_credential(request)
        except inputs.AmbiguousCredential as error:
            challenge = {"WWW-Authenticate": error.challenge}
            return problem_response(error.status, str(error), challenge)
        key = None if credential is None else await self.api_keys.verify(credential)
        if key is None:
            return self.unauthenticated(request, presented=credential is not None)
        own = request.path_params["tenant"] == key.tenant
        # Another tenant's path is answered 404 before any work: one token whatever its route.
        cost = self.cost(request) if own else 1
        heavy = cost >= HEAVY
        if own and self.in_flight.full(key.tenant, heavy=heavy):
            return problem_response(
                429,
                "Too many calls of this tenant in progress; retry shortly.",
                {"Retry-After": retry_after(IN_FLIGHT_RETRY_AFTER)},
            )
        # A key is charged to its own tenant wherever it points: one tenant's flood
        # never spends another tenant's budget. Heavy calls are paced first, so one refused
        # for the pace spends no token.
        wait = (heavy and self.heavy_per_tenant.acquire(key.tenant)) or (
            self.per_key.acquire(key.id, cost) or self.per_tenant.acquire(key.tenant, cost)
        )
        if wait:
            return too_many_requests(wait)
        if not own:
            return problem_response(404, NOT_FOUND)
        # From here to the call's end (AdminGate.__call__) it holds one of the tenant's places;
        # nothing above awaited since the check, so the place is still free.
        self.in_flight.enter(key.tenant, heavy=heavy)
        request.scope[ADMIN_PLACE] = (key.tenant, heavy)
        request.scope[ADMIN_KEY] = key.id  # the actor of what this request changes
        return None

    def unauthenticated(self, request: Request, *, presented: bool) -> Response:
        if not presented:
            return problem_response(
                401,
                "An API key is required: Authorization: Bearer sk_live_...",
                {"WWW-Authenticate": "Bearer"},
            )
        # Only failures are counted, so a valid key behind the same address still works.
        client = request.client.host if request.client else "unknown"
        wait = self.failed_auth.acquire(client)
        if wait:
            return too_many_requests(wait)
        return problem_response(
            401,
            "The API key is malformed, unknown or revoked.",
            {"WWW-Authenticate": 'Bearer error="invalid_token"'},
        )


def too_many_requests(wait: float) -> Response:
    return problem_response(
        429, "Too many requests; retry later.", {"Retry-After": retry_after(wait)}
    )


# -- endpoints --------------------------------------------------------------------------------


def _store(request: Request) -> AsyncSessionStore:
    store: AsyncSessionStore = request.app.state.store
    return store


def _query(request: Request, allowed: frozenset[str] = frozenset()) -> dict[str, str]:
    """The query parameters; unknown or repeated ones are refused, so a typo (``?user_id=``)
    can never quietly widen a listing to every user."""
    names = [name for name, _ in request.query_params.multi_items()]
    for name in names:
        if name not in allowed:
            raise InvalidArgument(f"unknown query parameter {name[:32]!r}")
    if len(set(names)) < len(names):
        raise InvalidArgument("a query parameter is given more than once")
    return dict(request.query_params)


class BodyRefused(HTTPException):
    """A body over its route's limit (413), or a Content-Length that is not a number (400)."""


_DIGITS = re.compile(r"[0-9]+")


async def read_body(request: Request, limit: int) -> bytes:
    """The request's body, never more than ``limit`` bytes of it held: every route of the admin
    server that reads a body (the API's and the console's) reads it here.

    A declared ``Content-Length`` over the limit is refused before a byte is read, and a body
    that streams past the limit (chunked, or longer than declared) once it has; both 413.
    A ``Content-Length`` that is not a decimal number is 400."""
    for declared in request.headers.getlist("content-length"):
        declared = declared.strip()
        if not _DIGITS.fullmatch(declared):
            raise BodyRefused(400, "Content-Length must be a whole number of bytes.")
        digits = declared.lstrip("0")
        if len(digits) > len(str(limit)) or int(digits or "0") > limit:
            raise BodyRefused(413, _too_large(limit))
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit:
            raise BodyRefused(413, _too_large(limit))
    return bytes(body)


def _too_large(limit: int) -> str:
    return f"The body is larger than the {limit} bytes this endpoint takes."


def _actor(request: Request) -> str:
    """Who changes sessions through this request, as their events record it."""
    return f"admin:{request.scope[ADMIN_KEY]}"


def _user(request: Request) -> tuple[str, int]:
    _query(request)
    return request.path_params["tenant"], inputs.user_id_text(request.path_params["user_id"])


class UserSessions(HTTPEndpoint):
    async def get(self, request: Request) -> Response:
        tenant, user_id = _user(request)
        sessions = await _store(request).list_user_sessions(tenant, user_id)
        return JSONResponse(Page(sessions, total_count=len(sessions)).to_dict())

    async def delete(self, request: Request) -> Response:
        tenant, user_id = _user(request)
        revoked = await _store(request).revoke_all(tenant, user_id, actor=_actor(request))
        return JSONResponse({"revoked": revoked})


class UserSession(HTTPEndpoint):
    async def delete(self, request: Request) -> Response:
        tenant, user_id = _user(request)
        session_id = request.path_params["session_id"]
        # Not even a session id: certainly none of this user's, so no lookup is needed.
        well_formed = tokens.SESSION_ID.fullmatch(session_id) is not None
        revoked = well_formed and await _store(request).revoke(
            tenant, user_id, session_id, actor=_actor(request)
        )
        if not revoked:
            return problem_response(404, "This user has no such active session.")
        return JSONResponse({"id": session_id, "revoked": True})


class TenantSessions(HTTPEndpoint):
    PARAMETERS = frozenset({"userId", "ipAddress", "limit", "cursor"})
    BULK_PARAMETERS = frozenset({"userId", "ipAddress", "all"})

    async def get(self, request: Request) -> Response:
        params = _query(request, self.PARAMETERS)
        user_id = params.get("userId")
        limit = params.get("limit", str(inputs.DEFAULT_LIMIT))
        page = await _store(request).list_sessions(
            request.path_params["tenant"],
            user_id=None if user_id is None else inputs.user_id_text(user_id),
            ip_address=params.get("ipAddress"),
            # Only canonical decimals; inputs.limit refuses the None and says why.
            limit=inputs.limit(int(limit) if _LIMIT_TEXT.fullmatch(limit) else None),
            cursor=params.get("cursor"),
        )
        return JSONResponse(page.to_dict())

    async def delete(self, request: Request) -> Response:
        """Incident response: every session from an IP (or of a user) in one call."""
        params = _query(request, self.BULK_PARAMETERS)
        everything = params.get("all")
        if everything not in (None, "true"):
            raise InvalidArgument("all must be 'true' when given")
        user_id = params.get("userId")
        ip_address = params.get("ipAddress")
        if user_id is None and ip_address is None and everything is None:
            raise InvalidArgument(
                "give ipAddress or userId; revoking every session of the tenant needs all=true"
            )
        revoked = await _store(request).revoke_sessions(
            request.path_params["tenant"],
            user_id=None if user_id is None else inputs.user_id_text(user_id),
            ip_address=ip_address,
            all_sessions=everything == "true",
            actor=_actor(request),
        )
        return JSONResponse({"revoked": revoked})


class TenantEvents(HTTPEndpoint):
    PARAMETERS = frozenset({"after", "type", "userId", "limit"})

    async def get(self, request: Request) -> Response:
        """A page reads at most events.PAGE_BUDGET stream entries: ``hasMore`` with fewer
        items than ``limit`` (even none) means the budget ran out on events the filter passed
        over; ``nextCursor`` goes on from there. ``hasMore`` false: nothing more stored now."""
        params = _query(request, self.PARAMETERS)
        store = _store(request)
        if not await store.events_enabled():
            return problem_response(
                404,
                "This deployment records no session events; turn them on with "
                "`sessionstore events on` or `serve --events`.",
            )
        user_id = params.get("userId")
        kinds = params.get("type")
        limit = params.get("limit", str(inputs.DEFAULT_LIMIT))
        page = await store.events(
            request.path_params["tenant"],
            after=params.get("after"),
            limit=inputs.limit(int(limit) if _LIMIT_TEXT.fullmatch(limit) else None),
            types=None if kinds is None else kinds.split(","),
            user_id=None if user_id is None else inputs.user_id_text(user_id),
        )
        return JSONResponse(page.to_dict())


async def openapi_document(request: Request) -> Response:
    return JSONResponse(openapi.document())


async def tenant_openapi_document(request: Request) -> Response:
    try:
        tenant = inputs.tenant(request.path_params["tenant"])
    except InvalidTenant:
        raise HTTPException(404) from None
    return JSONResponse(openapi.document(tenant))


# -- errors -----------------------------------------------------------------------------------


async def invalid_input(request: Request, error: Exception) -> Response:
    return problem_response(422, str(error))


async def store_unavailable(request: Request, error: Exception) -> Response:
    log.warning("%s", error)
    return problem_response(
        503,
        "The session store is unavailable; retry shortly.",
        {"Retry-After": UNAVAILABLE_RETRY_AFTER},
    )


async def http_error(request: Request, error: Exception) -> Response:
    assert isinstance(error, HTTPException)  # registered for HTTPException only
    detail = NOT_FOUND if error.status_code == 404 else error.detail
    return problem_response(error.status_code, detail, dict(error.headers or {}))


async def server_error(request: Request, error: Exception) -> Response:
    # The traceback goes to the server log (uvicorn), never to the client.
    return problem_response(500, "Internal server error.")


# -- logging ----------------------------------------------------------------------------------


# Route templates, for metric labels and log fields: a raw path would make a label per user.
_ROUTES = [
    (re.compile(pattern), template)
    for pattern, template in [
        (
            r"/t/[^/]+/api/v1/admin/users/[^/]+/sessions",
            "/t/{tenant}/api/v1/admin/users/{user_id}/sessions",
        ),
        (
            r"/t/[^/]+/api/v1/admin/users/[^/]+/sessions/[^/]+",
            "/t/{tenant}/api/v1/admin/users/{user_id}/sessions/{session_id}",
        ),
        (r"/t/[^/]+/api/v1/admin/sessions", "/t/{tenant}/api/v1/admin/sessions"),
        (r"/t/[^/]+/api/v1/admin/events", "/t/{tenant}/api/v1/admin/events"),
        (r"/t/[^/]+/api/v1/admin/webhooks", "/t/{tenant}/api/v1/admin/webhooks"),
        (
            r"/t/[^/]+/api/v1/admin/webhooks/[^/]+",
            "/t/{tenant}/api/v1/admin/webhooks/{webhook_id}",
        ),
        (
            r"/t/[^/]+/api/v1/admin/webhooks/[^/]+/deliveries",
            "/t/{tenant}/api/v1/admin/webhooks/{webhook_id}/deliveries",
        ),
        (r"/t/[^/]+/api/v1/openapi\.json", "/t/{tenant}/api/v1/openapi.json"),
        (r"/openapi\.json", "/openapi.json"),
        (r"/console(/.*)?", "/console"),
    ]
]


def route_of(path: str) -> str:
    """The route template a path matches, or ``other``."""
    for pattern, template in _ROUTES:
        if pattern.fullmatch(path):
            return template
    return "other"


class AccessLog:
    """One line per request (method, path still percent-encoded, status, milliseconds, as
    fields too for JSON logs), and the request counted in ``metrics`` when given.

    Nothing of the request goes into either unbounded: the route is a template or ``other``,
    the method a known one or ``other`` and the status an HTTP status or ``other``
    (``ApiMetrics.method_label``, ``status_label``), the logged path printable and short
    (``logs.logged_path``). A client can add neither series nor long lines.

    Every answer also gets ``Cache-Control: no-store`` (it holds IP addresses and user agents
    of live sessions, which no shared or browser cache should keep)."""

    def __init__(self, app: ASGIApp, metrics: ApiMetrics | None = None) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def send_noting_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                headers = MutableHeaders(scope=message)
                headers.setdefault("cache-control", "no-store")
            await send(message)

        try:
            await self.app(scope, receive, send_noting_status)
        finally:
            elapsed = time.perf_counter() - started
            path = logged_path(scope.get("raw_path") or scope["path"].encode())
            route, method = route_of(scope["path"]), ApiMetrics.method_label(scope["method"])
            if self.metrics is not None:
                self.metrics.observe(route, method, status, elapsed)
            shown = ApiMetrics.status_label(status)
            fields = {
                "method": method,
                "route": route,
                "path": path,
                "status": status if shown != ApiMetrics.OTHER else shown,
                "duration_ms": round(elapsed * 1000, 2),
            }
            log.info("%s %s %s %.1fms", method, path, shown, elapsed * 1000, extra=fields)


# -- the app ----------------------------------------------------------------------------------


def _closing(
    store: AsyncSessionStore,
) -> Callable[[Starlette], AbstractAsyncContextManager[None]]:
    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        yield
        await store.aclose()

    return lifespan


def create_app(
    store: AsyncSessionStore,
    *,
    limits: RateLimits | None = None,
    clock: Callable[[], float] = time.monotonic,
    close_store: bool = False,
    metrics: ApiMetrics | None = None,
    allow_private_destinations: bool = False,
) -> Starlette:
    """The admin API over ``store``; API keys live in the same Redis, under the same prefix.

    With ``close_store``, the app closes the store when the server shuts it down; with
    ``metrics``, every request is counted by route template and status. Webhooks may be
    registered at private, loopback and link-local addresses only with
    ``allow_private_destinations``.
    """
    from .webhooks import routes as webhook_routes  # here: that module imports this one

    admin = Router(
        [
            Route("/users/{user_id}/sessions", UserSessions),
            Route("/users/{user_id}/sessions/{session_id}", UserSession),
            Route("/sessions", TenantSessions),
            Route("/events", TenantEvents),
            *webhook_routes(),
        ],
        redirect_slashes=False,
    )
    limits = limits or RateLimits()
    # One bucket per API key for the API and the console: every call, sign-in and click of a
    # key spends the same budget.
    per_key = Limiter(limits.per_key, clock=clock)
    gate = Middleware(
        AdminGate,
        api_keys=ApiKeys.of(store),
        limits=limits,
        clock=clock,
        per_key=per_key,
        routes=admin.routes,
    )
    tenant = Router(
        [
            Route("/openapi.json", tenant_openapi_document),
            Mount("/admin", app=admin, middleware=[gate]),
        ],
        redirect_slashes=False,
    )
    app = Starlette(
        routes=[
            Route("/openapi.json", openapi_document),
            Mount("/t/{tenant}/api/v1", app=tenant),
            # the admin console, /console
            *console.routes(store, limits=limits, clock=clock, per_key=per_key),
        ],
        middleware=[Middleware(AccessLog, metrics=metrics)],
        exception_handlers={
            HTTPException: http_error,
            InvalidArgument: invalid_input,
            StoreUnavailable: store_unavailable,
            Exception: server_error,
        },
        lifespan=_closing(store) if close_store else None,
    )
    app.router.redirect_slashes = False
    app.state.store = store
    app.state.allow_private_destinations = allow_private_destinations
    return app
