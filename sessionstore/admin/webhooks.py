"""The admin API's webhook endpoints (sessionstore.webhooks does the work).

    GET    /admin/webhooks                          the tenant's endpoints
    POST   /admin/webhooks                          register one (201; its secret, once)
    GET    /admin/webhooks/{webhook_id}             one endpoint
    DELETE /admin/webhooks/{webhook_id}             remove it
    GET    /admin/webhooks/{webhook_id}/deliveries  its delivery log, newest first

under ``/t/{tenant}/api/v1``, behind the same gate as every admin route (app.py); errors are
problem+json. Each is a handler of routes.OPERATIONS, where its method, path, parameters and
body are declared; it gets the request and its query, already checked.
"""

from __future__ import annotations

import json
from collections.abc import Mapping

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from ..errors import InvalidArgument
from ..webhooks.registry import TooManyWebhooks, Webhooks
from .endpoint import page_limit, problem_response, read_body, store_of

__all__ = [
    "MAX_BODY",
    "create_webhook",
    "delete_webhook",
    "get_webhook",
    "list_webhook_deliveries",
    "list_webhooks",
]

NO_SUCH_WEBHOOK = "This tenant has no such webhook."
ALLOW_PRIVATE = "allow_private_destinations"
ALLOW_METADATA = "allow_metadata_destinations"  # app.state, set by create_app
_FIELDS = frozenset({"url", "types"})
MAX_BODY = 16 * 1024  # bytes of a registration: a URL of 2048 and every type fit many times


def _webhooks(request: Request) -> Webhooks:
    state = request.app.state
    return Webhooks(
        store_of(request),
        allow_private=bool(getattr(state, ALLOW_PRIVATE, False)),
        allow_metadata=bool(getattr(state, ALLOW_METADATA, False)),
    )


async def _registration(request: Request) -> tuple[str, list[str] | None]:
    """The body of a registration: ``{"url": ..., "types": [...]}``, nothing else."""
    raw = await read_body(request, MAX_BODY)  # 413 past MAX_BODY, before or while reading
    try:
        body = json.loads(raw)
    except ValueError:
        body = None
    if not isinstance(body, dict):
        raise InvalidArgument(
            f'the body must be a JSON object of at most {MAX_BODY} bytes: {{"url": "https://...", '
            '"types": ["session.revoked"]}'
        )
    unknown = sorted(set(body) - _FIELDS)
    if unknown:
        raise InvalidArgument(f"unknown field {unknown[0][:32]!r}; the fields are url and types")
    if not isinstance(body.get("url"), str):
        raise InvalidArgument("url is required: a string")
    kinds = body.get("types")
    if kinds is not None and (
        not isinstance(kinds, list) or not all(isinstance(kind, str) for kind in kinds)
    ):
        raise InvalidArgument("types must be a list of event types, or null for every type")
    return body["url"], kinds


async def list_webhooks(request: Request, query: Mapping[str, str]) -> Response:
    """The tenant's webhooks, oldest first."""
    found = await _webhooks(request).list(request.path_params["tenant"])
    return JSONResponse({"data": [webhook.to_dict() for webhook in found]})


async def create_webhook(request: Request, query: Mapping[str, str]) -> Response:
    """Register an endpoint: 201 with its secret (shown this once); 409 when the tenant has
    as many as it may have."""
    url, kinds = await _registration(request)
    try:
        webhook, secret = await _webhooks(request).add(
            request.path_params["tenant"], url, types=kinds
        )
    except TooManyWebhooks as error:
        return problem_response(409, str(error))
    return JSONResponse({**webhook.to_dict(), "secret": secret}, status_code=201)


async def get_webhook(request: Request, query: Mapping[str, str]) -> Response:
    """One webhook and its delivery state (never its secret); 404 when there is none."""
    webhook = await _webhooks(request).get(
        request.path_params["tenant"], request.path_params["webhook_id"]
    )
    if webhook is None:
        return problem_response(404, NO_SUCH_WEBHOOK)
    return JSONResponse(webhook.to_dict())


async def delete_webhook(request: Request, query: Mapping[str, str]) -> Response:
    """Remove a webhook at once; 404 when there is none."""
    webhook_id = request.path_params["webhook_id"]
    if not await _webhooks(request).remove(request.path_params["tenant"], webhook_id):
        return problem_response(404, NO_SUCH_WEBHOOK)
    return JSONResponse({"id": webhook_id, "removed": True})


async def list_webhook_deliveries(request: Request, query: Mapping[str, str]) -> Response:
    """The webhook's delivery log, newest first, at most ``limit`` attempts."""
    attempts = await _webhooks(request).log(
        request.path_params["tenant"],
        request.path_params["webhook_id"],
        limit=page_limit(query),
    )
    if attempts is None:
        return problem_response(404, NO_SUCH_WEBHOOK)
    return JSONResponse({"data": [attempt.to_dict() for attempt in attempts]})
