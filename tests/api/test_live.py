"""The admin API as a real server process: endpoints, auth failures, the spec's examples."""

from __future__ import annotations

import json
import re
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from sessionstore.admin.apikeys import mint
from tests.api.helpers import (
    TENANT_A,
    Live,
    ServerProcess,
    admin,
    bearer,
    is_problem,
    run_cli,
    typo,
    unused_port,
)
from tests.reliability.servers import NO_PERSISTENCE, start_server

UA = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_2 like Mac OS X) AppleWebKit/605.1.15 Mobile/15E148"


def test_the_four_endpoints(live: Live) -> None:
    key, user = live.key(TENANT_A), 77
    created = [
        live.store.create(TENANT_A, user, ip_address=f"192.0.2.{n}", user_agent=UA)[0]
        for n in range(3)
    ]
    ids = {session.id for session in created}

    listed = live.http.get(admin(TENANT_A, f"/users/{user}/sessions"), headers=bearer(key))
    assert listed.status_code == 200
    assert {item["id"] for item in listed.json()["data"]} == ids
    assert (
        listed.json()["data"][0]
        == live.store.get(TENANT_A, listed.json()["data"][0]["id"]).to_dict()
    )

    everyone = live.http.get(
        admin(TENANT_A, f"/sessions?userId={user}&limit=2"), headers=bearer(key)
    )
    assert len(everyone.json()["data"]) == 2 and everyone.json()["hasMore"] is True

    one = created[0].id
    revoked = live.http.delete(
        admin(TENANT_A, f"/users/{user}/sessions/{one}"), headers=bearer(key)
    )
    assert revoked.json() == {"id": one, "revoked": True}
    assert live.store.get(TENANT_A, one) is None

    revoked_all = live.http.delete(admin(TENANT_A, f"/users/{user}/sessions"), headers=bearer(key))
    assert revoked_all.json() == {"revoked": 2}


def test_authentication_failures(live: Live) -> None:
    url = admin(TENANT_A, "/sessions")
    key = live.mint(TENANT_A)
    assert live.http.get(url, headers=bearer(key)).status_code == 200
    flipped = typo(key, -3)

    missing = live.http.get(url)
    assert is_problem(missing, 401) and missing.headers["www-authenticate"] == "Bearer"
    for credential in ("sk_live_xxxxx", flipped, key[:-1]):
        refused = live.http.get(url, headers=bearer(credential))
        assert is_problem(refused, 401)
        assert refused.headers["www-authenticate"] == 'Bearer error="invalid_token"'

    listed = run_cli("apikey", "list", "--tenant", TENANT_A, *live.store_args)
    assert key[8:24] in listed.stdout
    done = run_cli("apikey", "revoke", key[8:24], *live.store_args)
    assert done.returncode == 0, done.stderr
    assert is_problem(live.http.get(url, headers=bearer(key)), 401)


def test_redis_unreachable_is_503_and_junk_keys_still_401(tmp_path: Path) -> None:
    redis_server = start_server(tmp_path / "redis", *NO_PERSISTENCE)
    server = ServerProcess(tmp_path, "--redis-url", redis_server.url)
    redis_server.stop()  # it answered at start-up, then went away
    try:
        url = server.url + admin(TENANT_A, "/users/42/sessions")
        _, key = mint()
        down = httpx.get(url, headers=bearer(key))
        assert is_problem(down, 503) and down.headers["retry-after"] == "1"
        assert is_problem(httpx.get(url, headers=bearer(key[:-1] + "?")), 401)
    finally:
        server.stop()


# -- the spec's examples, verbatim, against `serve --demo` -----------------------------------------


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[ServerProcess, str]]:
    server = ServerProcess(tmp_path_factory.mktemp("demo"), "--demo")
    key = re.search(r"sk_live_[0-9A-Za-z]+", server.stdout)
    assert key is not None, server.stdout
    yield server, key[0]
    server.stop()


def _curl(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["curl", "-sS", *args], capture_output=True, text=True, timeout=30, check=False
    )


def test_serve_refuses_to_start_when_redis_does_not_answer(tmp_path: Path) -> None:
    port = unused_port()
    done = subprocess.run(
        [sys.executable, "-m", "sessionstore.cli", "serve", "--redis-url",
         f"redis://:hunter2@127.0.0.1:{port}/0", "--wait", "0.3"],
        capture_output=True, text=True, timeout=30,
    )  # fmt: skip
    assert done.returncode == 1
    assert done.stderr.strip().splitlines() == [
        f"sessionstore: Redis at 127.0.0.1:{port} does not answer (ConnectionError); "
        "start it, or give --wait SECONDS"
    ]  # one line, no traceback, and never the password
    assert "hunter2" not in done.stderr + done.stdout


def test_spec_examples_against_the_demo(demo: tuple[ServerProcess, str]) -> None:
    server, key = demo
    host = server.url  # the spec's https://app.lumoauth.dev

    listed = _curl(
        f"{host}/t/acme-corp/api/v1/admin/users/456/sessions",
        "-H",
        f"Authorization: Bearer {key}",
    )
    sessions = json.loads(listed.stdout)["data"]
    assert {s["authMethod"] for s in sessions} == {"password", "social", "sso"}
    assert {s["device"]["type"] for s in sessions} == {"desktop", "mobile"}
    assert {"city": "New York", "country": "US"} in [s["location"] for s in sessions]

    unknown = _curl(
        "-X",
        "DELETE",
        f"{host}/t/acme-corp/api/v1/admin/users/456/sessions/sess_abc123xyz",
        "-H",
        f"Authorization: Bearer {key}",
    )
    assert json.loads(unknown.stdout)["status"] == 404
    real = _curl(
        "-X",
        "DELETE",
        f"{host}/t/acme-corp/api/v1/admin/users/456/sessions/{sessions[0]['id']}",
        "-H",
        f"Authorization: Bearer {key}",
    )
    assert json.loads(real.stdout) == {"id": sessions[0]["id"], "revoked": True}

    example = f"""
import requests
# Revoke all sessions after password change
response = requests.delete(
"{host}/t/acme-corp/api/v1/admin/users/456/sessions",
headers={{"Authorization": "Bearer {key}"}}
)
if response.status_code == 200:
    print("All sessions revoked")
"""
    ran = subprocess.run(
        [sys.executable, "-c", example], capture_output=True, text=True, timeout=30, check=False
    )
    assert ran.stdout.strip() == "All sessions revoked", ran.stderr


def test_serve_logs_each_request_without_secrets_and_stops_cleanly(tmp_path: Path) -> None:
    server = ServerProcess(tmp_path, "--demo")
    key = re.search(r"sk_live_[0-9A-Za-z]+", server.stdout)[0]  # type: ignore[index]
    httpx.get(server.url + admin(TENANT_A, "/users/456/sessions"), headers=bearer(key))
    httpx.get(server.url + admin(TENANT_A, "/sessions?limit=5"), headers=bearer(typo(key)))

    # Graceful: uvicorn shuts the app down, then re-raises the signal as its exit status.
    assert server.stop() == -signal.SIGTERM

    log = server.stderr
    assert "Application shutdown complete" in log
    assert re.search(r"GET /t/acme-corp/api/v1/admin/users/456/sessions 200 \d+\.\dms", log)
    assert re.search(r"GET /t/acme-corp/api/v1/admin/sessions 401 \d+\.\dms", log)
    assert "sk_live_" not in log and "limit=5" not in log
