"""The admin API's OpenAPI 3.1 document, written by hand to say exactly what app.py does.

``document()`` describes every tenant (``/t/{tenant}/...`` paths); ``document("acme-corp")``
is the same API seen from one tenant, its base URL ``/t/acme-corp/api/v1``.
"""

from __future__ import annotations

import re
from typing import Any

from .._core import inputs, tokens
from .._core.kinds import EventType
from ..webhooks import MAX_PER_TENANT, MAX_URL_LENGTH, URL_PATTERN
from .problems import CONTENT_TYPE as PROBLEM

EVENT_TYPES = EventType.type_names()
_ANY_TYPE = "|".join(re.escape(kind) for kind in EVENT_TYPES)

ADMIN = "/admin"


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
        "address, a limit outside 1..1000, a cursor this API did not issue, a query parameter "
        "the operation does not define or one given twice, a bulk revocation with no filter "
        "and no `all=true`."
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

_WEBHOOK_FIELDS = [
    "id",
    "url",
    "types",
    "state",
    "createdAt",
    "cursor",
    "failingSince",
    "disabledAt",
    "disabledReason",
]
_WEBHOOK_PROPERTIES: dict[str, Any] = {
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
    "createdAt": {"type": "string", "format": "date-time"},
    "cursor": {
        **_NULLABLE_STRING,
        "description": "The last event delivered (or passed over by the type filter); the "
        "next delivery is the first matching event after it.",
    },
    "failingSince": {**_NULLABLE_TIME, "description": "The first failed attempt in a row."},
    "disabledAt": _NULLABLE_TIME,
    "disabledReason": _NULLABLE_STRING,
}

SCHEMAS: dict[str, Any] = {
    "Session": {
        "type": "object",
        "additionalProperties": False,
        "required": [
            "id",
            "userId",
            "ipAddress",
            "userAgent",
            "device",
            "location",
            "authMethod",
            "mfaVerified",
            "createdAt",
            "lastActiveAt",
            "expiresAt",
        ],
        "properties": {
            "id": {"type": "string", "pattern": f"^{tokens.SESSION_ID.pattern}$"},
            "userId": {"type": "integer", "minimum": 0, "maximum": inputs.MAX_USER_ID},
            "ipAddress": {"type": "string", "anyOf": [{"format": "ipv4"}, {"format": "ipv6"}]},
            "userAgent": {"type": "string"},
            "device": {
                "type": "object",
                "additionalProperties": False,
                "required": ["type", "os", "browser"],
                "properties": {
                    "type": {"enum": ["desktop", "mobile", "tablet", "bot", "other"]},
                    "os": {"type": "string"},
                    "browser": {"type": "string"},
                },
            },
            "location": {
                "type": ["object", "null"],
                "additionalProperties": False,
                "required": ["city", "country"],
                "properties": {"city": _NULLABLE_STRING, "country": _NULLABLE_STRING},
            },
            "authMethod": {"enum": list(inputs.AUTH_METHODS)},
            "mfaVerified": {"type": "boolean"},
            "createdAt": {"type": "string", "format": "date-time"},
            "lastActiveAt": {"type": "string", "format": "date-time"},
            "expiresAt": {"type": "string", "format": "date-time"},
        },
    },
    "SessionList": {
        "type": "object",
        "additionalProperties": False,
        "required": ["data", "hasMore", "nextCursor", "totalCount"],
        "properties": {
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
    },
    "RevokedSession": {
        "type": "object",
        "additionalProperties": False,
        "required": ["id", "revoked"],
        "properties": {"id": {"type": "string"}, "revoked": {"const": True}},
    },
    "RevokedCount": {
        "type": "object",
        "additionalProperties": False,
        "required": ["revoked"],
        "properties": {"revoked": {"type": "integer", "minimum": 0}},
    },
    "Event": {
        "type": "object",
        "additionalProperties": False,
        "required": ["id", "type", "sessionId", "userId", "ipAddress", "actor", "reason", "at"],
        "properties": {
            "id": {
                "type": "string",
                "description": "Ordered (time, sequence, bucket); pass as `after` to read on.",
            },
            "type": {"enum": list(EVENT_TYPES)},
            "sessionId": {"type": "string", "pattern": f"^{tokens.SESSION_ID.pattern}$"},
            "userId": {
                "type": ["integer", "null"],
                "minimum": 0,
                "maximum": inputs.MAX_USER_ID,
                "description": "null only for a session whose data was gone when its end was "
                "found (README: Events).",
            },
            "ipAddress": {"type": "string", "anyOf": [{"format": "ipv4"}, {"format": "ipv6"}]},
            "actor": {
                "type": "string",
                "description": "`user`, `system`, `admin:<key id>` or the embedding service's.",
            },
            "reason": {
                **_NULLABLE_STRING,
                "description": "`revoke_all`, `bulk` (revoked); `cap` (evicted).",
            },
            "at": {"type": "string", "format": "date-time"},
        },
    },
    "EventList": {
        "type": "object",
        "additionalProperties": False,
        "required": ["data", "hasMore", "nextCursor"],
        "properties": {
            "data": {"type": "array", "items": _ref("schemas", "Event")},
            "hasMore": {"type": "boolean"},
            "nextCursor": {
                **_NULLABLE_STRING,
                "description": "Pass as `after` for the next page; null when no more are "
                "stored now (new ones come after the last id seen). A page reads at most "
                "2,000 stored events: with a sparse filter it may hold fewer than `limit` "
                "events, even none, and a cursor to go on from.",
            },
        },
    },
    **{
        "WebhookRegistration": {
            "type": "object",
            "additionalProperties": False,
            "required": ["url"],
            "properties": {
                "url": {
                    "type": "string",
                    "maxLength": MAX_URL_LENGTH,
                    "pattern": f"^{URL_PATTERN}$",
                    "description": "Where to POST: http or https, a host name or IPv4 address. "
                    "A private, loopback or link-local address is refused (422) unless the "
                    "server allows them (--allow-private-destinations); names are resolved and "
                    "checked again at each delivery.",
                    "example": "https://hooks.example.com/sessions",
                },
                "types": {
                    "type": ["array", "null"],
                    "minItems": 1,
                    "items": {"enum": list(EVENT_TYPES)},
                    "description": "Only these event types; absent or null: every type.",
                },
            },
        },
        "Webhook": {
            "type": "object",
            "additionalProperties": False,
            "required": _WEBHOOK_FIELDS,
            "properties": _WEBHOOK_PROPERTIES,
        },
        "NewWebhook": {
            "type": "object",
            "additionalProperties": False,
            "required": [*_WEBHOOK_FIELDS, "secret"],
            "properties": {
                **_WEBHOOK_PROPERTIES,
                "secret": {
                    "type": "string",
                    "pattern": "^whsec_[A-Za-z0-9+/]+={0,2}$",
                    "description": "The signing secret, shown this once (Standard Webhooks: "
                    "HMAC-SHA256 keyed by the base64-decoded part after whsec_).",
                },
            },
        },
        "WebhookList": {
            "type": "object",
            "additionalProperties": False,
            "required": ["data"],
            "properties": {"data": {"type": "array", "items": _ref("schemas", "Webhook")}},
        },
        "RemovedWebhook": {
            "type": "object",
            "additionalProperties": False,
            "required": ["id", "removed"],
            "properties": {"id": {"type": "string"}, "removed": {"const": True}},
        },
        "DeliveryAttempt": {
            "type": "object",
            "additionalProperties": False,
            "required": ["eventId", "outcome", "status", "error", "durationMs", "at"],
            "properties": {
                "eventId": {"type": "string", "description": "The event (and webhook-id)."},
                "outcome": {
                    "enum": ["delivered", "failed", "disabled"],
                    "description": "`disabled`: the endpoint was disabled after this event's "
                    "last failed attempt (failing for 24 hours).",
                },
                "status": {
                    "type": ["integer", "null"],
                    "description": "The HTTP status answered; null when there was none.",
                },
                "error": {**_NULLABLE_STRING, "description": "Why it failed; null if not."},
                "durationMs": {"type": "number", "minimum": 0},
                "at": {"type": "string", "format": "date-time"},
            },
        },
        "DeliveryList": {
            "type": "object",
            "additionalProperties": False,
            "required": ["data"],
            "properties": {
                "data": {"type": "array", "items": _ref("schemas", "DeliveryAttempt")},
            },
        },
    },
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

_USER_ID = {"type": "integer", "minimum": 0, "maximum": inputs.MAX_USER_ID}

PARAMETERS = {
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
        "description": "Only sessions created from this address (IPv4-mapped IPv6 counts as IPv4).",
        "schema": {"type": "string", "anyOf": [{"format": "ipv4"}, {"format": "ipv6"}]},
    },
    "All": {
        "name": "all",
        "in": "query",
        "description": "`true` to revoke every session of the tenant when no filter is given.",
        "schema": {"type": "boolean", "enum": [True]},
    },
    "After": {
        "name": "after",
        "in": "query",
        "description": "An event id (or `nextCursor`): only events after it.",
        "schema": {"type": "string", "pattern": "^[0-9]{1,15}-[0-9]{1,19}-[0-9a-z]{2}$"},
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
    "429": _ref("responses", "TooManyRequests"),
    "503": _ref("responses", "Unavailable"),
}


def _operation(
    operation_id: str,
    summary: str,
    ok: dict[str, Any],
    *,
    parameters: list[str],
    invalid_input: bool = True,
) -> dict[str, Any]:
    responses = {"200": ok, **_ERRORS}
    if invalid_input:
        responses["422"] = _ref("responses", "InvalidInput")
    return {
        "operationId": operation_id,
        "summary": summary,
        "parameters": [_ref("parameters", name) for name in parameters],
        "responses": dict(sorted(responses.items())),
    }


def _paths(scope: list[str]) -> dict[str, Any]:
    """``scope``: the parameters every path starts with (the tenant, or none)."""
    user_params = [*scope, "UserId"]
    session_list = _json(_ref("schemas", "SessionList"), "A page of sessions, newest first.")
    return {
        f"{ADMIN}/users/{{user_id}}/sessions": {
            "get": _operation(
                "listUserSessions",
                "The user's active sessions, most recently active first (one page).",
                session_list,
                parameters=user_params,
            ),
            "delete": _operation(
                "revokeUserSessions",
                "Revoke all of the user's sessions at once.",
                _json(_ref("schemas", "RevokedCount"), "How many sessions were revoked."),
                parameters=user_params,
            ),
        },
        f"{ADMIN}/users/{{user_id}}/sessions/{{session_id}}": {
            "delete": _operation(
                "revokeSession",
                "Revoke one session immediately.",
                _json(_ref("schemas", "RevokedSession"), "The session was revoked."),
                parameters=[*user_params, "SessionId"],
            ),
        },
        f"{ADMIN}/sessions": {
            "get": _operation(
                "listSessions",
                "Active sessions across all users, newest first, optionally filtered.",
                session_list,
                parameters=[*scope, "UserIdFilter", "IpAddressFilter", "Limit", "Cursor"],
            ),
            "delete": _operation(
                "revokeSessions",
                "Revoke every active session that matches: from an IP address, of a user, or "
                "both. Without a filter it is refused (422) unless `all=true`, which revokes "
                "every session of the tenant. Each user's matching sessions end in one atomic "
                "step; the call returns when all are done.",
                _json(_ref("schemas", "RevokedCount"), "How many sessions were revoked."),
                parameters=[*scope, "UserIdFilter", "IpAddressFilter", "All"],
            ),
        },
        f"{ADMIN}/events": {
            "get": _operation(
                "listEvents",
                "The tenant's session events, oldest first, after a cursor: created, revoked, "
                "evicted, expired, mfa_verified. 404 when the server records none (--events).",
                _json(_ref("schemas", "EventList"), "A page of events, oldest first."),
                parameters=[*scope, "After", "EventType", "UserIdFilter", "Limit"],
            ),
        },
        **_webhook_paths(scope),
    }


def _webhook_paths(scope: list[str]) -> dict[str, Any]:
    one = [*scope, "WebhookId"]
    webhook = _json(_ref("schemas", "Webhook"), "The webhook (never its secret).")
    created = _json(_ref("schemas", "NewWebhook"), "Registered; the secret is shown this once.")
    create = _operation(
        "createWebhook",
        "Register an endpoint for the tenant's session events (Standard Webhooks: signed, "
        "in order, at least once, retried for 24 hours). It receives the events recorded "
        "from now on.",
        created,
        parameters=scope,
    )
    del create["responses"]["200"]
    create["responses"] = dict(
        sorted(
            {**create["responses"], "201": created, "409": _ref("responses", "Conflict")}.items()
        )
    )
    create["requestBody"] = {
        "required": True,
        "content": {"application/json": {"schema": _ref("schemas", "WebhookRegistration")}},
    }
    return {
        f"{ADMIN}/webhooks": {
            "get": _operation(
                "listWebhooks",
                "The tenant's webhooks, oldest first.",
                _json(_ref("schemas", "WebhookList"), "Every webhook of the tenant."),
                parameters=scope,
            ),
            "post": create,
        },
        f"{ADMIN}/webhooks/{{webhook_id}}": {
            "get": _operation(
                "getWebhook", "One webhook and its delivery state.", webhook, parameters=one
            ),
            "delete": _operation(
                "deleteWebhook",
                "Remove a webhook at once (a delivery already in flight may still arrive).",
                _json(_ref("schemas", "RemovedWebhook"), "It was removed."),
                parameters=one,
            ),
        },
        f"{ADMIN}/webhooks/{{webhook_id}}/deliveries": {
            "get": _operation(
                "listWebhookDeliveries",
                "The webhook's delivery log, newest first: each attempt's event, status code "
                "or error, duration and time (about the last 1000 are kept).",
                _json(_ref("schemas", "DeliveryList"), "Delivery attempts, newest first."),
                parameters=[*one, "Limit"],
            ),
        },
    }


def document(tenant: str | None = None) -> dict[str, Any]:
    """The whole API (``tenant=None``) or the API as one tenant sees it."""
    if tenant is None:
        base = "/"
        paths = {f"/t/{{tenant}}/api/v1{path}": item for path, item in _paths(["Tenant"]).items()}
    else:
        base = f"/t/{tenant}/api/v1"
        paths = _paths([])
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
