"""The login/logout/devices helpers of both middlewares: cookies, the client recorded, which
session a helper may end. They call the store, which is tested on every backend; these run
once, on the real Redis."""

from __future__ import annotations

from datetime import datetime
from http.cookies import SimpleCookie
from typing import Any

import pytest

from sessionstore import SessionStore, StoreConfig
from tests import backends
from tests.middleware.apps import TENANT
from tests.middleware.conftest import COOKIE, LAPTOP, PHONE, PLAIN_COOKIE, session_cookie


@pytest.fixture(params=backends.ONE_BACKEND)
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


USER = 456


def parse_cookie(set_cookie: str | None, name: str = COOKIE) -> Any:
    assert set_cookie is not None
    jar: SimpleCookie = SimpleCookie()
    jar.load(set_cookie)
    return jar[name]


def seconds_between(start: str, end: str) -> float:
    moment = lambda text: datetime.fromisoformat(text.replace("Z", "+00:00"))  # noqa: E731
    return (moment(end) - moment(start)).total_seconds()


async def my_sessions(device: Any) -> list[dict[str, Any]]:
    response = await device.get("/sessions")
    assert response.status_code == 200
    return list(response.json())


async def test_login_sets_a_hardened_cookie_that_lives_as_long_as_the_session(
    make_web: Any,
) -> None:
    device = make_web().device()
    cookie = parse_cookie(session_cookie(await device.login(USER)))
    assert cookie.value.startswith("sst_")
    assert cookie["httponly"] is True and cookie["secure"] is True
    assert cookie["samesite"] == "Lax" and cookie["path"] == "/"
    (session,) = await my_sessions(device)
    assert int(cookie["max-age"]) == seconds_between(session["createdAt"], session["expiresAt"])


async def test_secure_can_be_turned_off_for_plain_http_on_loopback(make_web: Any) -> None:
    device = make_web(secure_cookie=False, same_site="strict").device()
    # Not Secure: no __Host- prefix, which browsers would refuse without Secure.
    response = await device.login(USER)
    cookie = parse_cookie(session_cookie(response, PLAIN_COOKIE), PLAIN_COOKIE)
    assert cookie["secure"] == "" and cookie["samesite"] == "Strict"


async def test_login_records_the_client_and_its_device(make_web: Any) -> None:
    device = make_web().device(user_agent=PHONE, peer="192.0.2.10")
    await device.login(USER)
    (session,) = await my_sessions(device)
    assert session["userId"] == USER
    assert session["ipAddress"] == "192.0.2.10"
    assert session["userAgent"] == PHONE
    assert session["device"] == {"type": "mobile", "os": "iOS", "browser": "Mobile Safari"}
    assert session["current"] is True


@pytest.mark.parametrize(
    ("trusted", "recorded"), [((), "10.0.0.5"), (("10.0.0.0/8",), "203.0.113.9")]
)
async def test_a_proxy_header_counts_only_from_a_trusted_proxy(
    make_web: Any, trusted: tuple[str, ...], recorded: str
) -> None:
    device = make_web(trusted_proxies=trusted).device(peer="10.0.0.5")
    await device.post(
        "/login", json={"user_id": USER}, headers={"x-forwarded-for": "203.0.113.9, 10.0.0.7"}
    )
    (session,) = await my_sessions(device)
    assert session["ipAddress"] == recorded


async def test_logout_revokes_the_session_and_clears_the_cookie(
    make_web: Any, store: SessionStore
) -> None:
    web = make_web(required=True, exclude_paths=["/login", "/logout"])
    device = web.device()
    token = parse_cookie(session_cookie(await device.login(USER))).value
    response = await device.post("/logout")
    assert response.json() == {"revoked": True}
    assert "Max-Age=0" in (session_cookie(response) or "")
    assert COOKIE not in device.cookies
    assert store.validate(TENANT, token) is None
    assert (await device.get("/whoami", headers={"cookie": f"{COOKIE}={token}"})).status_code == 401


async def test_logout_when_signed_out_only_clears_the_cookie(make_web: Any) -> None:
    response = await make_web().device().post("/logout")
    assert response.json() == {"revoked": False}
    assert "Max-Age=0" in (session_cookie(response) or "")


async def test_login_replaces_the_session_the_request_had(
    make_web: Any, store: SessionStore
) -> None:
    # /login excluded: the middleware still reads the old token, and login revokes it.
    device = make_web(exclude_paths=["/login"]).device()
    first = parse_cookie(session_cookie(await device.login(USER))).value
    second = parse_cookie(session_cookie(await device.login(USER))).value
    assert first != second
    assert store.validate(TENANT, first) is None
    assert store.validate(TENANT, second) is not None


async def test_a_login_over_a_rejected_cookie_keeps_the_new_cookie(
    make_web: Any, store: SessionStore
) -> None:
    # The middleware drops rejected cookies, but never the fresh one the app sets.
    web = make_web()
    device = web.device()
    old = parse_cookie(session_cookie(await device.login(USER))).value
    store.revoke_all(TENANT, USER)
    response = await device.login(USER)
    (set_cookie,) = [
        v for v in response.headers.get_list("set-cookie") if v.startswith(f"{COOKIE}=")
    ]
    new = parse_cookie(set_cookie).value
    assert new != old and store.validate(TENANT, new) is not None
    assert (await device.get("/whoami")).json()["session"] is not None


async def test_listing_marks_the_current_session_only(make_web: Any) -> None:
    web = make_web()
    laptop, phone = web.device(LAPTOP), web.device(PHONE)
    await laptop.login(USER)
    await phone.login(USER)
    await web.device().login(USER + 1)  # someone else
    from_laptop, from_phone = await my_sessions(laptop), await my_sessions(phone)
    assert len(from_laptop) == len(from_phone) == 2
    current = {s["userAgent"]: s["current"] for s in from_laptop}
    assert current == {LAPTOP: True, PHONE: False}
    assert {s["userAgent"]: s["current"] for s in from_phone} == {LAPTOP: False, PHONE: True}


async def test_listing_when_signed_out_is_empty(make_web: Any) -> None:
    assert await my_sessions(make_web().device()) == []


async def test_sign_out_one_device_from_another(make_web: Any) -> None:
    web = make_web(required=True, exclude_paths=["/login"])
    laptop, phone = web.device(LAPTOP), web.device(PHONE)
    await laptop.login(USER)
    await phone.login(USER)
    (phone_session,) = [s for s in await my_sessions(laptop) if not s["current"]]
    response = await laptop.post(f"/sessions/{phone_session['id']}/revoke")
    assert response.json() == {"revoked": True}
    assert (await phone.get("/whoami")).status_code == 401
    assert (await laptop.get("/whoami")).status_code == 200


async def test_a_user_cannot_sign_out_someone_elses_session(make_web: Any) -> None:
    web = make_web()
    mine, theirs = web.device(), web.device()
    await mine.login(USER)
    await theirs.login(USER + 1)
    (their_session,) = await my_sessions(theirs)
    response = await mine.post(f"/sessions/{their_session['id']}/revoke")
    assert response.json() == {"revoked": False}
    assert (await theirs.get("/whoami")).json()["session"] == their_session["id"]


async def test_sign_out_other_devices_keeps_the_current_one(make_web: Any) -> None:
    web = make_web()
    devices = [web.device() for _ in range(3)]
    for device in devices:
        await device.login(USER)
    response = await devices[0].post("/sessions/others/revoke")
    assert response.json() == {"count": 2}
    assert [s["current"] for s in await my_sessions(devices[0])] == [True]
    for other in devices[1:]:
        assert (await other.get("/whoami")).json()["session"] is None


async def test_helpers_when_signed_out_change_nothing(make_web: Any) -> None:
    device = make_web().device()
    assert (await device.post("/sessions/others/revoke")).json() == {"count": 0}
    assert (await device.post("/sessions/sess_0000000000aaaaaaaaaaaaaaaaaaaaaa/revoke")).json() == {
        "revoked": False
    }


class TestTheUsersOwnSignOuts:
    """What a user does through the helpers is recorded as the user's (README: Events)."""

    @pytest.fixture
    def config(self, prefix: str) -> StoreConfig:
        return StoreConfig(prefix=prefix, events=True)

    async def test_are_recorded_with_actor_user(self, make_web: Any, store: SessionStore) -> None:
        web = make_web(exclude_paths=["/login"])
        laptop, phone, tablet = web.device(LAPTOP), web.device(PHONE), web.device()
        await laptop.login(USER)
        await laptop.login(USER)  # signing in again ends the session the request had
        await phone.login(USER)
        await tablet.login(USER)
        (phone_session,) = [
            s for s in await my_sessions(laptop) if s["userAgent"] == PHONE and not s["current"]
        ]
        await laptop.post(f"/sessions/{phone_session['id']}/revoke")  # sign out one device
        await laptop.post("/sessions/others/revoke")  # sign out the others (the tablet)
        await laptop.post("/logout")
        revoked = store.events(TENANT, types=["session.revoked"]).data
        assert len(revoked) == 4
        assert [event.actor for event in revoked] == ["user"] * 4
