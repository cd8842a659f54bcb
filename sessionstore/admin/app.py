"""The admin REST API: a Starlette app over an AsyncSessionStore.

A request to ``/t/{tenant}/api/v1/admin/...`` meets, in this order: the API key (401), the
rate limits (429), the tenant (404 for any tenant but the key's own, before anything about
that tenant is read or validated), then the endpoint's input checks (422) and the store (503
when Redis cannot be reached). Every error is ``application/problem+json``.

The admin operations, their costs and their metric labels all come from routes.OPERATIONS;
the handlers are in sessions.py and webhooks.py.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from contextlib import AbstractAsyncContextManager, AsyncExitStack, asynccontextmanager
from typing import Final

from starlette.applications import Starlette
from starlette.datastructures import MutableHeaders
from starlette.endpoints import HTTPEndpoint
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Match, Mount, Route, Router, compile_path
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from .._core import inputs
from .._logs import logged_path
from ..aio import AsyncSessionStore
from ..errors import InvalidArgument, InvalidTenant, StoreUnavailable
from ..http.credentials import AmbiguousCredential, bearer_token, joined
from ..metrics import ApiMetrics
from . import console, openapi
from .apikeys import ApiKeys
from .endpoint import ADMIN_KEY, problem_response, strict_query
from .ratelimit import HEAVY, Cost, InFlight, Limiter, RateLimits, retry_after
from .routes import ADMIN, API_BASE, DOCUMENT, OPERATIONS, Operation

__all__ = [
    "ROUTE_COSTS",
    "AccessLog",
    "AdminGate",
    "Companion",
    "admin_routes",
    "bearer_credential",
    "create_app",
    "route_of",
]

log = logging.getLogger("sessionstore.api")

NOT_FOUND = "No such resource."
ADMIN_PLACE = "sessionstore.admin_place"  # (tenant, heavy) of a call that holds a place
IN_FLIGHT_RETRY_AFTER = 1.0  # seconds: a call of the same tenant is likely done by then
UNAVAILABLE_RETRY_AFTER = "1"


def bearer_credential(request: Request) -> str | None:
    """The request's bearer credential, by the rule the session middlewares share
    (http.credentials): every Authorization field joined, and more than one credential is
    AmbiguousCredential."""
    return bearer_token(joined(request.headers.getlist("authorization"), ", "))


# -- what a call costs ------------------------------------------------------------------------

# Rate-limit tokens of one call, by route (as the admin router names it) and method, from the
# route table; every other call costs one token.
ROUTE_COSTS: Final[Mapping[tuple[str, str], Cost]] = {
    (operation.path, operation.method): operation.cost
    for operation in OPERATIONS
    if operation.cost is not None
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
        """The answer that stops this request before its handler (401, 400, 404, 429), or None."""
        try:
            credential = bearer_credential(request)
        except AmbiguousCredential as error:
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
        """401: no key, or one that is not a live key (``presented``), with its challenge."""
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
    """429 with the seconds to wait before the bucket holds the call's tokens again."""
    return problem_response(
        429, "Too many requests; retry later.", {"Retry-After": retry_after(wait)}
    )


# -- endpoints --------------------------------------------------------------------------------


def admin_routes(operations: Sequence[Operation] = OPERATIONS) -> list[Route]:
    """The routes of ``operations``, relative to ``ADMIN_BASE``: one per path, answering each
    of its methods (HEAD as GET) and any other with 405 and ``Allow``."""
    by_path: dict[str, dict[str, Operation]] = {}
    for operation in operations:
        by_path.setdefault(operation.path, {})[operation.method.lower()] = operation
    return [Route(path, _endpoint(path, methods)) for path, methods in by_path.items()]


def _endpoint(path: str, methods: Mapping[str, Operation]) -> type[HTTPEndpoint]:
    """An HTTPEndpoint with a method per operation: HTTPEndpoint answers HEAD as GET, and any
    other method with 405 and ``Allow``, as the hand-written endpoints did."""
    handlers = {method: staticmethod(_checked(op)) for method, op in methods.items()}
    return type(f"AdminEndpoint({path})", (HTTPEndpoint,), handlers)


def _checked(operation: Operation) -> Callable[[Request], Awaitable[Response]]:
    """The operation's handler, given the query once it holds only the declared parameters."""
    allowed = frozenset(operation.query)

    async def endpoint(request: Request) -> Response:
        return await operation.handler(request, strict_query(request, allowed))

    return endpoint


async def openapi_document(request: Request) -> Response:
    """The whole API's OpenAPI document, every tenant's paths; no key needed."""
    return JSONResponse(openapi.document())


async def tenant_openapi_document(request: Request) -> Response:
    """The API as one tenant sees it; 404 for a path segment that is no tenant."""
    try:
        tenant = inputs.tenant(request.path_params["tenant"])
    except InvalidTenant:
        raise HTTPException(404) from None
    return JSONResponse(openapi.document(tenant))


# -- errors -----------------------------------------------------------------------------------


async def invalid_input(request: Request, error: Exception) -> Response:
    """422 for an argument the store refused, in its own words."""
    return problem_response(422, str(error))


async def store_unavailable(request: Request, error: Exception) -> Response:
    """503 with Retry-After: Redis did not answer, so nothing was read or changed."""
    log.warning("%s", error)
    return problem_response(
        503,
        "The session store is unavailable; retry shortly.",
        {"Retry-After": UNAVAILABLE_RETRY_AFTER},
    )


async def http_error(request: Request, error: Exception) -> Response:
    """Starlette's own refusals (404, 405) as problem+json."""
    assert isinstance(error, HTTPException)  # registered for HTTPException only
    detail = NOT_FOUND if error.status_code == 404 else error.detail
    return problem_response(error.status_code, detail, dict(error.headers or {}))


async def server_error(request: Request, error: Exception) -> Response:
    """500 as problem+json, with nothing of the error in it."""
    # The traceback goes to the server log (uvicorn), never to the client.
    return problem_response(500, "Internal server error.")


# -- logging ----------------------------------------------------------------------------------


def _labels() -> list[tuple[re.Pattern[str], str]]:
    """Every route the app serves, as the template that labels its metrics and log lines (a
    raw path would make a label per user): each admin operation's (routes.OPERATIONS), the two
    documents', and one for the whole console."""
    templates = [*(op.template for op in OPERATIONS), API_BASE + DOCUMENT, DOCUMENT]
    labels = [(compile_path(template)[0], template) for template in dict.fromkeys(templates)]
    for console_path in (console.PATH, console.PATH + "/{rest:path}"):
        labels.append((compile_path(console_path)[0], console.PATH))
    return labels


_LABELS: Final = _labels()


def route_of(path: str) -> str:
    """The route template a path matches, or ``other``."""
    for pattern, template in _LABELS:
        if pattern.fullmatch(path):
            return template
    return ApiMetrics.OTHER


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


# What runs beside the app (create_app's ``alongside``): a new async context manager per run.
Companion = Callable[[], AbstractAsyncContextManager[object]]


def _lifespan(
    store: AsyncSessionStore, *, close_store: bool, alongside: Sequence[Companion]
) -> Callable[[Starlette], AbstractAsyncContextManager[None]] | None:
    """Enter each of ``alongside`` in order once the app has started; on shutdown leave them
    in reverse, then close the store (``close_store``): what runs beside the app still has
    its store while it stops."""
    if not close_store and not alongside:
        return None

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        async with AsyncExitStack() as running:
            if close_store:
                running.push_async_callback(store.aclose)
            for companion in alongside:
                await running.enter_async_context(companion())
            yield

    return lifespan


def create_app(
    store: AsyncSessionStore,
    *,
    limits: RateLimits | None = None,
    clock: Callable[[], float] = time.monotonic,
    close_store: bool = False,
    metrics: ApiMetrics | None = None,
    allow_private_destinations: bool = False,
    allow_metadata_destinations: bool = False,
    alongside: Sequence[Companion] = (),
) -> Starlette:
    """The admin API over ``store``; API keys live in the same Redis, under the same prefix.

    With ``close_store``, the app closes the store when the server shuts it down; with
    ``metrics``, every request is counted by route template and status. Webhooks may be
    registered at private and loopback addresses only with ``allow_private_destinations``,
    at link-local and cloud metadata ones only with ``allow_metadata_destinations``.

    ``alongside``: what runs while the app serves (``sessionstore serve``: the webhook
    deliverer and the sweep), each a factory of an async context manager, entered in order
    after the app's start-up and left in reverse on shutdown, before the store is closed.
    """
    admin = Router(admin_routes(), redirect_slashes=False)
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
            Route(DOCUMENT, tenant_openapi_document),
            Mount(ADMIN, app=admin, middleware=[gate]),
        ],
        redirect_slashes=False,
    )
    app = Starlette(
        routes=[
            Route(DOCUMENT, openapi_document),
            Mount(API_BASE, app=tenant),
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
        lifespan=_lifespan(store, close_store=close_store, alongside=alongside),
    )
    app.router.redirect_slashes = False
    app.state.store = store
    app.state.allow_private_destinations = allow_private_destinations
    app.state.allow_metadata_destinations = allow_metadata_destinations
    return app
