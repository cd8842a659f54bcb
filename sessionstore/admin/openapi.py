"""The admin API's OpenAPI 3.1 document, derived from what the server does.

``document()`` describes every tenant (``/t/{tenant}/...`` paths); ``document("acme-corp")``
is the same API seen from one tenant, its base URL ``/t/acme-corp/api/v1``.

Its ``paths`` come from the route table (routes.OPERATIONS: method, path, operationId, summary,
parameters, answer, body); the schemas of sessions, events, webhooks and delivery attempts
from their models' fields, each described once here (``_model``). Parameters, answers and
refusals every operation shares are the ``components`` below.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Collection
from typing import Any, get_args

from .._core import inputs, tokens
from .._core.events import EVENT_ID, ORDERS, Event
from .._core.kinds import EventType
from ..http.problems import CONTENT_TYPE as PROBLEM
from ..model import Device, DeviceType, Location, Session, camel_case
from ..webhooks.destinations import MAX_URL_LENGTH, URL_PATTERN
from ..webhooks.registry import MAX_PER_TENANT, Attempt, Webhook
from .routes import ADMIN, API_BASE, OPERATIONS, Body, Operation, path_parameters

__all__ = ["EVENT_TYPES", "PARAMETERS", "RESPONSES", "SCHEMAS", "document"]

EVENT_TYPES = EventType.type_names()
_ANY_TYPE = "|".join(re.escape(kind) for kind in EVENT_TYPES)


def _ref(kind: str, name: str) -> dict[str, str]:
    return {"$ref": f"#/components/{kind}/{name}"}


def _json(schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def _problem(description: str, **headers: str) -> dict[str, Any]:
    response: dict[str, Any] = {
        "description": description,
        "content": {PROBLEM: {"schema": _ref("schemas", "Problem")}},
    }
    if headers:
        response["headers"] = {
            name: {"required": True, "description": text, "schema": {"type": "string"}}
            for name, text in headers.items()
        }
    return response


_RETRY_AFTER = "Seconds to wait before trying again."

RESPONSES = {
    "AmbiguousCredential": _problem(
        "More than one credential: two Authorization fields, or one holding two. Which one the "
        "client meant cannot be told, so nothing is read or changed.",
        **{"WWW-Authenticate": 'Bearer error="invalid_request"'},
    ),
    "Unauthorized": _problem(
        "No API key, or a malformed, unknown or revoked one. Never costs a lookup when the "
        "key's checksum is wrong.",
        **{"WWW-Authenticate": 'Bearer, or Bearer error="invalid_token" when a key was sent.'},
    ),
    "NotFound": _problem(
        "No such resource. A tenant other than the API key's own answers this, the same "
        "whether or not anything exists there."
    ),
    "MethodNotAllowed": _problem(
        "The path exists but not with this method.", Allow="The methods the path accepts."
    ),
    "InvalidInput": _problem(
        "A path or query value is outside its domain: a user id that is not a canonical "
        "decimal integer in 0..2^63-1, an IP address filter that is not an IPv4 or IPv6 "
        "address, a limit outside 1..1000, a cursor this API did not issue, an events order "
        "other than `asc` or `desc` or the other order's cursor, a query parameter the "
        "operation does not define or one given twice, a bulk revocation with no filter and "
        "no `all=true`."
    ),
    "ContentTooLarge": _problem(
        "The request body is larger than the operation takes (its requestBody says how many "
        "bytes): refused unread when Content-Length says so, else once the limit is passed."
    ),
    "TooManyRequests": _problem(
        "Rate limited: per API key, per tenant, or repeated failed authentication from one "
        "client address. Calls cost tokens by route (a page one per 100 of its limit, a "
        "filtered events page or a bulk revocation 10); a tenant has at most 4 calls in "
        "progress, one of them heavy, and 5 heavy calls a second.",
        **{"Retry-After": _RETRY_AFTER},
    ),
    "Conflict": _problem(
        f"The tenant already has {MAX_PER_TENANT} webhooks, the most it may have."
    ),
    "Unavailable": _problem(
        "The session store (Redis) cannot be reached or refuses writes.",
        **{"Retry-After": _RETRY_AFTER},
    ),
}

_NULLABLE_STRING = {"type": ["string", "null"]}
_NULLABLE_TIME = {"type": ["string", "null"], "format": "date-time"}
_TIME = {"type": "string", "format": "date-time"}
_USER_ID = {"type": "integer", "minimum": 0, "maximum": inputs.MAX_USER_ID}
_IP_ADDRESS = {"type": "string", "anyOf": [{"format": "ipv4"}, {"format": "ipv6"}]}
_SESSION_ID = {"type": "string", "pattern": f"^{tokens.SESSION_ID.pattern}$"}
_EVENT_ID = f"^{EVENT_ID.pattern}$"


def _object(properties: dict[str, Any], required: list[str] | None = None) -> dict[str, Any]:
    """An object of exactly ``properties``, each one required unless ``required`` says which."""
    return {
        "type": "object",
        "additionalProperties": False,
        "required": list(properties) if required is None else required,
        "properties": properties,
    }


def _model(
    model: type[Any], properties: dict[str, Any], *, hidden: Collection[str] = ()
) -> dict[str, Any]:
    """The schema of a model's ``to_dict``: one property per field of the dataclass (camelCase,
    in field order, every one required), the ``hidden`` fields aside (to_dict leaves them out).

    ``properties`` says what each holds; a field it does not describe, or a property that is no
    field, is refused here (at import), so the document never drifts from the model unseen."""
    names = [camel_case(f.name) for f in dataclasses.fields(model) if f.name not in hidden]
    if set(names) != set(properties):
        unmatched = sorted(set(names) ^ set(properties))
        raise TypeError(f"the {model.__name__} schema does not match its fields: {unmatched}")
    return _object({name: properties[name] for name in names})


_LOCATION = _model(Location, {"city": _NULLABLE_STRING, "country": _NULLABLE_STRING})

_SESSION = _model(
    Session,
    {
        "id": _SESSION_ID,
        "userId": _USER_ID,
        "ipAddress": _IP_ADDRESS,
        "userAgent": {"type": "string"},
        "device": _model(
            Device,
            {
                "type": {"enum": list(get_args(DeviceType))},
                "os": {"type": "string"},
                "browser": {"type": "string"},
            },
        ),
        "location": {**_LOCATION, "type": ["object", "null"]},
        "authMethod": {"enum": list(inputs.AUTH_METHODS)},
        "mfaVerified": {"type": "boolean"},
        "createdAt": _TIME,
        "lastActiveAt": _TIME,
        "expiresAt": _TIME,
        # Not in the spec: sessionstore's extension, marked as such (x-sessionstore-extension).
        "deviceBound": {
            "type": "boolean",
            "description": "An extension of the spec's Session (every other field is as the "
            "spec has it): true once the session is bound to a key on the user's device "
            "(W3C DBSC; README: Device-bound sessions). Its requests then need the bound "
            "cookie as well as the token.",
            "x-sessionstore-extension": True,
        },
    },
)

_EVENT = _model(
    Event,
    {
        "id": {
            "type": "string",
            "description": "Ordered (time, sequence, bucket); pass as `after` or `before` "
            "to read on from it either way.",
        },
        "type": {"enum": list(EVENT_TYPES)},
        "sessionId": _SESSION_ID,
        "userId": {
            **_USER_ID,
            "type": ["integer", "null"],
            "description": "null only for a session whose data was gone when its end was "
            "found (README: Events).",
        },
        "ipAddress": _IP_ADDRESS,
        "actor": {
            "type": "string",
            "description": "`user`, `system`, `admin:<key id>` or the embedding service's.",
        },
        "reason": {
            **_NULLABLE_STRING,
            "description": "`revoke_all`, `bulk` (revoked); `cap` (evicted); `key_mismatch`, "
            "`bound_cookie_expired` (binding_failed; revoked too where the app revokes on it).",
        },
        "at": _TIME,
    },
)

_WEBHOOK = _model(
    Webhook,
    {
        "id": {"type": "string", "pattern": "^wh_[0-9A-Za-z]{16}$"},
        "url": {"type": "string"},
        "types": {
            "type": ["array", "null"],
            "items": {"enum": list(EVENT_TYPES)},
            "description": "The event types it receives; null: every type.",
        },
        "state": {
            "enum": ["enabled", "disabled"],
            "description": "`disabled` after 24 hours of failed attempts; nothing more is sent.",
        },
        "createdAt": _TIME,
        "cursor": {
            **_NULLABLE_STRING,
            "description": "The last event delivered (or passed over by the type filter); the "
            "next delivery is the first matching event after it.",
        },
        "failingSince": {**_NULLABLE_TIME, "description": "The first failed attempt in a row."},
        "disabledAt": _NULLABLE_TIME,
        "disabledReason": _NULLABLE_STRING,
    },
    # Kept for the deliverer, never listed.
    hidden=("tenant", "attempts", "next_attempt_at"),
)

_ATTEMPT = _model(
    Attempt,
    {
        "eventId": {"type": "string", "description": "The event (and webhook-id)."},
        "outcome": {
            "enum": ["delivered", "failed", "disabled"],
            "description": "`disabled`: the endpoint was disabled after this event's last "
            "failed attempt (failing for 24 hours).",
        },
        "status": {
            "type": ["integer", "null"],
            "description": "The HTTP status answered; null when there was none.",
        },
        "error": {**_NULLABLE_STRING, "description": "Why it failed; null if not."},
        "durationMs": {"type": "number", "minimum": 0},
        "at": _TIME,
    },
)


def _list(item: str, **properties: Any) -> dict[str, Any]:
    """A page or list: ``data``, items of schema ``item``, and ``properties`` after it."""
    return _object({"data": {"type": "array", "items": _ref("schemas", item)}, **properties})


SCHEMAS: dict[str, Any] = {
    "Session": _SESSION,
    "SessionList": _object(
        {
            "data": {"type": "array", "items": _ref("schemas", "Session")},
            "hasMore": {"type": "boolean"},
            "totalCount": {
                "type": "integer",
                "minimum": 0,
                "description": "Live sessions that match the filters, on every page (it can "
                "change between pages as sessions come and go).",
            },
            "nextCursor": {
                **_NULLABLE_STRING,
                "description": "Pass as `cursor` to get the next page; null on the last one.",
            },
        },
        required=["data", "hasMore", "nextCursor", "totalCount"],
    ),
    "RevokedSession": _object({"id": {"type": "string"}, "revoked": {"const": True}}),
    "RevokedCount": _object({"revoked": {"type": "integer", "minimum": 0}}),
    "Event": _EVENT,
    "EventList": _list(
        "Event",
        hasMore={"type": "boolean"},
        nextCursor={
            **_NULLABLE_STRING,
            "description": "Pass as `after` (order `asc`) or `before` (order `desc`) for the "
            "next page that way; null when no more are stored that way now (new ones come "
            "after the last id seen). A page reads at most 2,000 stored events: with a sparse "
            "filter it may hold fewer than `limit` events, even none, and a cursor to go on "
            "from.",
        },
    ),
    "WebhookRegistration": _object(
        {
            "url": {
                "type": "string",
                "maxLength": MAX_URL_LENGTH,
                "pattern": f"^{URL_PATTERN}$",
                "description": "Where to POST: http or https, a host name or IPv4 address. A "
                "private, loopback or link-local address is refused (422) unless the server "
                "allows them (--allow-private-destinations); names are resolved and checked "
                "again at each delivery.",
                "example": "https://hooks.example.com/sessions",
            },
            "types": {
                "type": ["array", "null"],
                "minItems": 1,
                "items": {"enum": list(EVENT_TYPES)},
                "description": "Only these event types; absent or null: every type.",
            },
        },
        required=["url"],
    ),
    "Webhook": _WEBHOOK,
    "NewWebhook": _object(
        {
            **_WEBHOOK["properties"],
            "secret": {
                "type": "string",
                "pattern": "^whsec_[A-Za-z0-9+/]+={0,2}$",
                "description": "The signing secret, shown this once (Standard Webhooks: "
                "HMAC-SHA256 keyed by the base64-decoded part after whsec_).",
            },
        }
    ),
    "WebhookList": _list("Webhook"),
    "RemovedWebhook": _object({"id": {"type": "string"}, "removed": {"const": True}}),
    "DeliveryAttempt": _ATTEMPT,
    "DeliveryList": _list("DeliveryAttempt"),
    "Problem": {
        "description": "RFC 9457 problem details.",
        "type": "object",
        "required": ["type", "title", "status", "detail"],
        "properties": {
            "type": {"type": "string"},
            "title": {"type": "string"},
            "status": {"type": "integer", "minimum": 400, "maximum": 599},
            "detail": {"type": "string"},
        },
    },
}

PARAMETERS: dict[str, dict[str, Any]] = {
    "Tenant": {
        "name": "tenant",
        "in": "path",
        "required": True,
        "description": "The tenant's slug; only the API key's own tenant is found.",
        "schema": {"type": "string", "pattern": "^[a-z0-9][a-z0-9-]{0,62}$"},
    },
    "UserId": {
        "name": "user_id",
        "in": "path",
        "required": True,
        "schema": _USER_ID,
        "example": 456,
    },
    "SessionId": {
        "name": "session_id",
        "in": "path",
        "required": True,
        "description": "A session id; anything else is simply not found.",
        "schema": {"type": "string"},
    },
    "UserIdFilter": {
        "name": "userId",
        "in": "query",
        "description": "Only this user's sessions.",
        "schema": _USER_ID,
    },
    "IpAddressFilter": {
        "name": "ipAddress",
        "in": "query",
        "description": "Only sessions created from this address; for events, only events of "
        "such sessions (IPv4-mapped IPv6 counts as IPv4).",
        "schema": {"type": "string", "anyOf": [{"format": "ipv4"}, {"format": "ipv6"}]},
    },
    "All": {
        "name": "all",
        "in": "query",
        "description": "`true` to revoke every session of the tenant when no filter is given.",
        "schema": {"type": "boolean", "enum": [True]},
    },
    "Order": {
        "name": "order",
        "in": "query",
        "description": "`asc`: oldest first, on from `after` (the default: a client's `after` "
        "cursors keep their meaning, and a page read on from the last event gets what came "
        "since, as webhooks and `events tail` do). `desc`: newest first, back from `before`. "
        "Each order takes only its own cursor (the other is refused, 422); a page reads at "
        "most 2,000 stored events either way.",
        "schema": {"enum": list(ORDERS), "default": "asc"},
    },
    "After": {
        "name": "after",
        "in": "query",
        "description": "An event id (or `nextCursor` of an `asc` page): only events after "
        "it, oldest first.",
        "schema": {"type": "string", "pattern": _EVENT_ID},
    },
    "Before": {
        "name": "before",
        "in": "query",
        "description": "With `order=desc`: an event id (or `nextCursor` of a `desc` page): "
        "only events before it, newest first.",
        "schema": {"type": "string", "pattern": _EVENT_ID},
    },
    "EventType": {
        "name": "type",
        "in": "query",
        "description": "Only these types, comma-separated.",
        "schema": {
            "type": "string",
            "pattern": f"^({_ANY_TYPE})(,({_ANY_TYPE}))*$",
        },
    },
    "Limit": {
        "name": "limit",
        "in": "query",
        "schema": {
            "type": "integer",
            "minimum": 1,
            "maximum": inputs.MAX_LIMIT,
            "default": inputs.DEFAULT_LIMIT,
        },
    },
    "WebhookId": {
        "name": "webhook_id",
        "in": "path",
        "required": True,
        "description": "A webhook id (wh_...); anything else is simply not found.",
        "schema": {"type": "string"},
    },
    "Cursor": {
        "name": "cursor",
        "in": "query",
        "description": "An opaque `nextCursor` from a previous page.",
        "schema": {"type": "string", "minLength": 1, "maxLength": 128},
    },
}

_ERRORS = {
    "400": _ref("responses", "AmbiguousCredential"),
    "401": _ref("responses", "Unauthorized"),
    "404": _ref("responses", "NotFound"),
    "422": _ref("responses", "InvalidInput"),
    "429": _ref("responses", "TooManyRequests"),
    "503": _ref("responses", "Unavailable"),
}

# Each parameter of PARAMETERS by where it is and its name: ("query", "limit") -> "Limit".
_PARAMETER_NAMED = {(value["in"], value["name"]): key for key, value in PARAMETERS.items()}


def _parameters(template: str, operation: Operation) -> list[dict[str, str]]:
    """The operation's parameters: those in ``template``, in order, then its query's."""
    wire = [("path", name) for name in path_parameters(template)]
    wire += [("query", name) for name in operation.query]
    return [_ref("parameters", _PARAMETER_NAMED[place]) for place in wire]


def _operation(template: str, operation: Operation) -> dict[str, Any]:
    """The document's operation object of one entry of routes.OPERATIONS."""
    answer = operation.answer
    responses = {
        str(answer.status): _json(_ref("schemas", answer.schema), answer.description),
        **_ERRORS,
        **{str(status): _ref("responses", name) for status, name in operation.refusals.items()},
    }
    if operation.body is not None:
        responses["413"] = _ref("responses", "ContentTooLarge")
    described = {
        "operationId": operation.operation_id,
        "summary": operation.summary,
        "parameters": _parameters(template, operation),
        "responses": dict(sorted(responses.items())),
    }
    if operation.body is not None:
        described["requestBody"] = _request_body(operation.body)
    return described


def _request_body(body: Body) -> dict[str, Any]:
    return {
        "required": True,
        "description": f"JSON of at most {body.max_bytes} bytes; a longer body is refused (413).",
        "content": {"application/json": {"schema": _ref("schemas", body.schema)}},
    }


def _paths(base: str) -> dict[str, Any]:
    """Every operation of routes.OPERATIONS, by path template under ``base``."""
    paths: dict[str, dict[str, Any]] = {}
    for operation in OPERATIONS:
        template = base + ADMIN + operation.path
        paths.setdefault(template, {})[operation.method.lower()] = _operation(template, operation)
    return paths


def document(tenant: str | None = None) -> dict[str, Any]:
    """The whole API (``tenant=None``) or the API as one tenant sees it."""
    if tenant is None:
        base = "/"
        paths = _paths(API_BASE)
    else:
        base = API_BASE.format(tenant=tenant)
        paths = _paths("")
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "sessionstore admin API",
            "version": "1",
            "description": "Manage user authentication sessions. Every error is "
            "application/problem+json (RFC 9457).",
        },
        "servers": [{"url": base}],
        "security": [{"apiKey": []}],
        "paths": paths,
        "components": {
            "securitySchemes": {
                "apiKey": {
                    "type": "http",
                    "scheme": "bearer",
                    "description": "An API key, sk_live_..., from `sessionstore apikey create`; "
                    "it reaches its own tenant only.",
                }
            },
            "schemas": SCHEMAS,
            "parameters": PARAMETERS,
            "responses": RESPONSES,
        },
    }
