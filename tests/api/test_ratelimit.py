"""Rate limits: per API key, per tenant, and failed authentication per client address."""

from __future__ import annotations

import httpx
import pytest

from sessionstore import AsyncSessionStore, InvalidArgument
from sessionstore.admin import create_app
from sessionstore.admin.apikeys import ApiKeys
from sessionstore.admin.ratelimit import Limiter, Rate, RateLimits, retry_after
from tests import backends
from tests.api.helpers import TENANT_A, TENANT_B, admin, bearer, is_problem

# -- the bucket ---------------------------------------------------------------------------------


def test_a_bucket_admits_its_burst_then_refills_steadily() -> None:
    clock = backends.Clock()
    limiter = Limiter(Rate(3, 6), clock=clock)
    assert [limiter.acquire("a") for _ in range(3)] == [0, 0, 0]
    assert limiter.acquire("a") == pytest.approx(2)  # one token every 2 s
    assert limiter.acquire("b") == 0
    clock.advance(2)
    assert limiter.acquire("a") == 0
    assert limiter.acquire("a") > 0


def test_forgetting_idle_buckets_bounds_memory() -> None:
    limiter = Limiter(Rate(1, 60), clock=backends.Clock(), max_names=2)
    for name in ("a", "b", "c"):
        limiter.acquire(name)
    assert limiter.acquire("c") > 0
    assert limiter.acquire("a") == 0  # forgotten, so full again


@pytest.mark.parametrize(
    ("text", "rate"), [("1000/10", Rate(1000, 10)), ("5/0.5s", Rate(5, 0.5)), (" 1/1 ", Rate(1, 1))]
)
def test_rates_parse(text: str, rate: Rate) -> None:
    assert Rate.parse(text) == rate


@pytest.mark.parametrize("text", ["", "10", "0/1", "1/0", "-1/5", "a/b", "1/5m"])
def test_bad_rates_are_refused(text: str) -> None:
    with pytest.raises(InvalidArgument):
        Rate.parse(text)


def test_retry_after_is_whole_seconds_rounded_up() -> None:
    assert [retry_after(w) for w in (0.01, 1.0, 1.2)] == ["1", "1", "2"]


# -- the API --------------------------------------------------------------------------------------


@pytest.fixture
def limits() -> RateLimits:
    return RateLimits(per_key=Rate(3, 60), per_tenant=Rate(5, 60), failed_auth_per_ip=Rate(2, 60))


async def test_one_key_flooding_gets_429_and_other_tenants_do_not(
    api: httpx.AsyncClient, keys: dict
) -> None:
    url_a, url_b = admin(TENANT_A, "/sessions"), admin(TENANT_B, "/sessions")
    statuses = [
        (await api.get(url_a, headers=bearer(keys[TENANT_A]))).status_code for _ in range(3)
    ]
    assert statuses == [200, 200, 200]

    limited = await api.get(url_a, headers=bearer(keys[TENANT_A]))

    assert is_problem(limited, 429)
    assert int(limited.headers["retry-after"]) >= 1
    assert (await api.get(url_b, headers=bearer(keys[TENANT_B]))).status_code == 200


async def test_a_tenant_is_limited_across_its_keys(
    api: httpx.AsyncClient, api_keys: ApiKeys, keys: dict
) -> None:
    url = admin(TENANT_A, "/sessions")
    second = (await api_keys.create(TENANT_A))[1]
    statuses = [
        (await api.get(url, headers=bearer(key))).status_code
        for key in [keys[TENANT_A], second] * 3
    ]
    assert statuses == [200] * 5 + [429]
    assert (
        await api.get(admin(TENANT_B, "/sessions"), headers=bearer(keys[TENANT_B]))
    ).status_code == 200


async def test_a_foreign_flood_is_charged_to_the_senders_tenant(
    api: httpx.AsyncClient, api_keys: ApiKeys, keys: dict
) -> None:
    url_b = admin(TENANT_B, "/sessions")
    second = (await api_keys.create(TENANT_A))[1]
    for key in [keys[TENANT_A], second] * 2 + [keys[TENANT_A]]:
        assert is_problem(await api.get(url_b, headers=bearer(key)), 404)
    # Tenant A's budget of 5 is spent; tenant B's is whole.
    assert (await api.get(admin(TENANT_A, "/sessions"), headers=bearer(second))).status_code == 429
    statuses = [
        (await api.get(url_b, headers=bearer(keys[TENANT_B]))).status_code for _ in range(3)
    ]
    assert statuses == [200, 200, 200]


async def test_the_bucket_refills(
    api: httpx.AsyncClient, keys: dict, clock: backends.Clock
) -> None:
    url = admin(TENANT_A, "/sessions")
    for _ in range(3):
        await api.get(url, headers=bearer(keys[TENANT_A]))
    assert (await api.get(url, headers=bearer(keys[TENANT_A]))).status_code == 429
    clock.advance(20)  # one token per 20 s
    assert (await api.get(url, headers=bearer(keys[TENANT_A]))).status_code == 200


async def test_repeated_bad_keys_from_one_address_are_slowed(
    astore: AsyncSessionStore, limits: RateLimits, keys: dict, clock: backends.Clock
) -> None:
    app = create_app(astore, limits=limits, clock=clock)
    url = "http://testserver" + admin(TENANT_A, "/sessions")

    def client_at(address: str) -> httpx.AsyncClient:
        return httpx.AsyncClient(transport=httpx.ASGITransport(app=app, client=(address, 4000)))

    async with client_at("127.0.0.7") as guesser, client_at("127.0.0.8") as neighbour:
        guesses = [
            (await guesser.get(url, headers=bearer(f"sk_live_{n}"))).status_code for n in range(3)
        ]
        assert guesses == [401, 401, 429]
        slowed = await guesser.get(url, headers=bearer("sk_live_again"))
        assert is_problem(slowed, 429) and "retry-after" in slowed.headers
        # A valid key from the same address still works; other addresses are not slowed.
        assert (await guesser.get(url, headers=bearer(keys[TENANT_A]))).status_code == 200
        assert (await neighbour.get(url, headers=bearer("sk_live_x"))).status_code == 401
        # Asking without any key is not a guess.
        assert (await guesser.get(url)).status_code == 401
        clock.advance(30)
        assert (await guesser.get(url, headers=bearer("sk_live_later"))).status_code == 401
