"""What every admin endpoint is written with: problem answers, the query, the body, the store.

The admin API's handlers (``sessions``, ``webhooks``), its gate (``app``) and the console all
import these from here, and this module imports none of them: no import cycle among them.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable, Mapping
from typing import Final

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response

from .._core import inputs
from ..aio import AsyncSessionStore
from ..errors import InvalidArgument
from ..http.problems import CONTENT_TYPE, problem_bytes

__all__ = [
    "ADMIN_KEY",
    "BodyRefused",
    "Handler",
    "actor",
    "page_limit",
    "problem_response",
    "read_body",
    "store_of",
    "strict_query",
]

# The id of the API key a request was let in with, set by the gate (app.AdminGate).
ADMIN_KEY: Final = "sessionstore.admin_key"

# An operation's handler: the request, and its query already checked against the parameters
# the operation declares (routes.Operation.query).
Handler = Callable[[Request, Mapping[str, str]], Awaitable[Response]]

_LIMIT_TEXT: Final = re.compile(r"[1-9][0-9]{0,3}")
_DIGITS: Final = re.compile(r"[0-9]+")


def problem_response(status: int, detail: str, headers: dict[str, str] | None = None) -> Response:
    """An ``application/problem+json`` answer: ``status``, its phrase, and ``detail``."""
    return Response(
        problem_bytes(status, detail), status_code=status, media_type=CONTENT_TYPE, headers=headers
    )


def store_of(request: Request) -> AsyncSessionStore:
    """The store the app was created over (create_app puts it in the app's state)."""
    store: AsyncSessionStore = request.app.state.store
    return store


def strict_query(request: Request, allowed: frozenset[str] = frozenset()) -> dict[str, str]:
    """The query parameters; unknown or repeated ones are refused (InvalidArgument, 422), so a
    typo (``?user_id=``) can never quietly widen a listing to every user."""
    names = [name for name, _ in request.query_params.multi_items()]
    for name in names:
        if name not in allowed:
            raise InvalidArgument(f"unknown query parameter {name[:32]!r}")
    if len(set(names)) < len(names):
        raise InvalidArgument("a query parameter is given more than once")
    return dict(request.query_params)


def page_limit(query: Mapping[str, str]) -> int:
    """The ``limit`` of a page (the default when absent); InvalidArgument unless it is a
    canonical decimal within the bounds (``inputs.limit`` refuses the None and says why)."""
    text = query.get("limit", str(inputs.DEFAULT_LIMIT))
    return inputs.limit(int(text) if _LIMIT_TEXT.fullmatch(text) else None)


def actor(request: Request) -> str:
    """Who changes sessions through this request, as their events record it: its API key."""
    return f"admin:{request.scope[ADMIN_KEY]}"


class BodyRefused(HTTPException):
    """A body over its route's limit (413), or a Content-Length that is not a number (400)."""


async def read_body(request: Request, limit: int) -> bytes:
    """The request's body, never more than ``limit`` bytes of it held: every route of the admin
    server that reads a body (the API's and the console's) reads it here.

    A declared ``Content-Length`` over the limit is refused before a byte is read, and a body
    that streams past the limit (chunked, or longer than declared) once it has; both 413
    (BodyRefused). A ``Content-Length`` that is not a decimal number is 400."""
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
