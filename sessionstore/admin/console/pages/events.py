"""The timeline of the tenant's session events, filtered by user and by type."""

from __future__ import annotations

import logging
from typing import Any, Final

from starlette.requests import Request
from starlette.responses import Response

from ....errors import InvalidCursor
from .. import text
from ..common import ConsoleContext, PageRoute, user_id_of

__all__ = ["ROUTES", "events"]

log = logging.getLogger("sessionstore.console")

EVENTS_PAGE: Final = 50


async def events(console: ConsoleContext, request: Request) -> Response:
    """The tenant's session events, oldest first (the order the store reads them in), a
    page at a time after an event id; filtered by user and by type."""
    session = await console.signed_in(request)
    user_text = request.query_params.get("user", "").strip()
    type_text = request.query_params.get("type", "").strip()
    after = request.query_params.get("after") or None
    errors: dict[str, str] = {}
    user_id = user_id_of(user_text, errors, "user") if user_text else None
    if type_text and type_text not in text.EVENT_TYPES:
        errors["type"] = text.EVENT_TYPE_HELP
    context: dict[str, Any] = {
        "recording": await console.store.events_enabled(),
        "user": user_text,
        "type": type_text,
        "types": text.EVENT_TYPES,
        "user_id": user_id,
        "after": after,
        "page_size": EVENTS_PAGE,
        "errors": errors,
        "page": None,
        "problem": None,
    }
    if errors:
        return await console.page(request, session, "events.html", context, status=422)
    if not context["recording"]:
        return await console.page(request, session, "events.html", context)
    try:
        context["page"] = await console.store.events(
            session.tenant,
            after=after,
            limit=EVENTS_PAGE,
            types=[type_text] if type_text else None,
            user_id=user_id,
        )
    except InvalidCursor:
        context["problem"] = "That page link is no longer valid: start again from the first page."
        return await console.page(request, session, "events.html", context, status=422)
    return await console.page(request, session, "events.html", context)


ROUTES: Final = (PageRoute("GET", "/events", events),)
