"""The console's app: its pages (``pages/``), assets and headers, over an AsyncSessionStore.

Server-side HTML (Jinja2) over the same store as the API. Every page is a plain link or form
that works without JavaScript; ``static/console.js`` only refreshes relative times. Every
state-changing action is a POST that must come from this console (``auth.cross_site``) and
carry the console session's CSRF token (common.ConsoleContext.authorised_post); it answers 303
to a page that says what was done. Every revocation is the form of a confirmation page
(one session, a user's, an IP address's), which says what will end. Every answer carries
the headers of ``SECURITY_HEADERS``.
"""

from __future__ import annotations

from functools import partial
from typing import Final

from starlette.applications import Starlette
from starlette.datastructures import MutableHeaders
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ...errors import InvalidArgument, StoreUnavailable
from .common import ConsoleContext, ConsoleError, PageRoute, SignInRequired
from .pages import errors, events, revoke_ip, session, sessions, signin, users

__all__ = ["CONTENT_SECURITY_POLICY", "PAGES", "SECURITY_HEADERS", "Console", "SecurityHeaders"]

# Every page, in the order the router tries them.
PAGES: Final[tuple[PageRoute, ...]] = (
    *signin.ROUTES,
    *sessions.ROUTES,
    *session.ROUTES,
    *users.ROUTES,
    *revoke_ip.ROUTES,
    *events.ROUTES,
)

CONTENT_SECURITY_POLICY: Final = "; ".join(
    [
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self'",
        "object-src 'none'",
        "base-uri 'none'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    ]
)
SECURITY_HEADERS: Final = (
    ("content-security-policy", CONTENT_SECURITY_POLICY),
    ("cache-control", "no-store"),
    ("x-content-type-options", "nosniff"),
    ("referrer-policy", "same-origin"),
    ("x-frame-options", "DENY"),
    ("cross-origin-opener-policy", "same-origin"),
    ("cross-origin-resource-policy", "same-origin"),
    ("permissions-policy", "camera=(), microphone=(), geolocation=()"),
)


class SecurityHeaders:
    """Pure ASGI middleware: the console's headers on every answer, pages, assets and errors."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                for name, value in SECURITY_HEADERS:
                    headers[name] = value
            await send(message)

        await self.app(scope, receive, send_with_headers)


class Console(ConsoleContext):
    """The console over ``store``: build with ``app()`` and mount it (``routes()`` does)."""

    def app(self) -> Starlette:
        """The console's Starlette app: every page of ``PAGES``, the static assets, the
        security headers on every answer, and every error as a page in words."""
        return Starlette(
            routes=[
                *(
                    Route(route.path, partial(route.page, self), methods=[route.method])
                    for route in PAGES
                ),
                Mount(
                    "/static", app=StaticFiles(packages=[("sessionstore.admin.console", "static")])
                ),
            ],
            middleware=[Middleware(SecurityHeaders)],
            exception_handlers={
                ConsoleError: partial(errors.console_error, self),
                SignInRequired: partial(errors.sign_in_required, self),
                StoreUnavailable: partial(errors.store_unavailable, self),
                InvalidArgument: partial(errors.invalid_argument, self),
                HTTPException: partial(errors.http_error, self),
                Exception: partial(errors.server_error, self),
            },
        )
