"""The admin console: sign in with a tenant's API key, list and revoke its sessions.

Served by ``create_app`` at ``/console`` (so by ``sessionstore serve``): server-side pages
(Jinja2) with plain forms, a stylesheet and one small script, all shipped in this package (no
CDN, no web fonts). ``auth`` holds console sessions, cookies and the cross-site checks;
``app`` the console's app and headers, ``common`` what its pages share, ``pages/`` one
module per page; ``text`` how times, devices and errors are put into words.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.types import ASGIApp, Receive, Scope, Send

from ...aio import AsyncSessionStore
from ..ratelimit import Limiter, RateLimits

if TYPE_CHECKING:
    from .app import Console

__all__ = ["Console", "routes"]

PATH = "/console"


def __getattr__(name: str) -> object:
    if name == "Console":
        from .app import Console

        return Console
    raise AttributeError(name)


async def _to_console(request: Request) -> Response:
    return RedirectResponse(f"{request.scope.get('root_path', '')}{PATH}/", status_code=308)


class _BuiltOnFirstUse:
    """The console's app, built at its first request: a server whose console nobody opens
    never imports Jinja2 nor holds the templates."""

    def __init__(self, build: Callable[[], ASGIApp]) -> None:
        self._build = build
        self._app: ASGIApp | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if self._app is None:
            self._app = self._build()
        await self._app(scope, receive, send)


def routes(
    store: AsyncSessionStore,
    *,
    limits: RateLimits | None = None,
    clock: Callable[[], float] = time.monotonic,
    per_key: Limiter | None = None,
) -> list[BaseRoute]:
    """The console's routes for an app over ``store``: ``/console`` and everything under it.
    ``per_key``: the admin API's per-key buckets, for the console to spend too."""

    def build() -> ASGIApp:
        from .app import Console

        return Console(store, limits=limits, clock=clock, per_key=per_key).app()

    return [Route(PATH, _to_console), Mount(PATH, app=_BuiltOnFirstUse(build))]
