"""The OpenAPI document: valid OpenAPI 3.1, served publicly, the same operations as the server.

Nothing here lists the operations by hand: the route table (admin.routes.OPERATIONS) is the one
list, and the document, the router and the metric labels are each compared with it.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import UTC, datetime
from typing import Any

import httpx
import jsonschema_rs
import pytest
import schemathesis
from starlette.routing import BaseRoute, Mount, Route

from sessionstore import AsyncSessionStore, SessionStore
from sessionstore.admin import create_app, openapi
from sessionstore.admin.app import route_of
from sessionstore.admin.routes import ADMIN, ADMIN_BASE, API_BASE, OPERATIONS
from sessionstore.metrics import ApiMetrics
from sessionstore.webhooks import Attempt, Webhooks
from tests.api.helpers import TENANT_A, bearer, is_problem

# (method, path under the tenant's base URL), from the route table.
OPERATIONS_OFFERED = {(op.method.lower(), ADMIN + op.path) for op in OPERATIONS}


def documented(document: dict[str, Any], prefix: str = "") -> set[tuple[str, str]]:
    """The (method, path) of every operation a document describes, ``prefix`` taken off."""
    return {(m, p.removeprefix(prefix)) for p, item in document["paths"].items() for m in item}


def test_the_route_table_is_the_api() -> None:
    """A sanity check of the table itself: unique operationIds, one entry per method and path."""
    ids = [op.operation_id for op in OPERATIONS]
    assert len(set(ids)) == len(ids)
    assert len(OPERATIONS_OFFERED) == len(OPERATIONS)
    assert ("delete", "/admin/users/{user_id}/sessions/{session_id}") in OPERATIONS_OFFERED


@pytest.mark.parametrize("tenant", [None, "acme-corp"])
def test_the_document_is_valid_openapi(tenant: str | None) -> None:
    schemathesis.openapi.from_dict(openapi.document(tenant)).validate()


def test_the_tenant_document_describes_every_operation() -> None:
    assert documented(openapi.document("acme-corp")) == OPERATIONS_OFFERED
    assert openapi.document("acme-corp")["servers"] == [{"url": "/t/acme-corp/api/v1"}]


def test_the_whole_document_has_the_same_operations_under_each_tenant() -> None:
    assert documented(openapi.document(), "/t/{tenant}/api/v1") == OPERATIONS_OFFERED


def test_each_operation_is_documented_with_its_id_and_query() -> None:
    paths = openapi.document("acme-corp")["paths"]
    for op in OPERATIONS:
        described = paths[ADMIN + op.path][op.method.lower()]
        assert described["operationId"] == op.operation_id
        assert described["summary"] == op.summary
        assert str(op.answer.status) in described["responses"]
        names = [
            openapi.PARAMETERS[ref["$ref"].rsplit("/", 1)[-1]] for ref in described["parameters"]
        ]
        assert [p["name"] for p in names if p["in"] == "query"] == list(op.query)


# -- what the server serves, compared with the table ----------------------------------------------


def served(routes: Sequence[BaseRoute], prefix: str = "") -> Iterator[tuple[str, set[str], bool]]:
    """(path template, methods, opaque) of every route the app serves; ``opaque``: a mount
    whose routes are not known before its first request (the console's)."""
    for route in routes:
        if isinstance(route, Mount) and route.routes:
            yield from served(route.routes, prefix + route.path)
        elif isinstance(route, Mount):
            yield prefix + route.path, set(), True
        elif isinstance(route, Route):
            yield prefix + route.path, methods_of(route), False


def methods_of(route: Route) -> set[str]:
    if isinstance(route.endpoint, type):  # an HTTPEndpoint: a method per verb it answers
        verbs = ("get", "post", "put", "patch", "delete")
        return {verb.upper() for verb in verbs if hasattr(route.endpoint, verb)}
    return set(route.methods or ()) - {"HEAD"}


def sample(template: str) -> str:
    """A path that ``template`` matches: each parameter a plain value."""
    return template.replace("{", "x").replace("}", "") if "{" in template else template


@pytest.fixture(scope="module")
def serving() -> list[tuple[str, set[str], bool]]:
    return list(served(create_app(AsyncSessionStore()).routes))


def test_every_admin_operation_served_is_in_the_table_and_the_document(
    serving: list[tuple[str, set[str], bool]],
) -> None:
    admin = {
        (method, template)
        for template, methods, _ in serving
        if template.startswith(ADMIN_BASE + "/")
        for method in methods
    }
    assert admin == {(op.method, op.template) for op in OPERATIONS}
    whole = documented(openapi.document())
    assert {(method.lower(), template) for method, template in admin} == whole


def test_every_route_served_has_a_label_of_its_own(
    serving: list[tuple[str, set[str], bool]],
) -> None:
    """Metrics and logs name each route by its template; a route they do not know would be
    counted as ``other``, mixed with every unknown path."""
    assert {template for template, _, _ in serving} >= {API_BASE + "/openapi.json"}
    for template, _, opaque in serving:
        if opaque:
            assert route_of(sample(template) + "/any/page") == template
        else:
            assert route_of(sample(template)) == template
    assert route_of("/t/acme-corp/api/v1/admin/nothing-here") == ApiMetrics.OTHER


# -- schemas, compared with the models' own to_dict ------------------------------------------------


def conforms(value: dict[str, Any], schema: str) -> None:
    document = {
        "$ref": f"#/components/schemas/{schema}",
        "components": openapi.document()["components"],
    }
    jsonschema_rs.Draft202012Validator(document).validate(value)
    assert set(value) == set(openapi.SCHEMAS[schema]["properties"])


async def test_each_model_is_what_its_schema_says(
    store: SessionStore, astore: AsyncSessionStore
) -> None:
    session, _ = store.create(TENANT_A, 456, ip_address="203.0.113.9", user_agent="curl/8.0")
    conforms(session.to_dict(), "Session")
    page = store.list_sessions(TENANT_A)
    conforms(page.to_dict(), "SessionList")
    events = await astore.events(TENANT_A)
    assert events.data
    conforms(events.data[0].to_dict(), "Event")
    conforms(events.to_dict(), "EventList")
    webhook, _ = await Webhooks(astore).add(TENANT_A, "https://hooks.example.com/x")
    conforms(webhook.to_dict(), "Webhook")
    attempt = Attempt("1-0-aa", "failed", 500, "HTTP 500", 12.5, datetime.now(UTC))
    conforms(attempt.to_dict(), "DeliveryAttempt")


# -- the documents, served -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "tenant"), [("/openapi.json", None), ("/t/acme-corp/api/v1/openapi.json", "acme-corp")]
)
async def test_the_documents_are_served_without_a_key(
    api: httpx.AsyncClient, path: str, tenant: str | None
) -> None:
    response = await api.get(path)
    assert response.status_code == 200
    assert response.json() == openapi.document(tenant)


async def test_no_document_for_an_invalid_tenant(api: httpx.AsyncClient) -> None:
    assert is_problem(await api.get("/t/Not_A_Slug/api/v1/openapi.json"), 404)


async def test_a_body_over_the_limit_is_refused_as_the_document_says(
    api: httpx.AsyncClient, keys: dict[str, str]
) -> None:
    """Every operation that reads a body documents the 413 it answers past its limit (once
    undocumented: schemathesis found POST /admin/webhooks answering it)."""
    document = openapi.document(TENANT_A)
    with_body = [
        (method, path, operation)
        for path, item in document["paths"].items()
        for method, operation in item.items()
        if "requestBody" in operation
    ]
    assert with_body
    for method, path, operation in with_body:
        url = document["servers"][0]["url"] + sample(path)
        huge = b'{"url": "' + b"x" * (1 << 20) + b'"}'
        answer = await api.request(
            method,
            url,
            content=huge,
            headers={**bearer(keys[TENANT_A]), "content-type": "application/json"},
        )
        assert is_problem(answer, 413)
        assert "413" in operation["responses"], (method, path)
