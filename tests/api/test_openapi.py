"""The OpenAPI document: valid OpenAPI 3.1, served publicly, the same paths as the server."""

from __future__ import annotations

import httpx
import pytest
import schemathesis

from sessionstore.admin import openapi
from tests.api.helpers import is_problem

OPERATIONS = {
    ("get", "/admin/users/{user_id}/sessions"),
    ("delete", "/admin/users/{user_id}/sessions"),
    ("delete", "/admin/users/{user_id}/sessions/{session_id}"),
    ("get", "/admin/sessions"),
    ("delete", "/admin/sessions"),
    ("get", "/admin/events"),
    ("get", "/admin/webhooks"),
    ("post", "/admin/webhooks"),
    ("get", "/admin/webhooks/{webhook_id}"),
    ("delete", "/admin/webhooks/{webhook_id}"),
    ("get", "/admin/webhooks/{webhook_id}/deliveries"),
}


@pytest.mark.parametrize("tenant", [None, "acme-corp"])
def test_the_document_is_valid_openapi(tenant: str | None) -> None:
    schemathesis.openapi.from_dict(openapi.document(tenant)).validate()


def test_the_tenant_document_describes_every_operation() -> None:
    paths = openapi.document("acme-corp")["paths"]
    assert {(method, path) for path, item in paths.items() for method in item} == OPERATIONS
    assert openapi.document("acme-corp")["servers"] == [{"url": "/t/acme-corp/api/v1"}]


def test_the_whole_document_has_the_same_operations_under_each_tenant() -> None:
    paths = openapi.document()["paths"]
    prefix = "/t/{tenant}/api/v1"
    assert {(m, p.removeprefix(prefix)) for p, item in paths.items() for m in item} == OPERATIONS


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
