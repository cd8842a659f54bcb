"""One session: its own page (every field, its events, revoke), and the confirmation that
comes before revoking it, which names whose it is, the device, the IP and the last activity."""

from __future__ import annotations

from typing import Any, Final

from starlette.requests import Request
from starlette.responses import Response

from ...._core import tokens
from ....errors import InvalidCursor
from ....model import Session
from ..common import ConsoleContext, ConsoleError, PageRoute, back_path, local
from .events import STALE_LINK

__all__ = ["SESSION_EVENTS", "ROUTES", "revoke_page", "session_page"]

# A session has a handful of events (created, MFA verified, its end): one page holds them.
SESSION_EVENTS: Final = 50


def _session_id(request: Request) -> str:
    """The session id of the path; anything else is no page (404)."""
    session_id = str(request.path_params["session_id"])
    if not tokens.SESSION_ID.fullmatch(session_id):
        raise ConsoleError(404, "No such session", "That address names no session.")
    return session_id


async def session_page(console: ConsoleContext, request: Request) -> Response:
    """A session's fields while it is live, and its events, newest first, live or not (from
    ``before`` on, when its page stopped at its budget); 404 when it is neither live nor has
    any event."""
    signed_in = await console.signed_in(request)
    session_id = _session_id(request)
    before = request.query_params.get("before") or None
    live = await console.store.get(signed_in.tenant, session_id)
    context: dict[str, Any] = {
        "live": live,
        "session_id": session_id,
        "page": None,
        "problem": None,
        "before": before,
        "back": local(f"/sessions/{session_id}"),
    }
    if await console.store.events_enabled():
        try:
            context["page"] = await console.store.events(
                signed_in.tenant,
                session_id=session_id,
                order="desc",
                before=before,
                limit=SESSION_EVENTS,
            )
        except InvalidCursor:
            context["problem"] = STALE_LINK
            return await console.page(request, signed_in, "session.html", context, status=422)
    if live is None and (context["page"] is None or not context["page"].data) and not before:
        raise ConsoleError(
            404,
            "No such session",
            f"Session {session_id} is not live, and no event of it is kept: it ended longer "
            "ago than events are kept, or never existed.",
        )
    return await console.page(request, signed_in, "session.html", context)


async def revoke_page(console: ConsoleContext, request: Request) -> Response:
    """The confirmation before revoking one session: whose, which device, from where, last
    active when; its form revokes (sessions.revoke_one), Cancel goes back to ``back``."""
    signed_in = await console.signed_in(request)
    session_id = _session_id(request)
    back = back_path(request.query_params.get("back"), f"/sessions/{session_id}")
    live: Session | None = await console.store.get(signed_in.tenant, session_id)
    context = {"live": live, "session_id": session_id, "back": back}
    return await console.page(
        request, signed_in, "confirm_session.html", context, status=200 if live else 404
    )


ROUTES: Final = (
    PageRoute("GET", "/sessions/{session_id}", session_page),
    PageRoute("GET", "/sessions/{session_id}/revoke", revoke_page),
)
