"""The server against its own OpenAPI document, with schemathesis' default checks.

Runs in-process (schemathesis' ASGI transport, on its own event loop thread) on the real Redis:
no 5xx, no undocumented status, header or content type, no response outside its schema.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import fakeredis
import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import negative_data_rejection, positive_data_acceptance

from sessionstore import AsyncSessionStore, InvalidArgument, SessionStore, StoreConfig, webhooks
from sessionstore.admin import create_app, openapi
from sessionstore.admin.apikeys import ApiKeys
from sessionstore.admin.ratelimit import Rate, RateLimits
from tests import backends
from tests.api.helpers import TENANT_A


@pytest.fixture(params=backends.ONE_BACKEND)
def backend(request: pytest.FixtureRequest) -> str:
    """The API against its document, on the real Redis only: the store under it is tested on
    every backend (backends.ONE_BACKEND)."""
    return str(request.param)


UNLIMITED = RateLimits(
    per_key=Rate(10**6, 1), per_tenant=Rate(10**6, 1), failed_auth_per_ip=Rate(10**6, 1)
)
UA = "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 Chrome/120.0 Safari/537.36"


async def _mint(backend: str, server: fakeredis.FakeServer, prefix: str) -> str:
    client = backends.async_client(backend, server)
    try:
        return (await ApiKeys(client, prefix).create(TENANT_A))[1]
    finally:
        await client.aclose()


@pytest.fixture
def seeded(store: SessionStore, backend: str, fake_server: Any, config: StoreConfig) -> dict:
    """Sessions for user 456 (the document's example) and a real cursor into them."""
    for n in range(3):
        store.create(TENANT_A, 456, ip_address=f"203.0.113.{n}", user_agent=UA)
    return {
        "key": asyncio.run(_mint(backend, fake_server, config.prefix)),
        "cursor": store.list_sessions(TENANT_A, limit=1).next_cursor,
    }


class CurrentApp:
    """The app under test: schemathesis wants a schema at import time, backends come later."""

    def __init__(self) -> None:
        # The document's route touches no store, so an idle embedded one serves the schema.
        self.app: Any = create_app(AsyncSessionStore())
        self.loop: asyncio.AbstractEventLoop | None = None

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        self.loop = asyncio.get_running_loop()  # schemathesis' own event loop thread
        await self.app(scope, receive, send)


current = CurrentApp()
schema = schemathesis.openapi.from_asgi(f"/t/{TENANT_A}/api/v1/openapi.json", current)
every_tenant = schemathesis.openapi.from_asgi("/openapi.json", current)


@pytest.fixture(autouse=True)
def app_on_backend(backend: str, fake_server: Any, config: StoreConfig) -> Iterator[None]:
    # A store of its own: its connections are made, and closed, on schemathesis' event loop.
    astore = AsyncSessionStore(backends.async_client(backend, fake_server), config=config)
    current.app = create_app(astore, limits=UNLIMITED)
    yield
    if current.loop is not None:
        asyncio.run_coroutine_threadsafe(astore.aclose(), current.loop).result(timeout=10)


SETTINGS = settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


def _documented_query(case: Any) -> set[str]:
    """The query parameters the document gives the case's operation."""
    parameters = case.operation.definition.raw.get("parameters", [])
    names = set()
    for parameter in parameters:
        if "$ref" in parameter:
            parameter = openapi.PARAMETERS[parameter["$ref"].rsplit("/", 1)[-1]]
        if parameter.get("in") == "query":
            names.add(parameter["name"])
    return names


def _call_and_validate(case: Any, seeded: dict) -> None:
    # A cursor is opaque: no schema can describe which strings the server issued, so valid
    # (positive) cases get a real one; invalid ones keep theirs and must be refused.
    if case.query and "cursor" in case.query and case.meta.generation.mode.is_positive:
        case.query["cursor"] = seeded["cursor"]
    # Nor can OpenAPI say "at least one of these parameters": a bulk revocation with no
    # filter and no all=true is refused (422, tested in test_endpoints) though each of its
    # parameters is optional, so acceptance of such positive cases is not checked.
    excluded = []
    query = case.query or {}
    sent = {name for name, value in query.items() if value not in ([], None)}
    if case.method == "DELETE" and case.path.endswith("/admin/sessions"):
        if not {"userId", "ipAddress", "all"} & sent:
            excluded.append(positive_data_acceptance)
    # Nor can it say "after= with the oldest-first order only, before= with order=desc
    # only": the other order's cursor is refused (422, tested in test_events_pages).
    if case.method == "GET" and case.path.endswith("/admin/events"):
        descending = query.get("order") == "desc"
        if ("after" in sent and descending) or ("before" in sent and not descending):
            excluded.append(positive_data_acceptance)
    # Nor can it say "a public destination, on a host that is a DNS name or an IPv4 address":
    # a URL the registration's own parser refuses (http://0? is 0.0.0.0, https://a.0 is
    # neither) is answered 422, as tests/webhooks checks.
    if case.method == "POST" and case.path.endswith("/admin/webhooks"):
        url = case.body.get("url") if isinstance(case.body, dict) else None
        try:
            webhooks.check_url(url)
        except InvalidArgument:
            excluded.append(positive_data_acceptance)
    # A generated parameter whose value is an empty list or None is not sent at all: a
    # "negative" case whose only fault is such an unknown parameter is valid on the wire.
    if set(query) - sent and sent <= _documented_query(case):
        excluded.append(negative_data_rejection)
    headers = {"Authorization": f"Bearer {seeded['key']}"}
    response = case.call(headers=headers)
    # A body over the operation's limit is refused for its size (413, documented) before a
    # byte of it is parsed: whether what it held was valid is then not the question. That it
    # is documented, and a problem, is still checked.
    if response.status_code == 413:
        excluded += [positive_data_acceptance, negative_data_rejection]
    case.validate_response(response, headers=headers, excluded_checks=excluded)


@schema.parametrize()
@SETTINGS
def test_api_conforms_to_its_document(case: Any, seeded: dict) -> None:
    _call_and_validate(case, seeded)


@every_tenant.parametrize()
@SETTINGS
def test_other_tenants_answer_as_documented(case: Any, seeded: dict) -> None:
    """The whole-API document, where the tenant varies: foreign tenants must answer 404."""
    _call_and_validate(case, seeded)
