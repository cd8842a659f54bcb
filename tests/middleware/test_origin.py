"""The helpers that change who is signed in refuse requests made by another site's page.

``login``, ``logout``, ``sign_out_device`` and ``sign_out_other_devices`` check where the
request comes from, as OWASP's CSRF cheat sheet describes: ``Sec-Fetch-Site`` first, then
``Origin``, then ``Referer``. A request from elsewhere gets 403 problem+json, and nothing
changes: no session starts (login CSRF), none ends (forced logout). SameSite=Lax alone does not
stop these: a sibling subdomain is same-site. Over real HTTP, both middlewares, once: the rule
(sessionstore.http.origin) reads headers, and every helper's store calls run on every backend in
test_helpers.py.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from sessionstore import SessionStore
from tests.middleware.apps import TENANT
from tests.middleware.conftest import COOKIE, LAPTOP, Device, session_cookie


@pytest.fixture
def backend() -> str:
    """These rules read headers, not Redis: they run once, on the embedded store (the helpers'
    and the middleware's store calls run on every backend in test_helpers, test_middleware)."""
    return "fake"


USER = 456
TRUSTED = "https://accounts.example.net"

# Headers as a browser would send them; OWN is the app's own origin, filled in per server.
OWN = "{own}"
ORIGINS = [
    ("no browser headers (curl, a mobile app)", {}, True),
    ("same-origin", {"sec-fetch-site": "same-origin", "origin": OWN}, True),
    ("typed into the address bar", {"sec-fetch-site": "none"}, True),
    ("own origin, no Fetch Metadata", {"origin": OWN}, True),
    ("own page as referer", {"referer": f"{OWN}/devices"}, True),
    ("trusted origin", {"sec-fetch-site": "cross-site", "origin": TRUSTED}, True),
    (
        "sibling subdomain",
        {"sec-fetch-site": "same-site", "origin": "http://evil.127.0.0.1"},
        False,
    ),
    ("another site", {"sec-fetch-site": "cross-site", "origin": "https://evil.test"}, False),
    ("another site, no Fetch Metadata", {"origin": "https://evil.test"}, False),
    ("cross-site, origin withheld", {"sec-fetch-site": "cross-site"}, False),
    ("opaque origin", {"origin": "null"}, False),
    ("another site's page as referer", {"referer": "https://evil.test/post"}, False),
    ("the same host over https", {"origin": "{own over https}"}, False),
]


def signed_in(store: SessionStore, user_id: int = USER) -> tuple[str, dict[str, str]]:
    session, token = store.create(TENANT, user_id, ip_address="192.0.2.1", user_agent=LAPTOP)
    return session.id, {"cookie": f"{COOKIE}={token}"}


def is_live(store: SessionStore, session_id: str) -> bool:
    return any(s.id == session_id for s in store.list_user_sessions(TENANT, USER))


Act = Callable[[Device, SessionStore, dict[str, str]], Awaitable[Callable[[bool], None]]]


async def act_login(device: Device, store: SessionStore, origin: dict[str, str]) -> Any:
    response = await device.post("/login", json={"user_id": USER}, headers=origin)

    def happened(done: bool) -> None:
        assert (session_cookie(response) is not None) is done
        assert len(store.list_user_sessions(TENANT, USER)) == int(done)

    return response, happened


async def act_logout(device: Device, store: SessionStore, origin: dict[str, str]) -> Any:
    session_id, cookie = signed_in(store)
    response = await device.post("/logout", headers={**cookie, **origin})
    return response, lambda done: _assert(is_live(store, session_id) is not done)


async def act_sign_out_device(device: Device, store: SessionStore, origin: dict[str, str]) -> Any:
    _, cookie = signed_in(store)
    other, _ = signed_in(store)
    response = await device.post(f"/sessions/{other}/revoke", headers={**cookie, **origin})
    return response, lambda done: _assert(is_live(store, other) is not done)


async def act_sign_out_others(device: Device, store: SessionStore, origin: dict[str, str]) -> Any:
    _, cookie = signed_in(store)
    other, _ = signed_in(store)
    response = await device.post("/sessions/others/revoke", headers={**cookie, **origin})
    return response, lambda done: _assert(is_live(store, other) is not done)


def _assert(condition: bool) -> None:
    assert condition


HELPERS = {
    "login": act_login,
    "logout": act_logout,
    "sign_out_device": act_sign_out_device,
    "sign_out_other_devices": act_sign_out_others,
}


@pytest.mark.parametrize("helper", HELPERS)
@pytest.mark.parametrize(("name", "headers", "passes"), ORIGINS, ids=[o[0] for o in ORIGINS])
async def test_origin_check(
    make_web: Any,
    store: SessionStore,
    helper: str,
    name: str,
    headers: dict[str, str],
    passes: bool,
) -> None:
    web = make_web(live=True, trusted_origins=[TRUSTED])
    device = web.device()
    own = (await web.serve()).rstrip("/")
    over_https = own.replace("http://", "https://")
    origin = {
        key: value.replace(OWN, own).replace("{own over https}", over_https)
        for key, value in headers.items()
    }
    response, happened = await HELPERS[helper](device, store, origin)
    if passes:
        assert response.status_code in (200, 204), response.text
    else:
        assert response.status_code == 403
        assert response.headers["content-type"] == "application/problem+json"
        assert response.json()["status"] == 403
    happened(passes)


# -- a synchronizer token, for forms that want one on top --------------------------------------


async def test_a_synchronizer_token_guards_what_the_app_chooses(
    make_web: Any, store: SessionStore
) -> None:
    web = make_web(live=True)
    device = web.device()
    _, mine = signed_in(store)
    _, theirs = signed_in(store, USER + 1)
    token = (await device.get("/csrf", headers=mine)).json()["token"]
    assert token.startswith("csrf_") and token not in mine["cookie"]
    assert (await device.get("/csrf", headers=mine)).json()["token"] == token  # per session
    their_token = (await device.get("/csrf", headers=theirs)).json()["token"]
    assert their_token != token

    done = await device.post("/transfer", headers={**mine, "x-csrf-token": token})
    assert done.json() == {"done": True}
    for forged in (None, their_token, token[:-1], ""):
        headers = {**mine} if forged is None else {**mine, "x-csrf-token": forged}
        refused = await device.post("/transfer", headers=headers)
        assert refused.status_code == 403
        assert refused.headers["content-type"] == "application/problem+json"
    # Anonymous: no token to give, and nothing passes.
    assert (await device.get("/csrf")).json() == {"token": None}
    assert (await device.post("/transfer", headers={"x-csrf-token": token})).status_code == 403
