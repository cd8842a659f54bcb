"""End to end: each example app in its own server process on a loopback port, on the embedded
store (asked for with --embedded) and on the real Redis, driven over HTTP by "devices" with
their own cookie jars.

starlette_app.py, flask_app.py  pages, my devices, flash messages in the framework's own cookie
                                session beside sessionstore's
django_app/                     Django behind the WSGI middleware: settings, views, login, logout
fastapi_app.py                  a bearer API: POST /api/login for a token, then Authorization
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests import backends
from tests.middleware.conftest import LAPTOP, LOOPBACK_TLS, PHONE, PLAIN_COOKIE
from tests.reliability.servers import free_port


@pytest.fixture(params=backends.BACKENDS[:2])
def backend(request: pytest.FixtureRequest) -> str:
    """The example apps run as a newcomer runs them (embedded) and on the real Redis; the
    middleware and store under them are tested on the cluster too."""
    return str(request.param)


EXAMPLES = Path(__file__).parents[2] / "examples"
ROW = re.compile(r"data-session-id='(sess_\w+)' data-current='(true|false)'")
PAGES = ["starlette_app.py", "flask_app.py"]
SIGN_IN_PAGES = [*PAGES, "django_app"]
# What another site's page sends when it posts a form here.
CROSS_SITE = {"sec-fetch-site": "cross-site", "origin": "https://evil.test"}
SIBLING = {"sec-fetch-site": "same-site", "origin": "http://evil.localhost"}


def clean_environment() -> dict[str, str]:
    """This process's environment without the examples' own settings."""
    names = ("SESSIONSTORE_REDIS_URL", "SESSIONSTORE_EMBEDDED")
    return {key: value for key, value in os.environ.items() if key not in names}


def start(example: str, backend: str, prefix: str, tmp_path: Path) -> Iterator[str]:
    """Run ``example`` until the test is done; its base URL."""
    port = free_port()
    command = [sys.executable, str(EXAMPLES / example), "--port", str(port), "--prefix", prefix]
    url = backends.url_for(backend)
    command += ["--embedded"] if url is None else ["--redis-url", url]
    log = tmp_path / "server.log"
    with log.open("wb") as output:
        process = subprocess.Popen(
            command, stdout=output, stderr=subprocess.STDOUT, env=clean_environment()
        )
    base_url = f"http://127.0.0.1:{port}"
    try:
        wait_until_up(process, base_url, log)
        # The embedded store serves HTTP only with a warning that it is one process's alone.
        assert ("WARNING" in log.read_text() and "this one process" in log.read_text()) is (
            url is None
        )
        yield base_url
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@pytest.fixture(params=PAGES)
def server(
    request: pytest.FixtureRequest, backend: str, prefix: str, client: Any, tmp_path: Path
) -> Iterator[str]:
    """The example's base URL; ``client`` removes its keys from Redis afterwards."""
    yield from start(request.param, backend, prefix, tmp_path)


@pytest.fixture(params=SIGN_IN_PAGES)
def signing_in(
    request: pytest.FixtureRequest, backend: str, prefix: str, client: Any, tmp_path: Path
) -> Iterator[str]:
    yield from start(request.param, backend, prefix, tmp_path)


@pytest.fixture
def api(backend: str, prefix: str, client: Any, tmp_path: Path) -> Iterator[str]:
    yield from start("fastapi_app.py", backend, prefix, tmp_path)


def wait_until_up(process: subprocess.Popen[bytes], base_url: str, log: Path) -> None:
    deadline = time.monotonic() + 30
    with httpx.Client(timeout=1, verify=LOOPBACK_TLS) as http:  # one client for every poll
        while time.monotonic() < deadline:
            if process.poll() is not None:
                raise RuntimeError(f"example exited: {log.read_text()[-2000:]}")
            try:
                if http.get(f"{base_url}/healthz").status_code == 200:
                    return
            except httpx.TransportError:
                time.sleep(0.05)
    raise RuntimeError(f"example at {base_url} did not answer")


def visitor(base_url: str, **options: Any) -> httpx.Client:
    """A browser's or app's HTTP client of the example server."""
    return httpx.Client(base_url=base_url, verify=LOOPBACK_TLS, **options)


def devices(client: httpx.Client) -> dict[str, bool]:
    """The devices page as {session id: is current}."""
    response = client.get("/devices")
    assert response.status_code == 200
    return {session_id: current == "true" for session_id, current in ROW.findall(response.text)}


def signed_in(client: httpx.Client) -> bool:
    response = client.get("/")
    if response.status_code == 303:
        assert response.headers["location"] == "/login"
        return False
    assert response.status_code == 200 and "Hello, user 456" in response.text
    return True


def sign_in(client: httpx.Client) -> None:
    response = client.post("/login", data={"user_id": "456"})
    assert (response.status_code, response.headers["location"]) == (303, "/")
    assert PLAIN_COOKIE in client.cookies


def assert_forbidden(response: httpx.Response) -> None:
    assert response.status_code == 403
    assert response.headers["content-type"] == "application/problem+json"
    assert "set-cookie" not in response.headers


def test_sign_out_a_device_from_another(server: str) -> None:
    with (
        visitor(server, headers={"user-agent": LAPTOP}) as laptop,
        visitor(server, headers={"user-agent": PHONE}) as phone,
    ):
        assert not signed_in(laptop)
        for device in (laptop, phone):
            sign_in(device)
            assert signed_in(device)

        seen_by_laptop, seen_by_phone = devices(laptop), devices(phone)
        assert seen_by_laptop.keys() == seen_by_phone.keys() and len(seen_by_laptop) == 2
        (laptop_id,) = [sid for sid, current in seen_by_laptop.items() if current]
        (phone_id,) = [sid for sid, current in seen_by_phone.items() if current]
        assert laptop_id != phone_id

        response = laptop.post(f"/devices/{phone_id}/revoke")
        assert (response.status_code, response.headers["location"]) == (303, "/devices")
        assert not signed_in(phone)
        assert PLAIN_COOKIE not in phone.cookies  # the rejected cookie was dropped
        assert devices(laptop) == {laptop_id: True}

        response = laptop.post("/logout")
        assert (response.status_code, response.headers["location"]) == (303, "/login")
        assert not signed_in(laptop)


# The framework's own cookie and the bearer API's indifference to cookies are the example's,
# not the store's: on the real Redis only; each example starts embedded in the tests above.
@pytest.mark.parametrize("backend", backends.ONE_BACKEND, indirect=True)
def test_the_frameworks_own_cookie_session_works_beside(server: str) -> None:
    # The flash message rides in Starlette's or Flask's own cookie "session".
    with visitor(server) as browser:
        sign_in(browser)
        response = browser.post("/logout")
        assert response.status_code == 303
        assert "session" in browser.cookies and PLAIN_COOKIE not in browser.cookies
        assert "You have signed out." in browser.get("/login").text
        assert "You have signed out." not in browser.get("/login").text  # shown once
        sign_in(browser)
        assert signed_in(browser)


def test_another_sites_page_cannot_sign_in_or_out(signing_in: str) -> None:
    with visitor(signing_in) as browser, visitor(signing_in) as bot:
        # Login CSRF: a form on another site would sign the visitor in as someone else.
        for page in (CROSS_SITE, SIBLING):
            refused = bot.post("/login", data={"user_id": "456"}, headers=page)
            assert_forbidden(refused)
            assert PLAIN_COOKIE not in bot.cookies

        # Forced logout: the browser sends its cookie along, and nothing happens.
        sign_in(browser)
        for page in (CROSS_SITE, SIBLING):
            assert_forbidden(browser.post("/logout", headers=page))
            assert signed_in(browser)

        # From the app's own pages, both work.
        own = {"sec-fetch-site": "same-origin", "origin": signing_in}
        response = browser.post("/logout", headers=own)
        assert (response.status_code, response.headers["location"]) == (303, "/login")
        assert not signed_in(browser)
        response = browser.post("/login", data={"user_id": "456"}, headers={"origin": signing_in})
        assert response.status_code == 303 and signed_in(browser)


def test_a_bearer_client_signs_in_for_a_token(api: str) -> None:
    with visitor(api) as phone, visitor(api) as laptop:
        assert phone.get("/api/me").status_code == 401
        assert phone.get("/api/hello").json() == {"hello": "stranger"}

        answer = phone.post("/api/login", json={"user_id": 456})
        assert answer.status_code == 200
        assert answer.headers["cache-control"] == "no-store"
        assert "set-cookie" not in answer.headers and not phone.cookies
        token = answer.json()["token"]
        session_id = answer.json()["session"]["id"]
        phone.headers["authorization"] = f"Bearer {token}"

        me = phone.get("/api/me")
        assert me.json()["id"] == session_id and me.json()["userId"] == 456
        assert me.headers["cache-control"] == "private" and "Authorization" in me.headers["vary"]
        assert phone.get("/api/hello").json() == {"hello": "user 456"}

        laptop.headers["authorization"] = (
            f"Bearer {laptop.post('/api/login', json={'user_id': 456}).json()['token']}"
        )
        sessions = laptop.get("/api/sessions").json()
        assert {s["id"]: s["current"] for s in sessions}[session_id] is False
        assert laptop.delete(f"/api/sessions/{session_id}").json() == {"revoked": True}

        refused = phone.get("/api/me")
        assert refused.status_code == 401
        assert refused.headers["content-type"] == "application/problem+json"
        assert refused.headers["www-authenticate"] == 'Bearer error="invalid_token"'
        assert laptop.post("/api/logout").json() == {"revoked": True}
        assert laptop.get("/api/me").status_code == 401


@pytest.mark.parametrize("backend", backends.ONE_BACKEND, indirect=True)
def test_a_bearer_api_reads_no_cookie(api: str) -> None:
    with visitor(api) as browser:
        token = browser.post("/api/login", json={"user_id": 456}).json()["token"]
        assert (
            browser.get("/api/me", headers={"cookie": f"{PLAIN_COOKIE}={token}"}).status_code == 401
        )


# -- the store is chosen, never fallen back to -------------------------------------------------


@pytest.mark.parametrize(
    "example", ["starlette_app.py", "flask_app.py", "fastapi_app.py", "django_app"]
)
def test_an_example_without_a_store_refuses_to_start(example: str) -> None:
    done = subprocess.run(
        [sys.executable, str(EXAMPLES / example), "--port", str(free_port())],
        capture_output=True,
        text=True,
        timeout=60,
        env=clean_environment(),
    )
    assert done.returncode == 2
    (line,) = done.stderr.strip().splitlines()
    assert "--redis-url" in line and "--embedded" in line
    assert done.stdout == ""


def test_the_environment_can_choose_the_store(tmp_path: Path) -> None:
    port = free_port()
    log = tmp_path / "server.log"
    env = {**clean_environment(), "SESSIONSTORE_EMBEDDED": "1"}
    with log.open("wb") as output:
        process = subprocess.Popen(
            [sys.executable, str(EXAMPLES / "flask_app.py"), "--port", str(port)],
            stdout=output,
            stderr=subprocess.STDOUT,
            env=env,
        )
    try:
        wait_until_up(process, f"http://127.0.0.1:{port}", log)
        assert "this one process" in log.read_text()
    finally:
        process.terminate()
        process.wait(timeout=10)

    both = {**env, "SESSIONSTORE_REDIS_URL": "redis://127.0.0.1:6379/0"}
    done = subprocess.run(
        [sys.executable, str(EXAMPLES / "flask_app.py")],
        capture_output=True,
        text=True,
        timeout=60,
        env=both,
    )
    assert done.returncode == 2 and "not both" in done.stderr
