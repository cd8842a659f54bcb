"""The admin API's route table: every operation, said once.

Each ``Operation`` names its method, path template, handler, operationId, summary, query
parameters, answer, body, other refusals and rate-limit cost. Everything else is derived from
``OPERATIONS``: the Starlette router and the metric and log labels (app.py), the costs the gate
charges (app.ROUTE_COSTS), the OpenAPI ``paths`` (openapi.py) and the tests' list of
operations. Adding an endpoint is its handler (sessions.py, webhooks.py) and its entry here.

Paths are relative to ``ADMIN_BASE``; path parameters are read from the template
(``path_parameters``), and their OpenAPI descriptions, like those of the query parameters,
are openapi.PARAMETERS'.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Final

from .endpoint import Handler
from .ratelimit import Cost
from .sessions import (
    list_events,
    list_sessions,
    list_user_sessions,
    revoke_session,
    revoke_sessions,
    revoke_user_sessions,
)
from .webhooks import (
    MAX_BODY,
    create_webhook,
    delete_webhook,
    get_webhook,
    list_webhook_deliveries,
    list_webhooks,
)

__all__ = [
    "ADMIN",
    "ADMIN_BASE",
    "API_BASE",
    "DOCUMENT",
    "OPERATIONS",
    "Answer",
    "Body",
    "Operation",
    "path_parameters",
]

API_BASE: Final = "/t/{tenant}/api/v1"  # a tenant's API; its OpenAPI document is DOCUMENT here
ADMIN: Final = "/admin"  # the admin operations, under API_BASE, behind the gate
ADMIN_BASE: Final = API_BASE + ADMIN
DOCUMENT: Final = "/openapi.json"  # the whole API's document at the root, a tenant's under it

_PATH_PARAMETER: Final = re.compile(r"{([a-z_]+)}")


@dataclass(frozen=True, slots=True)
class Answer:
    """A success: its status, the schema of its JSON (openapi.SCHEMAS) and what it means."""

    schema: str
    description: str
    status: int = 200


@dataclass(frozen=True, slots=True)
class Body:
    """A JSON request body: its schema (openapi.SCHEMAS) and the most bytes it may have (the
    handler reads it with endpoint.read_body at this limit: 413 past it)."""

    schema: str
    max_bytes: int


@dataclass(frozen=True, slots=True)
class Operation:
    """One method on one path of the admin API.

    ``query``: the query parameters it takes (any other is refused, 422, before the handler
    runs). ``refusals``: answers beyond those every operation may give, status to the name of
    an openapi.RESPONSES entry. ``cost``: its rate-limit tokens when not one (ratelimit.Cost).
    """

    method: str
    path: str
    handler: Handler
    operation_id: str
    summary: str
    answer: Answer
    query: tuple[str, ...] = ()
    body: Body | None = None
    refusals: Mapping[int, str] = field(default_factory=dict)
    cost: Cost | None = None

    @property
    def template(self) -> str:
        """The whole path template, from the server's root."""
        return ADMIN_BASE + self.path


def path_parameters(template: str) -> tuple[str, ...]:
    """The parameter names of a path template, in order: ``("tenant", "user_id")``."""
    return tuple(_PATH_PARAMETER.findall(template))


# What a call costs: a page a token per 100 items of its limit (1 at the default of 100, 10 at
# 1,000). An events page with a filter costs 10 whatever its limit and order: it may read its
# whole budget (events.PAGE_BUDGET, 2,000 stream entries) before it finds one match. A
# revocation by IP address or of the whole tenant visits every bucket: 10. Every other call:
# one token.
PAGE: Final = Cost(per_items=100)
BULK: Final = Cost(filtered=10, filters=frozenset({"ipAddress", "all"}))
EVENTS_PAGE: Final = Cost(
    per_items=100, filtered=10, filters=frozenset({"type", "userId", "ipAddress"})
)

_SESSION_PAGE: Final = Answer("SessionList", "A page of sessions, newest first.")
_REVOKED_COUNT: Final = Answer("RevokedCount", "How many sessions were revoked.")

OPERATIONS: Final[tuple[Operation, ...]] = (
    Operation(
        "GET",
        "/users/{user_id}/sessions",
        list_user_sessions,
        "listUserSessions",
        "The user's active sessions, most recently active first (one page).",
        _SESSION_PAGE,
    ),
    Operation(
        "DELETE",
        "/users/{user_id}/sessions",
        revoke_user_sessions,
        "revokeUserSessions",
        "Revoke all of the user's sessions at once.",
        _REVOKED_COUNT,
    ),
    Operation(
        "DELETE",
        "/users/{user_id}/sessions/{session_id}",
        revoke_session,
        "revokeSession",
        "Revoke one session immediately.",
        Answer("RevokedSession", "The session was revoked."),
    ),
    Operation(
        "GET",
        "/sessions",
        list_sessions,
        "listSessions",
        "Active sessions across all users, newest first, optionally filtered.",
        _SESSION_PAGE,
        query=("userId", "ipAddress", "limit", "cursor"),
        cost=PAGE,
    ),
    Operation(
        "DELETE",
        "/sessions",
        revoke_sessions,
        "revokeSessions",
        "Revoke every active session that matches: from an IP address, of a user, or both. "
        "Without a filter it is refused (422) unless `all=true`, which revokes every session "
        "of the tenant. Each user's matching sessions end in one atomic step; the call "
        "returns when all are done.",
        _REVOKED_COUNT,
        query=("userId", "ipAddress", "all"),
        cost=BULK,
    ),
    Operation(
        "GET",
        "/events",
        list_events,
        "listEvents",
        "The tenant's session events (created, revoked, evicted, expired, mfa_verified): "
        "oldest first after a cursor (`after`; the default order, so a client's cursors keep "
        "their meaning and pages read on as events come, as webhooks do), or newest first "
        "before one (`order=desc`, `before`). Filters combine: type, user, IP address. 404 "
        "when the server records none (--events).",
        Answer("EventList", "A page of events, in the order asked for."),
        query=("order", "after", "before", "type", "userId", "ipAddress", "limit"),
        cost=EVENTS_PAGE,
    ),
    Operation(
        "GET",
        "/webhooks",
        list_webhooks,
        "listWebhooks",
        "The tenant's webhooks, oldest first.",
        Answer("WebhookList", "Every webhook of the tenant."),
    ),
    Operation(
        "POST",
        "/webhooks",
        create_webhook,
        "createWebhook",
        "Register an endpoint for the tenant's session events (Standard Webhooks: signed, in "
        "order, at least once, retried for 24 hours). It receives the events recorded from "
        "now on.",
        Answer("NewWebhook", "Registered; the secret is shown this once.", status=201),
        body=Body("WebhookRegistration", max_bytes=MAX_BODY),
        refusals={409: "Conflict"},
    ),
    Operation(
        "GET",
        "/webhooks/{webhook_id}",
        get_webhook,
        "getWebhook",
        "One webhook and its delivery state.",
        Answer("Webhook", "The webhook (never its secret)."),
    ),
    Operation(
        "DELETE",
        "/webhooks/{webhook_id}",
        delete_webhook,
        "deleteWebhook",
        "Remove a webhook at once (a delivery already in flight may still arrive).",
        Answer("RemovedWebhook", "It was removed."),
    ),
    Operation(
        "GET",
        "/webhooks/{webhook_id}/deliveries",
        list_webhook_deliveries,
        "listWebhookDeliveries",
        "The webhook's delivery log, newest first: each attempt's event, status code or "
        "error, duration and time (about the last 1000 are kept).",
        Answer("DeliveryList", "Delivery attempts, newest first."),
        query=("limit",),
        cost=PAGE,
    ),
)
