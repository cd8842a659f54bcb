"""Caches: a response that depends on the session says so.

When the request presented a token, or a helper signed someone in or out, the response gets
``Vary`` with the headers tokens come from (``Authorization, Cookie``) and, unless the app set
its own ``Cache-Control``, ``Cache-Control: private``: no shared cache may hand one user's page
to another. A response that read no token is left as the app made it. Over real HTTP, on every
backend, both middlewares.
"""

from __future__ import annotations

from typing import Any

import pytest

from sessionstore import SessionStore
from tests.middleware.apps import TENANT
from tests.middleware.conftest import COOKIE, LAPTOP

USER = 456


def vary(response: Any) -> set[str]:
    values = response.headers.get_list("vary")
    return {token.strip().lower() for value in values for token in value.split(",") if token}


def token(store: SessionStore) -> str:
    return store.create(TENANT, USER, ip_address="192.0.2.1", user_agent=LAPTOP)[1]


def by_cookie(value: str) -> dict[str, str]:
    return {"cookie": f"{COOKIE}={value}"}


def by_bearer(value: str) -> dict[str, str]:
    return {"authorization": f"Bearer {value}"}


@pytest.mark.parametrize("present", [by_cookie, by_bearer], ids=["cookie", "bearer"])
async def test_a_response_to_a_token_is_private_and_varies(
    make_web: Any, store: SessionStore, present: Any
) -> None:
    web = make_web(live=True)
    response = await web.device().get("/whoami", headers=present(token(store)))
    assert response.json()["session"] is not None
    assert response.headers["cache-control"] == "private"
    assert {"cookie", "authorization"} <= vary(response)


async def test_a_rejected_token_is_private_too(make_web: Any) -> None:
    response = await make_web(live=True).device().get("/whoami", headers=by_cookie("sst_x"))
    assert response.headers["cache-control"] == "private"
    assert "cookie" in vary(response)


async def test_a_response_that_read_no_token_is_left_alone(make_web: Any) -> None:
    device = make_web(live=True, exclude_paths=["/health"]).device()
    for path in ("/whoami", "/health"):
        response = await device.get(path, headers={"cookie": "theme=dark"})
        assert "cache-control" not in response.headers
        assert not vary(response) & {"cookie", "authorization"}


async def test_the_apps_own_cache_control_stands_and_vary_is_added_to(
    make_web: Any, store: SessionStore
) -> None:
    response = await make_web(live=True).device().get("/cached", headers=by_cookie(token(store)))
    assert response.headers["cache-control"] == "max-age=60"
    assert vary(response) == {"accept-encoding", "cookie", "authorization"}


async def test_an_excluded_path_with_a_token_is_private(make_web: Any, store: SessionStore) -> None:
    web = make_web(live=True, exclude_paths=["/whoami"])
    response = await web.device().get("/whoami", headers=by_cookie(token(store)))
    assert response.headers["cache-control"] == "private"


@pytest.mark.parametrize("path", ["/login", "/api/login", "/logout"])
async def test_signing_in_or_out_is_private(make_web: Any, path: str) -> None:
    response = await make_web(live=True).device().post(path, json={"user_id": USER})
    assert response.status_code in (200, 204)
    assert response.headers["cache-control"] == "private"
    assert "cookie" in vary(response)


async def test_a_token_list_is_only_of_the_sources_read(make_web: Any, store: SessionStore) -> None:
    web = make_web(live=True, token_sources=["cookie"])
    response = await web.device().get("/whoami", headers=by_cookie(token(store)))
    assert "cookie" in vary(response) and "authorization" not in vary(response)
