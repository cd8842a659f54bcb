"""The admin API's session and event endpoints: list and revoke sessions, read events.

Each is a handler of routes.OPERATIONS (where its method, path, parameters and cost are
declared): it gets the request and its query, already checked against the parameters its
operation declares, and answers JSON or a problem. Inputs are checked by the store
(InvalidArgument, 422), which also says why.
"""

from __future__ import annotations

from collections.abc import Mapping

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from .._core import inputs, tokens
from ..errors import InvalidArgument
from ..model import Page
from .endpoint import actor, page_limit, problem_response, store_of

__all__ = [
    "list_events",
    "list_sessions",
    "list_user_sessions",
    "revoke_session",
    "revoke_sessions",
    "revoke_user_sessions",
]

NO_SUCH_SESSION = "This user has no such active session."
NO_EVENTS = (
    "This deployment records no session events; turn them on with "
    "`sessionstore events on` or `serve --events`."
)


def _user(request: Request) -> tuple[str, int]:
    return request.path_params["tenant"], inputs.user_id_text(request.path_params["user_id"])


def _user_filter(query: Mapping[str, str]) -> int | None:
    user_id = query.get("userId")
    return None if user_id is None else inputs.user_id_text(user_id)


async def list_user_sessions(request: Request, query: Mapping[str, str]) -> Response:
    """All of one user's live sessions, in one page."""
    tenant, user_id = _user(request)
    sessions = await store_of(request).list_user_sessions(tenant, user_id)
    return JSONResponse(Page(sessions, total_count=len(sessions)).to_dict())


async def revoke_user_sessions(request: Request, query: Mapping[str, str]) -> Response:
    """Revoke every session of one user: how many there were."""
    tenant, user_id = _user(request)
    revoked = await store_of(request).revoke_all(tenant, user_id, actor=actor(request))
    return JSONResponse({"revoked": revoked})


async def revoke_session(request: Request, query: Mapping[str, str]) -> Response:
    """Revoke one session of a user; 404 when the user has no such live session."""
    tenant, user_id = _user(request)
    session_id = request.path_params["session_id"]
    # Not even a session id: certainly none of this user's, so no lookup is needed.
    well_formed = tokens.SESSION_ID.fullmatch(session_id) is not None
    revoked = well_formed and await store_of(request).revoke(
        tenant, user_id, session_id, actor=actor(request)
    )
    if not revoked:
        return problem_response(404, NO_SUCH_SESSION)
    return JSONResponse({"id": session_id, "revoked": True})


async def list_sessions(request: Request, query: Mapping[str, str]) -> Response:
    """A page of the tenant's live sessions, optionally of one user or from one address."""
    page = await store_of(request).list_sessions(
        request.path_params["tenant"],
        user_id=_user_filter(query),
        ip_address=query.get("ipAddress"),
        limit=page_limit(query),
        cursor=query.get("cursor"),
    )
    return JSONResponse(page.to_dict())


async def revoke_sessions(request: Request, query: Mapping[str, str]) -> Response:
    """Incident response: every session from an IP (or of a user) in one call; every session
    of the tenant only with ``all=true``, never for want of a filter."""
    everything = query.get("all")
    if everything not in (None, "true"):
        raise InvalidArgument("all must be 'true' when given")
    user_id = _user_filter(query)
    ip_address = query.get("ipAddress")
    if user_id is None and ip_address is None and everything is None:
        raise InvalidArgument(
            "give ipAddress or userId; revoking every session of the tenant needs all=true"
        )
    revoked = await store_of(request).revoke_sessions(
        request.path_params["tenant"],
        user_id=user_id,
        ip_address=ip_address,
        all_sessions=everything == "true",
        actor=actor(request),
    )
    return JSONResponse({"revoked": revoked})


async def list_events(request: Request, query: Mapping[str, str]) -> Response:
    """A page of the tenant's events, oldest first after ``after`` (the default order) or
    newest first before ``before`` (``order=desc``), filtered by type, user and IP address;
    404 when the deployment records none.

    A page reads at most events.PAGE_BUDGET stream entries either way: ``hasMore`` with fewer
    items than ``limit`` (even none) means the budget ran out on events the filters passed
    over; ``nextCursor`` goes on from there. ``hasMore`` false: nothing more stored now."""
    store = store_of(request)
    if not await store.events_enabled():
        return problem_response(404, NO_EVENTS)
    kinds = query.get("type")
    page = await store.events(
        request.path_params["tenant"],
        after=query.get("after"),
        before=query.get("before"),
        order=query.get("order", "asc"),
        limit=page_limit(query),
        types=None if kinds is None else kinds.split(","),
        user_id=_user_filter(query),
        ip_address=query.get("ipAddress"),
    )
    return JSONResponse(page.to_dict())
