"""`sessionstore serve` as operators run it: metrics on their own port, JSON logs, and no
embedded store unless asked for. Real server processes on free loopback ports."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path

import httpx

from sessionstore import SessionStore, StoreConfig
from tests.api.helpers import TENANT_A, ServerProcess, admin, bearer, typo, unused_port


def _demo_key(server: ServerProcess) -> str:
    key = re.search(r"sk_live_[0-9A-Za-z]+", server.stdout)
    assert key is not None, server.stdout
    return key[0]


def _sample(exposition: str, name: str, **labels: str) -> float:
    """One sample's value from the Prometheus text format (0 when absent)."""
    for line in exposition.splitlines():
        metric, _, value = line.rpartition(" ")
        if metric.split("{")[0] != name:
            continue
        if all(f'{label}="{text}"' in metric for label, text in labels.items()):
            return float(value)
    return 0.0


def test_metrics_are_scraped_from_their_own_port(tmp_path: Path) -> None:
    metrics_port = unused_port()
    server = ServerProcess(tmp_path, "--demo", "--metrics-port", str(metrics_port))
    try:
        key = _demo_key(server)
        path = admin(TENANT_A, "/users/456/sessions")
        for _ in range(3):
            assert httpx.get(server.url + path, headers=bearer(key)).status_code == 200
        assert httpx.get(server.url + path, headers=bearer(typo(key))).status_code == 401

        scraped = httpx.get(f"http://127.0.0.1:{metrics_port}/metrics")
        assert scraped.status_code == 200
        text = scraped.text
        route = "/t/{tenant}/api/v1/admin/users/{user_id}/sessions"
        requests = "sessionstore_admin_requests_total"
        assert _sample(text, requests, route=route, method="GET", status="200") == 3
        assert _sample(text, requests, route=route, method="GET", status="401") == 1
        calls = "sessionstore_operations_total"
        assert _sample(text, calls, operation="list_user_sessions", outcome="ok") == 3
        assert "sessionstore_operation_duration_seconds_bucket" in text
        # The API's own port does not serve them, and no label ever holds a key or id.
        assert httpx.get(server.url + "/metrics").status_code == 404
        labels = [
            line[line.index("{") : line.index("}")] for line in text.splitlines() if "{" in line
        ]
        assert "sk_live_" not in text and not [label for label in labels if "456" in label]
    finally:
        server.stop()


def test_json_logs_are_one_object_per_line_with_request_fields(tmp_path: Path) -> None:
    server = ServerProcess(tmp_path, "--demo", "--log-format", "json")
    key = _demo_key(server)
    httpx.get(server.url + admin(TENANT_A, "/sessions?limit=5"), headers=bearer(key))
    server.stop()

    lines = [json.loads(line) for line in server.stderr.splitlines() if line.startswith("{")]
    request = next(
        line for line in lines if line.get("route") == "/t/{tenant}/api/v1/admin/sessions"
    )
    assert request["method"] == "GET" and request["status"] == 200
    assert request["path"] == "/t/acme-corp/api/v1/admin/sessions"  # never the query string
    assert isinstance(request["duration_ms"], float)
    assert request["time"].endswith("Z") and request["level"] == "info"
    assert "sk_live_" not in server.stderr


def test_serve_refuses_to_start_without_redis_unless_asked(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "sessionstore.cli", "serve", "--port", "0"],
        capture_output=True, text=True, timeout=30,
        env={"PATH": "/usr/bin:/bin"},  # no SESSIONSTORE_REDIS_URL from the caller
    )  # fmt: skip
    assert done.returncode == 2
    (line,) = done.stderr.strip().splitlines()
    assert "--redis-url" in line and "--embedded" in line


def test_the_embedded_store_serves_only_when_asked_and_says_so(tmp_path: Path) -> None:
    server = ServerProcess(tmp_path, "--embedded")
    try:
        assert httpx.get(server.url + "/openapi.json").status_code == 200
    finally:
        server.stop()
    assert "embedded store" in server.stderr and "this one process" in server.stderr


def test_the_demo_serves_from_a_near_cache_and_names_its_console(tmp_path: Path) -> None:
    server = ServerProcess(tmp_path, "--demo", "--near-cache-size", "100")
    try:
        key = _demo_key(server)
        path = server.url + admin(TENANT_A, "/users/456/sessions")
        assert httpx.get(path, headers=bearer(key)).status_code == 200
        # With --port 0 the printed URL says PORT; the path is what it names.
        assert re.search(r"Console: http://127\.0\.0\.1:\S+/console/", server.stdout)
        signin = httpx.get(server.url + "/console/", follow_redirects=True)
        assert signin.status_code == 200 and "API key" in signin.text
    finally:
        server.stop()


def test_serve_records_expiries_nobody_asked_about(tmp_path: Path) -> None:
    prefix = "sweep-" + tmp_path.name[-12:].replace("_", "-")
    url = "redis://127.0.0.1:6379"
    server = ServerProcess(
        tmp_path, "--redis-url", url, "--prefix", prefix, "--events", "--sweep-every", "1"
    )
    # A service of the same deployment whose sessions last one second.
    config = StoreConfig(prefix=prefix, events=True, lifetime=timedelta(seconds=1))
    store = SessionStore.from_url(url, config=config)
    try:
        session, _ = store.create(TENANT_A, 7, ip_address="203.0.113.7", user_agent="pytest")
        deadline = time.monotonic() + 15
        expired: list = []
        while not expired:
            assert time.monotonic() < deadline, "no session.expired from the server's sweep"
            time.sleep(0.1)
            expired = store.events(TENANT_A, types=["session.expired"]).data
        assert (expired[0].session_id, expired[0].user_id) == (session.id, 7)
    finally:
        server.stop()
        for key in store.client.scan_iter(match=f"{prefix}:*"):
            store.client.delete(key)
        store.close()
