"""The timeline of the tenant's session events, newest first, filtered by user, IP address
and type; paged both ways."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any, Final

from starlette.requests import Request
from starlette.responses import Response

from ...._core.events import Event, EventPage
from ....errors import InvalidCursor
from .. import text
from ..common import ConsoleContext, PageRoute, ip_of, link, user_id_of

__all__ = ["EVENTS_PAGE", "ROUTES", "STALE_LINK", "Timeline", "events", "timeline"]

log = logging.getLogger("sessionstore.console")

EVENTS_PAGE: Final = 50
STALE_LINK: Final = "That page link is no longer valid: start again from the first page."


@dataclass(frozen=True, slots=True)
class Timeline:
    """A page of the timeline as shown: its events newest first, and the links around it
    (None where there is nowhere to go)."""

    events: list[Event]
    first: str | None  # the newest events, when this page is not them
    newer: str | None  # "Previous page"
    older: str | None  # "Next page"
    cursor: bool  # the page was read from a cursor
    direction: str  # the way it read from its cursor: "older" or "newer"
    stopped: bool  # its read ran out of budget before it found an event: more lie beyond


def timeline(
    request: Request,
    page: EventPage,
    filters: dict[str, str],
    after: str | None,
    before: str | None,
) -> Timeline:
    """Where a page leads. Newest first back from ``before`` (or from the newest): older is
    on from its cursor, newer is oldest first after its first event. Oldest first on from
    ``after`` (a "Previous page"), shown reversed: newer is on from its cursor, older is
    newest first before its oldest event. A page that found nothing leads on from its
    cursor, or, at the end of the events, back to the newest."""

    def to(**cursor: str | None) -> str:
        return link(request, "/events", **filters, **cursor)

    if after is None:
        shown = page.data
        older = to(before=page.next_cursor) if page.next_cursor else None
        if before is None:
            newer = None
        elif shown:
            newer = to(after=shown[0].id)
        else:
            newer = to(after=page.next_cursor) if page.next_cursor else to()
    else:
        shown = page.data[::-1]
        newer = to(after=page.next_cursor) if page.next_cursor else None
        if page.data:
            older = to(before=page.data[0].id)
        else:
            older = to(before=page.next_cursor) if page.next_cursor else to()
    return Timeline(
        events=shown,
        first=to() if after or before else None,
        newer=newer,
        older=older,
        cursor=bool(after or before),
        direction="newer" if after else "older",
        stopped=not page.data and page.next_cursor is not None,
    )


async def events(console: ConsoleContext, request: Request) -> Response:
    """The tenant's session events, newest first, EVENTS_PAGE at a time: back from an event
    id (``before``, "Next page"), or on from one (``after``, "Previous page"); filtered by
    user, IP address and type, which combine."""
    session = await console.signed_in(request)
    params = request.query_params
    user_text = params.get("user", "").strip()
    ip_text = params.get("ip", "").strip()
    type_text = params.get("type", "").strip()
    after = params.get("after") or None
    before = params.get("before") or None
    errors: dict[str, str] = {}
    user_id = user_id_of(user_text, errors, "user") if user_text else None
    ip = ip_of(ip_text, errors, "ip") if ip_text else None
    if type_text and type_text not in text.EVENT_TYPES:
        errors["type"] = text.EVENT_TYPE_HELP
    filters = {"user": user_text, "ip": ip_text, "type": type_text}
    context: dict[str, Any] = {
        **filters,
        "recording": await console.store.events_enabled(),
        "types": text.EVENT_TYPES,
        "user_id": user_id,
        "filtered_ip": ip,
        "filtered": any(filters.values()),
        "page_size": EVENTS_PAGE,
        "errors": errors,
        "timeline": None,
        "problem": None,
    }
    if errors:
        return await console.page(request, session, "events.html", context, status=422)
    if not context["recording"]:
        return await console.page(request, session, "events.html", context)
    try:
        if after and before:
            raise InvalidCursor("one cursor at a time")
        page = await console.store.events(
            session.tenant,
            after=after,
            before=before,
            order="asc" if after else "desc",
            limit=EVENTS_PAGE,
            types=[type_text] if type_text else None,
            user_id=user_id,
            ip_address=ip,
        )
    except InvalidCursor:
        context["problem"] = STALE_LINK
        return await console.page(request, session, "events.html", context, status=422)
    context["timeline"] = timeline(request, page, filters, after, before)
    return await console.page(request, session, "events.html", context)


ROUTES: Final = (PageRoute("GET", "/events", events),)
