"""Every refusal and failure of the console as a page in words (its exception handlers)."""

from __future__ import annotations

import logging
from typing import Final

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response

from ..common import ConsoleContext, ConsoleError, redirect

__all__ = [
    "console_error",
    "http_error",
    "invalid_argument",
    "server_error",
    "sign_in_required",
    "store_unavailable",
]

log = logging.getLogger("sessionstore.console")


async def console_error(console: ConsoleContext, request: Request, error: Exception) -> Response:
    """A ConsoleError: its page, status and headers."""
    assert isinstance(error, ConsoleError)
    return console.error_page(request, error.status, error.title, error.message, error.headers)


async def sign_in_required(console: ConsoleContext, request: Request, error: Exception) -> Response:
    """A signed-in page asked for without a console session: to the sign-in page."""
    return redirect(request, "/signin")


async def store_unavailable(
    console: ConsoleContext, request: Request, error: Exception
) -> Response:
    """Redis cannot be reached: 503, in words, with Retry-After."""
    log.warning("console: %s", error)
    return console.error_page(
        request,
        503,
        "The session store is unavailable",
        "The console cannot reach Redis right now, so it can neither show nor change "
        "sessions. Try again in a moment; if you had just asked to revoke something, "
        "check afterwards whether it was done.",
        {"Retry-After": "1"},
    )


async def invalid_argument(console: ConsoleContext, request: Request, error: Exception) -> Response:
    """An input the store refused: 422, with its reason."""
    return console.error_page(request, 422, "That request cannot be answered", str(error))


async def http_error(console: ConsoleContext, request: Request, error: Exception) -> Response:
    """No such page (404), not this method (405, with Allow), or another refusal."""
    assert isinstance(error, HTTPException)
    if error.status_code == 404:
        return console.error_page(
            request, 404, "No such page", "The console has no page at this address."
        )
    if error.status_code == 405:
        return console.error_page(
            request,
            405,
            "Not here",
            "This page does not take that kind of request.",
            dict(error.headers or {}),
        )
    return console.error_page(request, error.status_code, "Refused", str(error.detail))


async def server_error(console: ConsoleContext, request: Request, error: Exception) -> Response:
    """Anything unexpected: 500, a fixed page."""
    # The traceback goes to the server log; the page is fixed text, with no template that
    # could fail in turn.
    return HTMLResponse(_SERVER_ERROR, status_code=500)


_SERVER_ERROR: Final = (
    '<!doctype html><html lang="en"><head><meta charset="utf-8">'
    "<title>Server error</title></head><body><h1>Something went wrong on the server</h1>"
    "<p>The console hit an unexpected error; it has been logged. Try again, or go back."
    "</p></body></html>"
)
