"""End to end: each example app in its own server process on a loopback port, on every backend,
driven by two "devices" with their own cookie jars."""

from __future__ import annotations

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
from tests.middleware.conftest import LAPTOP, PHONE
from tests.reliability.servers import free_port

EXAMPLES = Path(__file__).parents[2] / "examples"
ROW = re.compile(r"data-session-id='(sess_\w+)' data-current='(true|false)'")


@pytest.fixture(params=["starlette_app.py", "flask_app.py"])
def server(
    request: pytest.FixtureRequest, backend: str, prefix: str, client: Any, tmp_path: Path
) -> Iterator[str]:
    """The example's base URL; ``client`` removes its keys from Redis afterwards."""
    port = free_port()
    command = [sys.executable, str(EXAMPLES / request.param), "--port", str(port)]
    command += ["--prefix", prefix]
    url = backends.url_for(backend)
    if url is not None:
        command += ["--redis-url", url]
    log = tmp_path / "server.log"
    with log.open("wb") as output:
        process = subprocess.Popen(command, stdout=output, stderr=subprocess.STDOUT)
    base_url = f"http://127.0.0.1:{port}"
    try:
        wait_until_up(process, base_url, log)
        yield base_url
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def wait_until_up(process: subprocess.Popen[bytes], base_url: str, log: Path) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"example exited: {log.read_text()[-2000:]}")
        try:
            if httpx.get(f"{base_url}/healthz", timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            time.sleep(0.05)
    raise RuntimeError(f"example at {base_url} did not answer")


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


def test_sign_out_a_device_from_another(server: str) -> None:
    with (
        httpx.Client(base_url=server, headers={"user-agent": LAPTOP}) as laptop,
        httpx.Client(base_url=server, headers={"user-agent": PHONE}) as phone,
    ):
        assert not signed_in(laptop)
        for device in (laptop, phone):
            response = device.post("/login", data={"user_id": "456"})
            assert (response.status_code, response.headers["location"]) == (303, "/")
            assert signed_in(device)

        seen_by_laptop, seen_by_phone = devices(laptop), devices(phone)
        assert seen_by_laptop.keys() == seen_by_phone.keys() and len(seen_by_laptop) == 2
        (laptop_id,) = [sid for sid, current in seen_by_laptop.items() if current]
        (phone_id,) = [sid for sid, current in seen_by_phone.items() if current]
        assert laptop_id != phone_id

        response = laptop.post(f"/devices/{phone_id}/revoke")
        assert (response.status_code, response.headers["location"]) == (303, "/devices")
        assert not signed_in(phone)
        assert "session" not in phone.cookies  # the rejected cookie was dropped
        assert devices(laptop) == {laptop_id: True}

        response = laptop.post("/logout")
        assert (response.status_code, response.headers["location"]) == (303, "/login")
        assert not signed_in(laptop)
