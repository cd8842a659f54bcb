"""DBSC end to end, as the spec's client sees it: register, use, expiry, refresh, theft.

Each test runs on every backend; the main journeys also through both faces (the example app on
ASGI, its twin on WSGI), the finer points of the protocol through one, since both faces run the
same flows (dbsc.py). The client (client.py) signs its own proofs with ``cryptography``.
"""

from __future__ import annotations

from typing import Any

import pytest

from sessionstore._core.binding import BindingTerms
from tests.backends import Clock
from tests.dbsc.client import proof, sf_params, sf_string
from tests.dbsc.conftest import COOKIE_SECONDS, TENANT, Web

pytestmark = pytest.mark.usefixtures("backend")

EXPIRED = COOKIE_SECONDS + 1
one_face = pytest.mark.parametrize("face", ["asgi"])


@pytest.mark.parametrize("algorithm", ["ES256", "RS256"])
async def test_register_then_use(make_web: Any, algorithm: str) -> None:
    web: Web = make_web()
    browser = web.browser(algorithm)
    answer = await browser.login()
    offer = answer.header("secure-session-registration")
    assert offer is not None and offer.startswith("(ES256 RS256);path=")
    assert sf_params(offer)["path"] == "/.sessionstore/dbsc/register"
    instructions = browser.device.instructions
    assert instructions is not None
    assert instructions["session_identifier"] == answer.json()["id"]
    assert instructions["refresh_url"] == "/.sessionstore/dbsc/refresh"
    assert instructions["scope"] == {"include_site": False}
    assert instructions["credentials"] == [
        {
            "type": "cookie",
            "name": "sessionstore-bound",
            "attributes": "Path=/; HttpOnly; SameSite=Lax",
        }
    ]
    assert "sessionstore-bound" in browser.cookies
    me = await browser.me()
    assert me.status == 200 and me.json()["deviceBound"] is True
    assert await web.events() == [("session.created", None), ("session.bound", None)]


@one_face
async def test_without_dbsc_a_session_is_unaffected(make_web: Any) -> None:
    web: Web = make_web()
    browser = web.browser()
    await browser.login(register=False)
    me = await browser.me()
    assert me.status == 200 and me.json()["deviceBound"] is False


async def test_expiry_then_refresh_on_challenge(make_web: Any, clock: Clock) -> None:
    web: Web = make_web()
    browser = web.browser()
    await browser.login()
    browser.device.cached_challenge = None  # no challenge ahead of time: the 403 path
    clock.advance(EXPIRED)
    browser.drop_bound_cookie()
    assert (await browser.me()).status == 401  # what a browser never sends: it refreshes first
    first = await browser.send(
        "POST", "/.sessionstore/dbsc/refresh", browser.device.refresh_headers()
    )
    assert first.status == 403
    challenge = first.header("secure-session-challenge")
    assert challenge is not None
    assert sf_params(challenge)["id"] == browser.device.session_id
    assert first.header("content-type") == "application/problem+json"
    refreshed = await browser.send(
        "POST", "/.sessionstore/dbsc/refresh", browser.device.refresh_headers()
    )
    assert refreshed.status == 200, refreshed.content
    assert refreshed.json()["session_identifier"] == browser.device.session_id
    assert refreshed.header("x-frame-options") == "DENY"
    assert refreshed.header("access-control-allow-credentials") is None
    assert (await browser.me()).status == 200


@one_face
async def test_a_cached_challenge_refreshes_in_one_request(make_web: Any, clock: Clock) -> None:
    web: Web = make_web()
    browser = web.browser()
    await browser.login()
    assert browser.device.cached_challenge is not None  # sent with the registration's answer
    clock.advance(EXPIRED)
    browser.drop_bound_cookie()
    assert (await browser.refresh()).status == 200
    assert (await browser.me()).status == 200


@one_face
async def test_an_old_challenge_after_a_new_one(make_web: Any) -> None:
    web: Web = make_web()
    browser = web.browser()
    await browser.login()
    headers = {"sec-secure-session-id": sf_string(browser.device.session_id or "")}
    old = (await browser.send("POST", "/.sessionstore/dbsc/refresh", headers)).header(
        "secure-session-challenge"
    )
    new = (await browser.send("POST", "/.sessionstore/dbsc/refresh", headers)).header(
        "secure-session-challenge"
    )
    assert old and new and old != new
    # The signature over the older challenge arrives last: still recent, so it counts.
    for challenge in (new, old):
        answer = await browser.refresh(challenge.split('"')[1])
        assert answer.status == 200


@one_face
async def test_a_used_challenge_is_refused(make_web: Any) -> None:
    web: Web = make_web()
    browser = web.browser()
    await browser.login()
    headers = browser.device.refresh_headers()
    assert (await browser.send("POST", "/.sessionstore/dbsc/refresh", headers)).status == 200
    replay = await browser.send("POST", "/.sessionstore/dbsc/refresh", headers)
    assert replay.status == 403 and "set-cookie" not in replay.headers
    assert replay.header("secure-session-challenge")  # a fresh one to sign instead


@one_face
async def test_an_expired_challenge_is_refused(make_web: Any, clock: Clock) -> None:
    web: Web = make_web()
    browser = web.browser()
    await browser.login()
    headers = {"sec-secure-session-id": sf_string(browser.device.session_id or "")}
    asked = await browser.send("POST", "/.sessionstore/dbsc/refresh", headers)
    challenge = (asked.header("secure-session-challenge") or "").split('"')[1]
    clock.advance(BindingTerms().challenge_seconds + 1)
    late = await browser.send(
        "POST", "/.sessionstore/dbsc/refresh", browser.device.refresh_headers(challenge)
    )
    assert late.status == 403


@one_face
async def test_a_registration_is_used_once(make_web: Any) -> None:
    web: Web = make_web()
    browser = web.browser()
    answer = await browser.login(register=False)
    offer = answer.header("secure-session-registration") or ""
    path, headers = browser.device.registration(offer)
    assert (await browser.send("POST", path, headers)).status == 200
    again = await browser.send("POST", path, headers)
    assert again.status == 400 and again.header("content-type") == "application/problem+json"


async def test_a_thief_with_every_cookie_but_not_the_key(make_web: Any, clock: Clock) -> None:
    web: Web = make_web()
    owner = web.browser()
    await owner.login()
    thief = owner.copy_cookies()
    assert (await thief.me()).status == 200  # until the bound cookie expires
    clock.advance(EXPIRED)
    owner.drop_bound_cookie()
    expired = await thief.me()  # the thief's client keeps sending it: refused, recorded
    assert expired.status == 401
    # A refresh signed by the thief's own key: refused, recorded, no cookie.
    headers = {"sec-secure-session-id": sf_string(owner.device.session_id or "")}
    asked = await thief.send("POST", "/.sessionstore/dbsc/refresh", headers)
    assert asked.status == 403
    challenge = (asked.header("secure-session-challenge") or "").split('"')[1]
    forged = await thief.send(
        "POST", "/.sessionstore/dbsc/refresh", thief.device.refresh_headers(challenge)
    )
    assert forged.status == 401 and forged.json()["continue"] is False
    assert (await thief.me()).status == 401
    # The owner refreshes and goes on.
    assert (await owner.refresh()).status == 200
    assert (await owner.me()).status == 200
    events = await web.events()
    assert ("session.binding_failed", "bound_cookie_expired") in events
    assert ("session.binding_failed", "key_mismatch") in events
    assert ("session.revoked", "key_mismatch") not in events  # the default records only


@one_face
async def test_revoke_on_failure_ends_the_session(make_web: Any) -> None:
    web: Web = make_web(revoke_on_failure=True)
    owner = web.browser()
    await owner.login()
    thief = owner.copy_cookies()
    session_id = owner.device.session_id or ""
    forged = proof(thief.device.key, "anything", registration=False)
    headers = {
        "sec-secure-session-id": sf_string(session_id),
        "secure-session-response": sf_string(forged),
    }
    assert (await thief.send("POST", "/.sessionstore/dbsc/refresh", headers)).status == 401
    assert (await owner.me()).status == 401
    assert ("session.revoked", "key_mismatch") in await web.events()


@one_face
async def test_registering_another_key_for_a_bound_session(make_web: Any) -> None:
    web: Web = make_web()
    owner = web.browser()
    answer = await owner.login(register=False)
    offer = answer.header("secure-session-registration") or ""
    thief = owner.copy_cookies()
    assert (await owner.register(offer)).status == 200
    stolen = await thief.register(offer)  # the same offer, another key
    assert stolen.status == 401
    assert ("session.binding_failed", "key_mismatch") in await web.events()


async def test_revocation_ends_refresh(make_web: Any) -> None:
    web: Web = make_web()
    browser = web.browser()
    answer = await browser.login()
    await web.call("revoke", TENANT, 456, answer.json()["id"])
    ended = await browser.refresh()
    assert ended.status == 401  # a 4xx other than 403: the browser ends its session
    assert ended.json()["continue"] is False
    assert ended.header("content-type") == "application/problem+json"
    assert "sessionstore-bound" not in browser.cookies


@one_face
async def test_a_refresh_names_the_requests_own_session(make_web: Any) -> None:
    web: Web = make_web()
    browser = web.browser()
    await browser.login()
    other = web.browser()
    await other.login(457)
    mixed = {"sec-secure-session-id": sf_string(other.device.session_id or "")}
    assert (await browser.send("POST", "/.sessionstore/dbsc/refresh", mixed)).status == 401
    missing = await browser.send("POST", "/.sessionstore/dbsc/refresh")
    assert missing.status == 400


@one_face
async def test_authorization_is_repeated(make_web: Any) -> None:
    web: Web = make_web(authorization=True)
    browser = web.browser()
    answer = await browser.login(register=False)
    offer = answer.header("secure-session-registration") or ""
    sent = sf_params(offer)["authorization"]
    challenge = sf_params(offer)["challenge"]
    wrong = proof(browser.device.key, challenge, registration=True, authorization="x" + sent)
    refused = await browser.send(
        "POST", sf_params(offer)["path"], {"secure-session-response": sf_string(wrong)}
    )
    assert refused.status == 400
    assert (await browser.register(offer)).status == 200
