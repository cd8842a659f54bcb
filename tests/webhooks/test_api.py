"""The admin API's webhook endpoints, in-process: what they answer, what they refuse
(problem+json), and that every answer matches the OpenAPI document. Where webhooks live in
Redis is tested on every backend (test_registration.py); these run once, on the real Redis."""

from __future__ import annotations

import asyncio
import dataclasses
from collections import Counter
from collections.abc import AsyncIterator
from typing import Any

import httpx
import jsonschema_rs
import pytest

from sessionstore import AsyncSessionStore
from sessionstore.admin import create_app, openapi
from sessionstore.admin.apikeys import ApiKeys
from sessionstore.admin.app import route_of
from sessionstore.admin.ratelimit import Rate, RateLimits
from sessionstore.webhooks.registry import MAX_PER_TENANT
from tests import backends
from tests.api.helpers import CLIENT_ADDRESS, admin, bearer, is_problem
from tests.webhooks.conftest import DelivererFactory
from tests.webhooks.helpers import OTHER, TENANT, session_events
from tests.webhooks.receiver import Receiver


@pytest.fixture(params=backends.ONE_BACKEND)
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


UNLIMITED = RateLimits(
    per_key=Rate(10**6, 1), per_tenant=Rate(10**6, 1), failed_auth_per_ip=Rate(10**6, 1)
)
URL = "https://hooks.example.com/sessions"


@pytest.fixture
async def keys(astore: AsyncSessionStore) -> dict[str, str]:
    api_keys = ApiKeys(astore.client, astore.config.prefix)
    return {tenant: (await api_keys.create(tenant))[1] for tenant in (TENANT, OTHER)}


async def _client(astore: AsyncSessionStore, **options: Any) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(astore, limits=UNLIMITED, **options)
    transport = httpx.ASGITransport(app=app, client=CLIENT_ADDRESS)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        yield client


@pytest.fixture
async def api(astore: AsyncSessionStore) -> AsyncIterator[httpx.AsyncClient]:
    async for client in _client(astore):
        yield client


@pytest.fixture
async def api_private(astore: AsyncSessionStore) -> AsyncIterator[httpx.AsyncClient]:
    """A server whose operator allows private destinations (the receiver is on loopback)."""
    async for client in _client(astore, allow_private_destinations=True):
        yield client


def conforms(body: Any, schema: str) -> bool:
    document = openapi.document(TENANT)
    validator = jsonschema_rs.validator_for(
        {"components": document["components"], "$ref": f"#/components/schemas/{schema}"},
        validate_formats=True,
    )
    return bool(validator.is_valid(body))


async def test_register_list_deliver_log_remove(
    api_private: httpx.AsyncClient,
    keys: dict[str, str],
    astore: AsyncSessionStore,
    clock: backends.Clock,
    receiver: Receiver,
    deliverers: DelivererFactory,
) -> None:
    auth = bearer(keys[TENANT])
    created = await api_private.post(
        admin(TENANT, "/webhooks"),
        json={"url": receiver.url + "/hook", "types": ["session.revoked"]},
        headers=auth,
    )
    assert created.status_code == 201, created.text
    webhook = created.json()
    assert conforms(webhook, "NewWebhook")
    assert webhook["types"] == ["session.revoked"] and webhook["state"] == "enabled"
    receiver.secrets["/hook"] = webhook.pop("secret")

    listed = await api_private.get(admin(TENANT, "/webhooks"), headers=auth)
    assert listed.status_code == 200 and conforms(listed.json(), "WebhookList")
    assert listed.json() == {"data": [webhook]}  # the same, less the secret
    one = await api_private.get(admin(TENANT, f"/webhooks/{webhook['id']}"), headers=auth)
    assert one.json() == webhook and conforms(one.json(), "Webhook")

    path = admin(TENANT, f"/webhooks/{webhook['id']}/deliveries")
    assert (await api_private.get(path, headers=auth)).json() == {"data": []}
    await session_events(astore, clock, 2)
    assert await deliverers().run_once() == 2
    log = (await api_private.get(path, headers=auth)).json()
    assert conforms(log, "DeliveryList")
    assert [(a["outcome"], a["status"]) for a in log["data"]] == [("delivered", 200)] * 2
    assert receiver.delivered("/hook") == [a["eventId"] for a in reversed(log["data"])]
    assert len((await api_private.get(path + "?limit=1", headers=auth)).json()["data"]) == 1

    removed = await api_private.delete(admin(TENANT, f"/webhooks/{webhook['id']}"), headers=auth)
    assert removed.json() == {"id": webhook["id"], "removed": True}
    assert conforms(removed.json(), "RemovedWebhook")
    for method, suffix in [("GET", ""), ("DELETE", ""), ("GET", "/deliveries")]:
        gone = await api_private.request(
            method, admin(TENANT, f"/webhooks/{webhook['id']}{suffix}"), headers=auth
        )
        assert is_problem(gone, 404)


@pytest.mark.parametrize(
    ("body", "detail"),
    [
        (b"not json", "JSON object"),
        (b"[]", "JSON object"),
        (b'"https://hooks.example.com"', "JSON object"),
        (b"{}", "url is required"),
        (b'{"url": 42}', "url is required"),
        (b'{"url": "%s", "secret": "mine"}' % URL.encode(), "unknown field 'secret'"),
        (b'{"url": "%s", "types": "session.revoked"}' % URL.encode(), "types must be"),
        (b'{"url": "%s", "types": [1]}' % URL.encode(), "types must be"),
        (b'{"url": "%s", "types": []}' % URL.encode(), "event types are"),
        (b'{"url": "%s", "types": ["session.deleted"]}' % URL.encode(), "event types are"),
        (b'{"url": "ftp://hooks.example.com/"}', "url must be"),
        (b'{"url": "https://user:pw@hooks.example.com/"}', "url must be"),
        (b'{"url": "http://127.0.0.1:8080/"}', "loopback"),
        (b'{"url": "http://localhost/"}', "loopback"),
        (b'{"url": "http://169.254.169.254/latest"}', "link-local"),
        (b'{"url": "http://10.0.0.8/"}', "private"),
        (b'{"url": "%s"}' % (URL + "/" + "a" * 2048).encode(), "url must be"),
    ],
)
async def test_bad_registrations_are_422(
    api: httpx.AsyncClient, keys: dict[str, str], body: bytes, detail: str
) -> None:
    answer = await api.post(
        admin(TENANT, "/webhooks"),
        content=body,
        headers={**bearer(keys[TENANT]), "content-type": "application/json"},
    )
    assert is_problem(answer, 422), answer.text
    assert detail in answer.json()["detail"]
    assert (await api.get(admin(TENANT, "/webhooks"), headers=bearer(keys[TENANT]))).json() == {
        "data": []
    }


async def test_private_destinations_with_the_operators_allowance(
    api_private: httpx.AsyncClient, keys: dict[str, str]
) -> None:
    answer = await api_private.post(
        admin(TENANT, "/webhooks"),
        json={"url": "http://127.0.0.1:9/hook", "types": None},
        headers=bearer(keys[TENANT]),
    )
    assert answer.status_code == 201 and answer.json()["types"] is None


async def test_tenants_see_only_their_own_webhooks(
    api: httpx.AsyncClient, keys: dict[str, str]
) -> None:
    created = await api.post(
        admin(TENANT, "/webhooks"), json={"url": URL}, headers=bearer(keys[TENANT])
    )
    webhook_id = created.json()["id"]
    other = bearer(keys[OTHER])
    # With the other tenant's key: its own path finds nothing, this tenant's path is hidden.
    assert is_problem(await api.get(admin(OTHER, f"/webhooks/{webhook_id}"), headers=other), 404)
    assert is_problem(await api.delete(admin(OTHER, f"/webhooks/{webhook_id}"), headers=other), 404)
    assert (await api.get(admin(OTHER, "/webhooks"), headers=other)).json() == {"data": []}
    assert is_problem(await api.get(admin(TENANT, "/webhooks"), headers=other), 404)
    assert is_problem(
        await api.post(admin(TENANT, "/webhooks"), json={"url": URL}, headers=other), 404
    )
    assert is_problem(await api.get(admin(TENANT, "/webhooks")), 401)
    listed = await api.get(admin(TENANT, "/webhooks"), headers=bearer(keys[TENANT]))
    assert [w["id"] for w in listed.json()["data"]] == [webhook_id]


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/webhooks/wh_0000000000000000"),
        ("GET", "/webhooks/not-an-id"),
        ("DELETE", "/webhooks/wh_0000000000000000"),
        ("GET", "/webhooks/wh_0000000000000000/deliveries"),
        ("GET", "/webhooks/%7Bx%7D/deliveries"),
    ],
)
async def test_unknown_webhooks_are_404(
    api: httpx.AsyncClient, keys: dict[str, str], method: str, path: str
) -> None:
    answer = await api.request(method, admin(TENANT, path), headers=bearer(keys[TENANT]))
    assert is_problem(answer, 404)
    assert answer.json()["detail"] == "This tenant has no such webhook."


@pytest.mark.parametrize(
    "query",
    ["/webhooks?limit=5", "/webhooks/wh_0000000000000000/deliveries?limit=0",
     "/webhooks/wh_0000000000000000/deliveries?limit=1&limit=2",
     "/webhooks/wh_0000000000000000/deliveries?after=x"],
)  # fmt: skip
async def test_unknown_or_bad_query_parameters_are_422(
    api: httpx.AsyncClient, keys: dict[str, str], query: str
) -> None:
    assert is_problem(await api.get(admin(TENANT, query), headers=bearer(keys[TENANT])), 422)


async def test_a_tenant_at_its_limit_gets_409(api: httpx.AsyncClient, keys: dict[str, str]) -> None:
    auth = bearer(keys[TENANT])
    for n in range(MAX_PER_TENANT):
        created = await api.post(
            admin(TENANT, "/webhooks"), json={"url": f"{URL}/{n}"}, headers=auth
        )
        assert created.status_code == 201
    answer = await api.post(admin(TENANT, "/webhooks"), json={"url": URL}, headers=auth)
    assert is_problem(answer, 409)
    assert str(MAX_PER_TENANT) in answer.json()["detail"]


async def test_concurrent_registrations_stop_at_the_limit(
    astore: AsyncSessionStore, keys: dict[str, str]
) -> None:
    # A server may also cap a tenant's calls in flight (RateLimits.in_flight_per_tenant): lifted
    # here, so that all 50 reach registration at once.
    names = {field.name for field in dataclasses.fields(RateLimits)}
    lifted = {"in_flight_per_tenant": 100} if "in_flight_per_tenant" in names else {}
    app = create_app(astore, limits=dataclasses.replace(UNLIMITED, **lifted))
    transport = httpx.ASGITransport(app=app, client=CLIENT_ADDRESS)
    auth = bearer(keys[TENANT])
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as api:
        answers = await asyncio.gather(
            *(
                api.post(admin(TENANT, "/webhooks"), json={"url": f"{URL}/{n}"}, headers=auth)
                for n in range(50)
            )
        )
        listed = await api.get(admin(TENANT, "/webhooks"), headers=auth)
    assert Counter(answer.status_code for answer in answers) == {
        201: MAX_PER_TENANT,
        409: 50 - MAX_PER_TENANT,
    }
    assert all(is_problem(answer, 409) for answer in answers if answer.status_code != 201)
    assert len(listed.json()["data"]) == MAX_PER_TENANT


@pytest.mark.parametrize(
    ("url", "flag"),
    [
        ("http://169.254.169.254/latest/meta-data/", "--allow-metadata-destinations"),
        ("http://0xa9fea9fe/", "--allow-metadata-destinations"),
    ],
)
async def test_the_metadata_range_is_refused_where_private_destinations_are_allowed(
    api_private: httpx.AsyncClient, keys: dict[str, str], url: str, flag: str
) -> None:
    answer = await api_private.post(
        admin(TENANT, "/webhooks"), json={"url": url}, headers=bearer(keys[TENANT])
    )
    assert is_problem(answer, 422), answer.text
    assert flag in answer.json()["detail"]


async def test_the_metadata_range_with_the_operators_allowance(
    astore: AsyncSessionStore, keys: dict[str, str]
) -> None:
    app = create_app(astore, limits=UNLIMITED, allow_private_destinations=True)
    app.state.allow_metadata_destinations = True  # as serve --allow-metadata-destinations does
    transport = httpx.ASGITransport(app=app, client=CLIENT_ADDRESS)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as api:
        answer = await api.post(
            admin(TENANT, "/webhooks"),
            json={"url": "http://169.254.169.254/"},
            headers=bearer(keys[TENANT]),
        )
    assert answer.status_code == 201, answer.text


def test_the_document_describes_the_webhook_operations() -> None:
    paths = openapi.document(TENANT)["paths"]
    assert set(paths["/admin/webhooks"]) == {"get", "post"}
    assert set(paths["/admin/webhooks/{webhook_id}"]) == {"get", "delete"}
    assert set(paths["/admin/webhooks/{webhook_id}/deliveries"]) == {"get"}
    create = paths["/admin/webhooks"]["post"]
    assert {"201", "409", "422"} <= set(create["responses"]) and "200" not in create["responses"]
    assert create["requestBody"]["required"] is True


def test_routes_are_named_for_metrics_and_logs() -> None:
    assert route_of("/t/acme-corp/api/v1/admin/webhooks") == "/t/{tenant}/api/v1/admin/webhooks"
    assert (
        route_of("/t/acme-corp/api/v1/admin/webhooks/wh_0000000000000000/deliveries")
        == "/t/{tenant}/api/v1/admin/webhooks/{webhook_id}/deliveries"
    )
