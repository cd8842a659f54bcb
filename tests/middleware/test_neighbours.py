"""Beside the framework's own cookie sessions, as real apps have them (flash messages, OAuth
state for Authlib): Starlette's SessionMiddleware, which owns ``scope["session"]``, and
``flask.session``, whose cookie is ``session``. The middleware keeps to names of its own
(``scope["sessionstore.session"]``, the cookie ``__Host-sessionstore``, ``sessionstore`` when
not Secure), so both work at once. Over real HTTP, on every backend, both middlewares (the
test apps run their framework's cookie sessions around every request: apps.py).
"""

from __future__ import annotations

from typing import Any

from tests.middleware.conftest import PLAIN_COOKIE, session_cookie

FRAMEWORK_COOKIE = "session"  # Starlette's and Flask's default


async def test_both_sessions_live_side_by_side(make_web: Any) -> None:
    # Plain http on loopback: the cookie jar keeps the non-Secure cookies of both.
    device = make_web(live=True, secure_cookie=False).device()
    first = await device.get("/visits")
    assert first.json() == {"visits": 1, "session": None}
    assert session_cookie(first, FRAMEWORK_COOKIE) is not None

    signed_in = await device.post("/login", json={"user_id": 456})
    assert signed_in.status_code == 204
    assert session_cookie(signed_in, PLAIN_COOKIE) is not None
    assert {FRAMEWORK_COOKIE, PLAIN_COOKIE} <= set(device.cookies.keys())

    second = await device.get("/visits")
    assert second.status_code == 200
    assert second.json()["visits"] == 2 and second.json()["session"] is not None

    assert (await device.post("/logout")).json() == {"revoked": True}
    third = await device.get("/visits")
    assert third.json() == {"visits": 3, "session": None}  # theirs kept, ours ended


async def test_the_default_cookie_is_host_only_and_secure(make_web: Any) -> None:
    response = await make_web().device().login(456)
    cookie = session_cookie(response)
    assert cookie is not None and cookie.startswith("__Host-sessionstore=")
    assert "Secure" in cookie and "Path=/" in cookie and "Domain" not in cookie
