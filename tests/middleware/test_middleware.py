"""Both middlewares, on every backend: who gets through, at what cost in Redis round trips."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from sessionstore import SessionStore
from tests.backends import Clock
from tests.middleware.apps import TENANT
from tests.middleware.conftest import COOKIE, LAPTOP, session_cookie

USER = 456
MALFORMED = "sst_not-a-token"


def new_token(store: SessionStore, user_id: int = USER) -> tuple[str, str]:
    session, token = store.create(TENANT, user_id, ip_address="198.51.100.7", user_agent=LAPTOP)
    return session.id, token


def cookie(token: str) -> dict[str, str]:
    return {"cookie": f"theme=dark; {COOKIE}={token}"}


def bearer(token: str) -> dict[str, str]:
    return {"authorization": f"Bearer {token}"}


def assert_problem(response: Any, status: int) -> None:
    assert response.status_code == status
    assert response.headers["content-type"] == "application/problem+json"
    assert response.headers["cache-control"] == "no-store"
    body = response.json()
    assert body["status"] == status and body["type"] == "about:blank" and body["detail"]


async def test_no_token_is_anonymous_without_a_redis_call(make_web: Any) -> None:
    web = make_web()
    response = await web.device().get("/whoami", headers={"cookie": "theme=dark"})
    assert response.status_code == 200
    assert response.json() == {"session": None, "state": None}
    assert web.trips.count == 0


async def test_required_without_token_is_401_without_a_redis_call(make_web: Any) -> None:
    web = make_web(required=True)
    response = await web.device().get("/whoami")
    assert_problem(response, 401)
    # No credentials at all: a bare challenge, no error code (RFC 6750 3.1).
    assert response.headers["www-authenticate"] == "Bearer"
    assert session_cookie(response) is None
    assert web.trips.count == 0


@pytest.mark.parametrize("required", [False, True])
async def test_cookie_token_authenticates_in_one_round_trip(
    make_web: Any, store: SessionStore, required: bool
) -> None:
    web = make_web(required=required)
    session_id, token = new_token(store)
    response = await web.device().get("/whoami", headers=cookie(token))
    assert response.json() == {"session": session_id, "state": session_id}
    assert session_cookie(response) is None
    assert web.trips.count == 1


async def test_bearer_token_authenticates(make_web: Any, store: SessionStore) -> None:
    web = make_web(required=True)
    session_id, token = new_token(store)
    response = await web.device().get("/whoami", headers={"authorization": f"bearer  {token} "})
    assert response.json()["session"] == session_id
    assert web.trips.count == 1


async def test_other_authorization_schemes_are_no_token(make_web: Any, store: SessionStore) -> None:
    web = make_web(required=True)
    _, token = new_token(store)
    response = await web.device().get("/whoami", headers={"authorization": f"Basic {token}"})
    assert response.headers["www-authenticate"] == "Bearer"
    assert web.trips.count == 0


@pytest.mark.parametrize("source", ["cookie", "header"])
async def test_required_rejects_an_unknown_token(
    make_web: Any, store: SessionStore, source: str
) -> None:
    web = make_web(required=True)
    _, token = new_token(store)
    forged = token[:-1] + ("A" if token[-1] != "A" else "B")
    headers = cookie(forged) if source == "cookie" else bearer(forged)
    response = await web.device().get("/whoami", headers=headers)
    assert_problem(response, 401)
    assert response.headers["www-authenticate"] == 'Bearer error="invalid_token"'
    assert forged not in response.text
    cleared = session_cookie(response)
    # A rejected cookie is dropped; a header token is the client's business.
    if source == "cookie":
        assert cleared is not None and "Max-Age=0" in cleared
    else:
        assert cleared is None


async def test_malformed_token_is_rejected_without_a_redis_call(make_web: Any) -> None:
    web = make_web(required=True)
    response = await web.device().get("/whoami", headers=cookie(MALFORMED))
    assert_problem(response, 401)
    assert response.headers["www-authenticate"] == 'Bearer error="invalid_token"'
    assert web.trips.count == 0


async def test_optional_passes_a_rejected_cookie_on_as_anonymous_and_drops_it(
    make_web: Any, store: SessionStore
) -> None:
    web = make_web()
    device = web.device()
    await device.login(USER)
    session_id = (await device.get("/whoami")).json()["session"]
    assert store.revoke(TENANT, USER, session_id)
    before = web.trips.count
    response = await device.get("/whoami")
    assert response.status_code == 200
    assert response.json() == {"session": None, "state": None}
    cleared = session_cookie(response)
    assert cleared is not None and "Max-Age=0" in cleared
    # The jar dropped it, so the next request is anonymous without a Redis call.
    assert COOKIE not in device.cookies
    await device.get("/whoami")
    assert web.trips.count == before + 1


async def test_expired_token_is_rejected(make_web: Any, store: SessionStore, clock: Clock) -> None:
    web = make_web(required=True)
    _, token = new_token(store)
    clock.advance(timedelta(hours=24).total_seconds() + 1)
    response = await web.device().get("/whoami", headers=cookie(token))
    assert_problem(response, 401)


async def test_revoked_token_is_rejected_on_its_very_next_request(
    make_web: Any, store: SessionStore
) -> None:
    web = make_web(required=True)
    session_id, token = new_token(store)
    device = web.device()
    assert (await device.get("/whoami", headers=bearer(token))).status_code == 200
    assert store.revoke(TENANT, USER, session_id)
    assert_problem(await device.get("/whoami", headers=bearer(token)), 401)


async def test_excluded_paths_need_no_session_but_still_show_it(
    make_web: Any, store: SessionStore
) -> None:
    web = make_web(required=True, exclude_paths=["/health", "/whoami/"])
    session_id, token = new_token(store)
    device = web.device()
    # No token: no Redis call, and no 401 either.
    assert (await device.get("/health")).text == "ok"
    assert (await device.get("/whoami")).json() == {"session": None, "state": None}
    assert web.trips.count == 0
    # A valid cookie still shows who is signed in; a rejected one passes as anonymous.
    response = await device.get("/whoami", headers=cookie(token))
    assert response.json() == {"session": session_id, "state": session_id}
    forged_token = token[:-1] + ("A" if token[-1] != "A" else "B")
    forged = await device.get("/whoami", headers=cookie(forged_token))
    assert forged.status_code == 200 and forged.json()["session"] is None


@pytest.mark.parametrize(
    ("path", "excluded"),
    [
        ("/health", True),
        ("/health/", True),
        ("/health/deep", True),
        ("/healthz", False),  # a path segment, not a string prefix
        ("/Health", False),  # case matters, as in the routers
        ("/health/../whoami", False),  # never exempt a path that is not what it seems
    ],
)
async def test_exclude_paths_match_whole_segments(make_web: Any, path: str, excluded: bool) -> None:
    web = make_web(required=True, exclude_paths=["/health"])
    response = await web.device().get(path)
    assert (response.status_code != 401) is excluded


@pytest.mark.parametrize(
    ("sources", "winner"),
    [(("header", "cookie"), "header"), (("cookie", "header"), "cookie"), (("header",), "header")],
)
async def test_token_sources_are_tried_in_order(
    make_web: Any, store: SessionStore, sources: tuple[str, ...], winner: str
) -> None:
    web = make_web(token_sources=sources)
    by_cookie, cookie_token = new_token(store, 1)
    by_header, header_token = new_token(store, 2)
    headers = {**cookie(cookie_token), **bearer(header_token)}
    response = await web.device().get("/whoami", headers=headers)
    assert response.json()["session"] == (by_cookie if winner == "cookie" else by_header)
    assert web.trips.count == 1


async def test_a_source_left_out_is_ignored(make_web: Any, store: SessionStore) -> None:
    web = make_web(token_sources=["header"], required=True)
    _, token = new_token(store)
    response = await web.device().get("/whoami", headers=cookie(token))
    assert response.headers["www-authenticate"] == "Bearer"
    assert web.trips.count == 0


async def test_custom_cookie_name(make_web: Any, store: SessionStore) -> None:
    web = make_web(cookie_name="__Host-sid", required=True)
    session_id, token = new_token(store)
    device = web.device()
    assert (await device.get("/whoami", headers=cookie(token))).status_code == 401
    response = await device.get("/whoami", headers={"cookie": f"__Host-sid={token}"})
    assert response.json()["session"] == session_id
