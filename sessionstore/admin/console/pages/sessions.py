"""The tenant's sessions, a page at a time, by user or IP address; and revoking one of them."""

from __future__ import annotations

import logging
import re
from typing import Any, Final

from starlette.requests import Request
from starlette.responses import Response

from ...._core import inputs
from ....errors import InvalidArgument, InvalidCursor
from ..common import (
    ConsoleContext,
    ConsoleError,
    PageRoute,
    actor,
    ip_of,
    local,
    redirect,
    user_id_of,
)

__all__ = ["ROUTES", "revoke_one", "tenant_sessions"]

log = logging.getLogger("sessionstore.console")

PAGE_SIZE: Final = 25
# A place to go back to after an action: a path of this console, never another site's.
_BACK: Final = re.compile(r"/(?![/\\])[^\s\\]{0,1000}")


async def tenant_sessions(console: ConsoleContext, request: Request) -> Response:
    """The tenant's live sessions, PAGE_SIZE at a time, optionally of one user (``user``)
    or from one address (``ip``); 422 with the form again for a bad filter or a stale cursor."""
    session = await console.signed_in(request)
    user_text = request.query_params.get("user", "").strip()
    ip_text = request.query_params.get("ip", "").strip()
    cursor = request.query_params.get("cursor") or None
    errors: dict[str, str] = {}
    user_id = user_id_of(user_text, errors, "user") if user_text else None
    ip = ip_of(ip_text, errors, "ip") if ip_text else None
    context: dict[str, Any] = {
        "user": user_text,
        "ip": ip_text,
        "filtered_ip": ip,
        "cursor": cursor,
        "back": local("/sessions", user=user_text, ip=ip_text, cursor=cursor),
        "errors": errors,
        "page": None,
        "problem": None,
    }
    if errors:
        return await console.page(request, session, "sessions.html", context, status=422)
    try:
        context["page"] = await console.store.list_sessions(
            session.tenant, user_id=user_id, ip_address=ip, limit=PAGE_SIZE, cursor=cursor
        )
    except InvalidCursor:
        context["problem"] = "That page link is no longer valid: start again from the first page."
        return await console.page(request, session, "sessions.html", context, status=422)
    return await console.page(request, session, "sessions.html", context)


async def revoke_one(console: ConsoleContext, request: Request) -> Response:
    """Revoke one session (a form of this console): 303 back to the page it came from."""
    session, form = await console.authorised_post(request)
    try:
        user_id = inputs.user_id_text(form.get("user_id", ""))
        session_id = inputs.session_id(form.get("session_id", ""))
    except InvalidArgument:
        raise ConsoleError(
            400, "Not a session", "That form did not name a session to revoke."
        ) from None
    revoked = await console.store.revoke(session.tenant, user_id, session_id, actor=actor(session))
    log.info(
        "console: revoke %s of user %d (tenant %s, key %s): %s",
        session_id, user_id, session.tenant, session.key_id, revoked,
    )  # fmt: skip
    await console.sessions.set_flash(
        session,
        f"Revoked session {session_id} of user {user_id}."
        if revoked
        else f"Session {session_id} had already ended: nothing to revoke.",
    )
    back = form.get("back", "")
    return redirect(request, back if _BACK.fullmatch(back) else "/sessions")


ROUTES: Final = (
    PageRoute("GET", "/sessions", tenant_sessions),
    PageRoute("POST", "/sessions/revoke", revoke_one),
)
