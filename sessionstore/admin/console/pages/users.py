"""One user's sessions: finding the user, the list, and revoking all of them (confirmed first)."""

from __future__ import annotations

import logging
from typing import Final

from starlette.requests import Request
from starlette.responses import Response

from .. import text
from ..common import ConsoleContext, PageRoute, actor, path_user_id, redirect, user_id_of

__all__ = ["ROUTES", "revoke_all", "revoke_all_page", "user_lookup", "user_sessions"]

log = logging.getLogger("sessionstore.console")


async def user_lookup(console: ConsoleContext, request: Request) -> Response:
    """The form that asks for a user id; a valid one goes to that user's page."""
    session = await console.signed_in(request)
    user_text = request.query_params.get("user", "").strip()
    errors: dict[str, str] = {}
    if user_text:
        user_id = user_id_of(user_text, errors, "user")
        if user_id is not None:
            return redirect(request, f"/users/{user_id}")
    context = {"user": user_text, "errors": errors}
    return await console.page(
        request, session, "user_lookup.html", context, status=422 if errors else 200
    )


async def user_sessions(console: ConsoleContext, request: Request) -> Response:
    """One user's live sessions; 422 with the lookup form for a path that is no user id."""
    session = await console.signed_in(request)
    user_text = request.path_params["user_id"]
    errors: dict[str, str] = {}
    user_id = user_id_of(user_text, errors, "user")
    if user_id is None:
        context = {"user": user_text, "errors": errors}
        return await console.page(request, session, "user_lookup.html", context, status=422)
    sessions = await console.store.list_user_sessions(session.tenant, user_id)
    context = {"user_id": user_id, "sessions": sessions}
    return await console.page(request, session, "user.html", context)


async def revoke_all_page(console: ConsoleContext, request: Request) -> Response:
    """The confirmation step of revoking all of a user's sessions, with what would go."""
    session = await console.signed_in(request)
    user_id = path_user_id(request)
    sessions = await console.store.list_user_sessions(session.tenant, user_id)
    context = {"user_id": user_id, "sessions": sessions}
    return await console.page(request, session, "confirm_user.html", context)


async def revoke_all(console: ConsoleContext, request: Request) -> Response:
    """Revoke all of a user's sessions (a form of this console): 303 to the user's page."""
    session, _ = await console.authorised_post(request)
    user_id = path_user_id(request)
    revoked = await console.store.revoke_all(session.tenant, user_id, actor=actor(session))
    log.info(
        "console: revoke all %d of user %d (tenant %s, key %s)",
        revoked, user_id, session.tenant, session.key_id,
    )  # fmt: skip
    await console.sessions.set_flash(
        session, f"Revoked {text.plural(revoked, 'session')} of user {user_id}."
    )
    return redirect(request, f"/users/{user_id}")


ROUTES: Final = (
    PageRoute("GET", "/users", user_lookup),
    PageRoute("GET", "/users/{user_id}", user_sessions),
    PageRoute("GET", "/users/{user_id}/revoke-all", revoke_all_page),
    PageRoute("POST", "/users/{user_id}/revoke-all", revoke_all),
)
