"""The admin API's webhook endpoints (sessionstore/webhooks.py does the work).

    GET    /admin/webhooks                          the tenant's endpoints
    POST   /admin/webhooks                          register one (201; its secret, once)
    GET    /admin/webhooks/{webhook_id}             one endpoint
    DELETE /admin/webhooks/{webhook_id}             remove it
    GET    /admin/webhooks/{webhook_id}/deliveries  its delivery log, newest first

under ``/t/{tenant}/api/v1``, behind the same gate as every admin route (app.py); errors are
problem+json.
"""

from __future__ import annotations

import json

from starlette.endpoints import HTTPEndpoint
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from .._core import inputs
from ..errors import InvalidArgument
from ..webhooks import TooManyWebhooks, Webhooks
from .app import _LIMIT_TEXT, _query, _store, problem_response, read_body

NO_SUCH_WEBHOOK = "This tenant has no such webhook."
ALLOW_PRIVATE = "allow_private_destinations"
ALLOW_METADATA = "allow_metadata_destinations"  # app.state, set by serve (cli.py)
_FIELDS = frozenset({"url", "types"})
MAX_BODY = 16 * 1024


def routes() -> list[Route]:
    """The routes, relative to ``/t/{tenant}/api/v1/admin``."""
    return [
        Route("/webhooks", WebhookList),
        Route("/webhooks/{webhook_id}", WebhookItem),
        Route("/webhooks/{webhook_id}/deliveries", WebhookDeliveries),
    ]


def _webhooks(request: Request) -> Webhooks:
    state = request.app.state
    return Webhooks(
        _store(request),
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


class WebhookList(HTTPEndpoint):
    async def get(self, request: Request) -> Response:
        _query(request)
        found = await _webhooks(request).list(request.path_params["tenant"])
        return JSONResponse({"data": [webhook.to_dict() for webhook in found]})

    async def post(self, request: Request) -> Response:
        _query(request)
        url, kinds = await _registration(request)
        try:
            webhook, secret = await _webhooks(request).add(
                request.path_params["tenant"], url, types=kinds
            )
        except TooManyWebhooks as error:
            return problem_response(409, str(error))
        return JSONResponse({**webhook.to_dict(), "secret": secret}, status_code=201)


class WebhookItem(HTTPEndpoint):
    async def get(self, request: Request) -> Response:
        _query(request)
        webhook = await _webhooks(request).get(
            request.path_params["tenant"], request.path_params["webhook_id"]
        )
        if webhook is None:
            return problem_response(404, NO_SUCH_WEBHOOK)
        return JSONResponse(webhook.to_dict())

    async def delete(self, request: Request) -> Response:
        _query(request)
        webhook_id = request.path_params["webhook_id"]
        if not await _webhooks(request).remove(request.path_params["tenant"], webhook_id):
            return problem_response(404, NO_SUCH_WEBHOOK)
        return JSONResponse({"id": webhook_id, "removed": True})


class WebhookDeliveries(HTTPEndpoint):
    async def get(self, request: Request) -> Response:
        params = _query(request, frozenset({"limit"}))
        limit = params.get("limit", str(inputs.DEFAULT_LIMIT))
        attempts = await _webhooks(request).log(
            request.path_params["tenant"],
            request.path_params["webhook_id"],
            limit=inputs.limit(int(limit) if _LIMIT_TEXT.fullmatch(limit) else None),
        )
        if attempts is None:
            return problem_response(404, NO_SUCH_WEBHOOK)
        return JSONResponse({"data": [attempt.to_dict() for attempt in attempts]})
