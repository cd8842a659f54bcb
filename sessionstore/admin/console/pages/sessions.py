"""The tenant's sessions, a page at a time, by user or IP address; and revoking one of them
(the form of its confirmation page, session.py)."""

from __future__ import annotations

import logging
from dataclasses import dataclass
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
    back_path,
    ip_of,
    link,
    local,
    redirect,
    user_id_of,
)

__all__ = ["MAX_TRAIL", "PAGE_SIZE", "ROUTES", "Pages", "pages", "revoke_one", "tenant_sessions"]

log = logging.getLogger("sessionstore.console")

PAGE_SIZE: Final = 25
# The listing's cursors only go forward, so a page's address carries the cursors of the
# pages before it (``prev``, "."-separated: a cursor is base64url), for its "Previous page";
# the last MAX_TRAIL of them, past which "Previous page" leads to the first.
MAX_TRAIL: Final = 20
_TRAIL_SEPARATOR: Final = "."


@dataclass(frozen=True, slots=True)
class Pages:
    """The links around a page of the list (None where there is nowhere to go)."""

    first: str | None
    previous: str | None
    next: str | None


def pages(
    request: Request,
    filters: dict[str, str],
    cursor: str | None,
    trail: list[str],
    after: str | None,
) -> Pages:
    """First, previous and next of the page at ``cursor``, reached through ``trail``; the
    next page starts at ``after`` (the page's next cursor)."""

    def to(at: str | None, behind: list[str]) -> str:
        prev = _TRAIL_SEPARATOR.join(behind[-MAX_TRAIL:]) if at else None
        return link(request, "/sessions", **filters, cursor=at, prev=prev)

    if cursor is None:
        return Pages(None, None, to(after, []) if after else None)
    previous = to(trail[-1], trail[:-1]) if trail else to(None, [])
    return Pages(
        to(None, []),
        previous,
        to(after, [*trail, cursor]) if after else None,
    )


async def tenant_sessions(console: ConsoleContext, request: Request) -> Response:
    """The tenant's live sessions, PAGE_SIZE at a time, optionally of one user (``user``)
    or from one address (``ip``); 422 with the form again for a bad filter or a stale cursor."""
    session = await console.signed_in(request)
    user_text = request.query_params.get("user", "").strip()
    ip_text = request.query_params.get("ip", "").strip()
    cursor = request.query_params.get("cursor") or None
    prev = request.query_params.get("prev", "")
    trail = [part for part in prev.split(_TRAIL_SEPARATOR) if part][-MAX_TRAIL:]
    errors: dict[str, str] = {}
    user_id = user_id_of(user_text, errors, "user") if user_text else None
    ip = ip_of(ip_text, errors, "ip") if ip_text else None
    filters = {"user": user_text, "ip": ip_text}
    context: dict[str, Any] = {
        **filters,
        "filtered_ip": ip,
        "cursor": cursor,
        "back": local("/sessions", **filters, cursor=cursor, prev=prev),
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
    context["pages"] = pages(request, filters, cursor, trail, context["page"].next_cursor)
    return await console.page(request, session, "sessions.html", context)


async def revoke_one(console: ConsoleContext, request: Request) -> Response:
    """Revoke one session (the form of its confirmation page): 303 back to the page the
    revocation started from."""
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
    return redirect(request, back_path(form.get("back"), "/sessions"))


ROUTES: Final = (
    PageRoute("GET", "/sessions", tenant_sessions),
    PageRoute("POST", "/sessions/revoke", revoke_one),
)
