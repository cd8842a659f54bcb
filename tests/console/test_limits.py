"""What one client can make the console hold: form bodies, sign-ins, live console sessions.

Body limits depend on no Redis semantics and run once, on an embedded store; sign-ins and
console sessions live in Redis and run on every backend.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from typing import Any

import fakeredis
import httpx
import pytest
from redis.crc import key_slot

from sessionstore import AsyncSessionStore, StoreConfig
from sessionstore.admin import create_app
from sessionstore.admin.apikeys import ApiKeys
from sessionstore.admin.console.auth import LOCAL_COOKIE, ConsoleSessions, ConsoleSettings
from sessionstore.admin.console.common import MAX_FORM_BYTES
from sessionstore.admin.ratelimit import Rate, RateLimits
from tests import backends
from tests.api.helpers import Body, admin, asgi_call, bearer, is_problem
from tests.console.test_security import (
    LOCAL,
    TENANT,
    client_for,
    console_keys,
    console_records,
    sign_in,
)

FORM = "application/x-www-form-urlencoded"
POSTS = [
    "/console/signin",
    "/console/signout",
    "/console/sessions/revoke",
    "/console/users/5/revoke-all",
    "/console/ip/revoke",
]


@pytest.fixture
async def key(astore: AsyncSessionStore) -> str:
    return (await ApiKeys(astore.client, astore.config.prefix).create(TENANT))[1]


@pytest.fixture
async def embedded() -> AsyncIterator[AsyncSessionStore]:
    astore = AsyncSessionStore(
        fakeredis.FakeAsyncRedis(), config=StoreConfig(prefix=backends.new_prefix())
    )
    yield astore
    await astore.aclose()


# -- every form the console reads stops at its limit ----------------------------------------------


@pytest.mark.parametrize("path", POSTS)
async def test_a_declared_oversized_form_is_refused_before_it_is_read(
    embedded: AsyncSessionStore, path: str
) -> None:
    body = Body(8 * 1024 * 1024)
    headers = {"content-type": FORM, "content-length": str(400 * 1024 * 1024)}
    answer = await asgi_call(create_app(embedded), "POST", path, headers=headers, body=body)
    assert answer.status == 413
    assert answer.headers["content-type"].startswith("text/html")  # the console's words
    assert body.pulled == 0


@pytest.mark.parametrize("path", POSTS)
async def test_a_streamed_form_is_cut_off_at_its_limit(
    embedded: AsyncSessionStore, path: str
) -> None:
    body = Body(1024 * 1024, chunk=512)
    answer = await asgi_call(
        create_app(embedded), "POST", path, headers={"content-type": FORM}, body=body
    )
    assert answer.status == 413
    assert MAX_FORM_BYTES < body.pulled <= MAX_FORM_BYTES + 512


# -- sign-ins spend the key's budget, and a key keeps a few console sessions ---------------------


async def test_sign_ins_are_charged_to_the_keys_limit_shared_with_the_api(
    astore: AsyncSessionStore, key: str, clock: backends.Clock
) -> None:
    app = create_app(astore, limits=RateLimits(per_key=Rate(50, 10)), clock=clock)
    answers = []
    async with client_for(app, LOCAL) as browser:
        for _ in range(60):
            browser.cookies.clear()  # a new browser each time: nothing is signed out
            answers.append(await sign_in(browser, key))
        assert [answer.status_code for answer in answers] == [303] * 50 + [429] * 10
        refused = answers[-1]
        assert refused.headers["retry-after"] == "1"  # one token per 0.2 s
        assert "set-cookie" not in refused.headers
        assert "Too many" in refused.text
        # One bucket: the API has nothing left for this key either.
        listing = await browser.get(admin(TENANT, "/sessions"), headers=bearer(key))
        assert is_problem(listing, 429)
        clock.advance(10)
        assert (await sign_in(browser, key)).status_code == 303


async def test_a_key_keeps_its_newest_console_sessions_only(
    astore: AsyncSessionStore, client: Any, prefix: str, key: str
) -> None:
    cap = 10  # the default
    cookies = []
    async with client_for(create_app(astore), LOCAL) as browser:
        for _ in range(cap + 3):
            browser.cookies.clear()
            assert (await sign_in(browser, key)).status_code == 303
            cookies.append(browser.cookies[LOCAL_COOKIE])
        assert len(console_records(client, prefix)) == cap
        assert len({key_slot(name) for name in console_keys(client, prefix)}) == 1
        browser.cookies.clear()
        for n, cookie in enumerate(cookies):
            page = await browser.get(
                "/console/sessions", headers={"Cookie": f"{LOCAL_COOKIE}={cookie}"}
            )
            # The three oldest were ended by the newest; every other one still works.
            assert page.status_code == (303 if n < 3 else 200), n
        assert len(console_records(client, prefix)) == cap
    assert ConsoleSettings().max_sessions_per_key == cap


async def test_ended_sessions_hold_no_place_and_each_key_has_its_own(
    astore: AsyncSessionStore, client: Any, prefix: str, key: str
) -> None:
    other = (await ApiKeys(astore.client, prefix).create(TENANT))[1]
    cookies = []
    async with client_for(create_app(astore), LOCAL) as browser:
        for _ in range(10):
            browser.cookies.clear()
            await sign_in(browser, key)
            cookies.append(browser.cookies[LOCAL_COOKIE])
        # One signs out, one goes idle (Redis drops its record): two places are free.
        signed_out = await browser.post(
            "/console/signout",
            data={"csrf": await _csrf(browser)},
            headers={"Sec-Fetch-Site": "same-origin"},
        )
        assert signed_out.status_code == 303
        client.delete(ConsoleSessions(None, prefix).record_key(cookies[5]))
        for _ in range(12):  # another key's sign-ins end none of this key's sessions
            browser.cookies.clear()
            await sign_in(browser, other)
        for _ in range(2):
            browser.cookies.clear()
            await sign_in(browser, key)
        browser.cookies.clear()
        oldest = {"Cookie": f"{LOCAL_COOKIE}={cookies[0]}"}
        assert (await browser.get("/console/sessions", headers=oldest)).status_code == 200
    assert len(console_records(client, prefix)) == 20
    assert len(console_keys(client, prefix)) == 22  # and each key's list


async def _csrf(browser: httpx.AsyncClient) -> str:
    page = await browser.get("/console/sessions")
    match = re.search(r'name="csrf" value="([^"]+)"', page.text)
    assert match, page.text
    return match[1]
