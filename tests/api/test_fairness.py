"""Fairness between tenants on one admin server: what a call costs in rate-limit tokens (a
declared property of its route), and how many calls of one tenant may be in flight at once."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from typing import Any

import httpx
import pytest
from starlette.routing import Route

from sessionstore import AsyncSessionStore, StoreUnavailable
from sessionstore.admin import app as admin_app
from sessionstore.admin import create_app
from sessionstore.admin.apikeys import ApiKeys
from sessionstore.admin.ratelimit import Cost, InFlight, Limiter, Rate, RateLimits
from tests import backends
from tests.api.helpers import TENANT_A, TENANT_B, admin, bearer, is_problem

# -- the pieces -----------------------------------------------------------------------------------


def test_a_call_takes_as_many_tokens_as_it_costs() -> None:
    clock = backends.Clock()
    limiter = Limiter(Rate(20, 20), clock=clock)  # one token a second
    assert limiter.acquire("a", 10) == 0
    assert limiter.acquire("a", 10) == 0
    assert limiter.acquire("a", 10) == pytest.approx(10)  # ten tokens short
    assert limiter.acquire("a") == pytest.approx(1)
    clock.advance(10)
    assert limiter.acquire("a", 10) == 0


def test_a_call_costing_more_than_the_bucket_takes_the_whole_bucket() -> None:
    """Else it could never get through: the cost is capped at the bucket's capacity."""
    clock = backends.Clock()
    limiter = Limiter(Rate(3, 3), clock=clock)
    assert limiter.acquire("a", 10) == 0
    assert limiter.acquire("a") > 0
    clock.advance(3)
    assert limiter.acquire("a", 10) == 0


@pytest.mark.parametrize(
    ("cost", "query", "tokens"),
    [
        (Cost(), {}, 1),
        (Cost(), {"limit": "1000"}, 1),
        (Cost(per_items=100), {}, 1),  # the default limit, 100
        (Cost(per_items=100), {"limit": "1000"}, 10),
        (Cost(per_items=100), {"limit": "101"}, 2),
        (Cost(per_items=100), {"limit": "1"}, 1),
        (Cost(per_items=100), {"limit": "0100"}, 1),  # refused (422) before any Redis call
        (Cost(per_items=100), {"limit": "x"}, 1),
        (Cost(per_items=100, filtered=10, filters=frozenset({"type"})), {"type": "a"}, 10),
        (Cost(per_items=100, filtered=10, filters=frozenset({"type"})), {"limit": "300"}, 3),
    ],
)
def test_a_cost_is_read_from_the_query(cost: Cost, query: dict[str, str], tokens: int) -> None:
    assert cost.tokens(query) == tokens


def test_in_flight_places_are_counted_per_name_and_forgotten_at_zero() -> None:
    places = InFlight(2)
    assert places.enter("a") and places.enter("a")
    assert not places.enter("a")
    assert places.enter("b")
    places.leave("a")
    assert places.enter("a")
    for name in ("a", "a", "b"):
        places.leave(name)
    assert len(places) == 0


def test_a_heavy_call_has_its_own_smaller_cap() -> None:
    places = InFlight(3, 1)
    assert places.enter("a", heavy=True)
    assert not places.enter("a", heavy=True)
    assert places.enter("a") and places.enter("a")
    assert not places.enter("a")  # three in all
    places.leave("a", heavy=True)
    assert places.full("a", heavy=True) is False and places.enter("a", heavy=True)


def test_every_declared_cost_names_an_admin_route() -> None:
    """The cost table is the one place a route's price is said; a stale entry is a mistake."""
    app = create_app(AsyncSessionStore())
    tenant = next(r for r in app.routes if getattr(r, "path", "") == "/t/{tenant}/api/v1")
    mount = next(r for r in tenant.routes if getattr(r, "path", "") == "/admin")  # type: ignore[attr-defined]
    offered = {
        (route.path, method.upper())
        for route in mount.routes
        if isinstance(route, Route)  # each an HTTPEndpoint: a method per verb it answers
        for method in ("get", "post", "put", "patch", "delete")
        if hasattr(route.endpoint, method)
    }
    assert ("/users/{user_id}/sessions", "DELETE") in offered
    assert set(admin_app.ROUTE_COSTS) <= offered
    assert admin_app.ROUTE_COSTS[("/events", "GET")].tokens({"type": "session.revoked"}) == 10
    assert admin_app.ROUTE_COSTS[("/sessions", "GET")].tokens({"limit": "1000"}) == 10


# -- costs through the API ------------------------------------------------------------------------


@pytest.fixture
def limits() -> RateLimits:
    # Tenant A's budget is 20 tokens a minute; its key's is out of the way.
    return RateLimits(per_key=Rate(1000, 60), per_tenant=Rate(20, 60))


async def statuses(api: httpx.AsyncClient, key: str, paths: list[str]) -> list[int]:
    return [
        (await api.get(admin(TENANT_A, path), headers=bearer(key))).status_code for path in paths
    ]


async def test_a_page_costs_a_token_per_hundred_of_its_limit(
    api: httpx.AsyncClient, keys: dict
) -> None:
    assert await statuses(api, keys[TENANT_A], ["/sessions?limit=1000"] * 3) == [200, 200, 429]
    b = await api.get(admin(TENANT_B, "/sessions?limit=1000"), headers=bearer(keys[TENANT_B]))
    assert b.status_code == 200


async def test_a_simple_call_costs_one_token(api: httpx.AsyncClient, keys: dict) -> None:
    assert await statuses(api, keys[TENANT_A], ["/users/1/sessions"] * 21) == [200] * 20 + [429]


async def test_an_events_page_costs_by_its_limit_and_a_filtered_one_as_much_as_its_budget(
    api: httpx.AsyncClient, keys: dict
) -> None:
    """A filter can make a page read its whole budget before it finds one match, so a
    filtered page costs 10 tokens whatever its limit; an unfiltered one stops at its limit."""
    paths = ["/events"] * 5 + ["/events?limit=1&type=session.revoked", "/events?limit=600"]
    assert await statuses(api, keys[TENANT_A], paths) == [200] * 6 + [429]
    assert await statuses(api, keys[TENANT_A], ["/events?limit=1&userId=7"]) == [429]
    assert await statuses(api, keys[TENANT_A], ["/events"] * 5 + ["/events"]) == [200] * 5 + [429]


async def test_retry_after_says_when_the_calls_own_tokens_are_back(
    api: httpx.AsyncClient, keys: dict
) -> None:
    await statuses(api, keys[TENANT_A], ["/sessions?limit=1000"] * 2)  # 20 tokens: all gone
    auth = bearer(keys[TENANT_A])
    page = await api.get(admin(TENANT_A, "/sessions?limit=1000"), headers=auth)
    simple = await api.get(admin(TENANT_A, "/users/1/sessions"), headers=auth)
    assert is_problem(page, 429) and page.headers["retry-after"] == "30"  # a token per 3 s
    assert is_problem(simple, 429) and simple.headers["retry-after"] == "3"


async def test_a_call_to_another_tenant_costs_its_sender_one_token(
    api: httpx.AsyncClient, keys: dict
) -> None:
    """It is answered 404 before any work, so its route's price does not apply."""
    for _ in range(19):
        other = await api.get(
            admin(TENANT_B, "/sessions?limit=1000"), headers=bearer(keys[TENANT_A])
        )
        assert is_problem(other, 404)
    assert await statuses(api, keys[TENANT_A], ["/users/1/sessions"] * 2) == [200, 429]


# -- calls in flight ------------------------------------------------------------------------------


class Held:
    """Tenant A's list_user_sessions waits until released; everyone else's runs at once."""

    def __init__(self, astore: AsyncSessionStore, monkeypatch: pytest.MonkeyPatch) -> None:
        self.entered = 0
        self.release = asyncio.Event()
        self.fail = False
        original = astore.list_user_sessions

        async def held(tenant: str, user_id: int) -> Any:
            if tenant == TENANT_A:
                self.entered += 1
                await self.release.wait()
                if self.fail:
                    raise StoreUnavailable("Redis is gone (a test)")
            return await original(tenant, user_id)

        monkeypatch.setattr(astore, "list_user_sessions", held)

    async def until_entered(self, count: int) -> None:
        for _ in range(1000):
            if self.entered >= count:
                return
            await asyncio.sleep(0.005)
        raise AssertionError(f"{self.entered} of {count} calls got in")


def call(api: httpx.AsyncClient, key: str, tenant: str = TENANT_A) -> Awaitable[httpx.Response]:
    return asyncio.wait_for(api.get(admin(tenant, "/users/1/sessions"), headers=bearer(key)), 5)


async def in_flight(
    api: httpx.AsyncClient, held: Held, keys: list[str]
) -> list[asyncio.Task[httpx.Response]]:
    tasks = [asyncio.create_task(call(api, key)) for key in keys]
    await held.until_entered(len(keys))
    return tasks


async def test_a_tenant_has_at_most_four_calls_in_flight_and_no_other_tenant_waits(
    api: httpx.AsyncClient, astore: AsyncSessionStore, keys: dict, monkeypatch: pytest.MonkeyPatch
) -> None:
    held = Held(astore, monkeypatch)
    tasks = await in_flight(api, held, [keys[TENANT_A]] * 4)

    fifth = await call(api, keys[TENANT_A])
    other_tenant = await call(api, keys[TENANT_B], TENANT_B)

    assert is_problem(fifth, 429) and fifth.headers["retry-after"] == "1"
    assert other_tenant.status_code == 200
    held.release.set()
    assert [(await task).status_code for task in tasks] == [200] * 4
    # Their places are given back.
    held.release.clear()
    again = await in_flight(api, held, [keys[TENANT_A]] * 4)
    held.release.set()
    assert [(await task).status_code for task in again] == [200] * 4


async def test_one_heavy_call_at_a_time_and_simple_ones_beside_it(
    api: httpx.AsyncClient, astore: AsyncSessionStore, keys: dict, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A heavy call (HEAVY tokens or more: here a filtered events page) runs alone among the
    tenant's heavy calls; its simple calls still get in beside it."""
    release = asyncio.Event()
    started = asyncio.Event()
    original = astore.events

    async def slow_events(tenant: str, **query: Any) -> Any:
        started.set()
        await release.wait()
        return await original(tenant, **query)

    monkeypatch.setattr(astore, "events", slow_events)
    auth = bearer(keys[TENANT_A])
    heavy = asyncio.create_task(
        api.get(admin(TENANT_A, "/events?type=session.revoked"), headers=auth)
    )
    await asyncio.wait_for(started.wait(), 5)

    second = await asyncio.wait_for(
        api.get(admin(TENANT_A, "/sessions?limit=500"), headers=auth), 5
    )
    light = await call(api, keys[TENANT_A])

    assert is_problem(second, 429) and second.headers["retry-after"] == "1"
    assert light.status_code == 200
    release.set()
    assert (await heavy).status_code == 200
    again = await api.get(admin(TENANT_A, "/sessions?limit=500"), headers=auth)
    assert again.status_code == 200


async def test_heavy_calls_are_paced_and_simple_ones_are_not(
    astore: AsyncSessionStore, keys: dict, clock: backends.Clock
) -> None:
    """Five heavy calls a second per tenant, on top of their tokens (raised out of the way
    here): a full bucket cannot be spent on heavy calls back to back."""
    plenty = Rate(10**6, 1)
    app = create_app(astore, limits=RateLimits(per_key=plenty, per_tenant=plenty), clock=clock)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as api:
        heavy = ["/events?type=session.revoked"] * 5 + ["/sessions?limit=1000"]
        assert await statuses(api, keys[TENANT_A], heavy) == [200] * 5 + [429]
        paced = await api.get(admin(TENANT_A, "/events?userId=1"), headers=bearer(keys[TENANT_A]))
        assert is_problem(paced, 429) and paced.headers["retry-after"] == "1"
        assert await statuses(api, keys[TENANT_A], ["/sessions", "/users/1/sessions"]) == [200] * 2
        b = await api.get(admin(TENANT_B, "/sessions?limit=1000"), headers=bearer(keys[TENANT_B]))
        assert b.status_code == 200  # another tenant's pace is its own
        clock.advance(0.2)
        assert await statuses(api, keys[TENANT_A], heavy[:2]) == [200, 429]


async def test_the_cap_is_the_tenants_across_its_keys(
    api: httpx.AsyncClient,
    api_keys: ApiKeys,
    astore: AsyncSessionStore,
    keys: dict,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    second = (await api_keys.create(TENANT_A))[1]
    held = Held(astore, monkeypatch)
    tasks = await in_flight(api, held, [keys[TENANT_A], second] * 2)
    assert is_problem(await call(api, second), 429)
    held.release.set()
    await asyncio.gather(*tasks)


async def test_a_call_that_fails_gives_its_place_back(
    api: httpx.AsyncClient, astore: AsyncSessionStore, keys: dict, monkeypatch: pytest.MonkeyPatch
) -> None:
    held = Held(astore, monkeypatch)
    held.fail = True
    tasks = await in_flight(api, held, [keys[TENANT_A]] * 4)
    held.release.set()
    assert [(await task).status_code for task in tasks] == [503] * 4
    held.release.clear()
    again = await in_flight(api, held, [keys[TENANT_A]] * 4)
    held.release.set()
    assert [(await task).status_code for task in again] == [503] * 4


async def test_a_call_refused_for_the_cap_spends_no_tokens(
    astore: AsyncSessionStore, keys: dict, clock: backends.Clock, monkeypatch: pytest.MonkeyPatch
) -> None:
    limits = RateLimits(per_key=Rate(1000, 60), per_tenant=Rate(5, 60))
    app = create_app(astore, limits=limits, clock=clock)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as api:
        held = Held(astore, monkeypatch)
        tasks = await in_flight(api, held, [keys[TENANT_A]] * 4)  # 4 of 5 tokens
        for _ in range(3):
            assert (await call(api, keys[TENANT_A])).status_code == 429  # the cap: no token
        held.release.set()
        await asyncio.gather(*tasks)
        assert (await call(api, keys[TENANT_A])).status_code == 200  # the fifth token
        assert (await call(api, keys[TENANT_A])).status_code == 429  # now the rate


async def test_the_cap_is_configurable(
    astore: AsyncSessionStore, keys: dict, monkeypatch: pytest.MonkeyPatch
) -> None:
    app = create_app(astore, limits=RateLimits(in_flight_per_tenant=1))
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as api:
        held = Held(astore, monkeypatch)
        tasks = await in_flight(api, held, [keys[TENANT_A]])
        assert (await call(api, keys[TENANT_A])).status_code == 429
        held.release.set()
        await asyncio.gather(*tasks)
