"""What an anonymous client can make the admin server hold: metric series, log text, bodies.

Requests go straight into the ASGI app (a raw scope and a counting ``receive``), so a test can
send methods no HTTP client would and see how much of a body the app pulls. None of this
depends on Redis semantics, so it runs once, on an embedded store.
"""

from __future__ import annotations

import json
import logging
import random
import string
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import quote

import fakeredis
import pytest
from prometheus_client import CollectorRegistry, generate_latest

from sessionstore import AsyncSessionStore, StoreConfig
from sessionstore._logs import MAX_PATH, JsonFormatter
from sessionstore.admin import create_app
from sessionstore.admin.apikeys import ApiKeys
from sessionstore.admin.app import AccessLog
from sessionstore.admin.webhooks import MAX_BODY
from sessionstore.metrics import ApiMetrics
from tests import backends
from tests.api.helpers import TENANT_A, Body, admin, asgi_call

KNOWN_METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")
TCHAR = string.ascii_letters + string.digits + "!#$%&'*+-.^_`|~"  # what h11 takes in a method
MAX_LOGGED = 300  # characters of a request's log message, whatever the request


@pytest.fixture
async def store() -> AsyncIterator[AsyncSessionStore]:
    """An embedded store: nothing here depends on Redis semantics."""
    astore = AsyncSessionStore(
        fakeredis.FakeAsyncRedis(), config=StoreConfig(prefix=backends.new_prefix(), events=True)
    )
    yield astore
    await astore.aclose()


@pytest.fixture
async def key(store: AsyncSessionStore) -> str:
    return (await ApiKeys(store.client, store.config.prefix).create(TENANT_A))[1]


# -- every metric label and log field comes from a fixed set -------------------------------------


def series(registry: CollectorRegistry) -> list[str]:
    """Every series of the exposition: its name and labels, without its value."""
    text = generate_latest(registry).decode()
    return [line.rpartition(" ")[0] for line in text.splitlines() if line[:1] not in ("", "#")]


def junk(rng: random.Random, longest: int) -> str:
    """A segment of anything a decoded path may hold, slashes and all."""
    alphabet = string.printable.strip() + "é€💥\u202e"
    return "".join(rng.choice(alphabet) for _ in range(rng.randint(1, longest)))


def unknown_method(rng: random.Random) -> str:
    while True:
        method = "".join(rng.choice(TCHAR) for _ in range(rng.choice((1, 3, 7, 40, 4096))))
        if method not in KNOWN_METHODS:
            return method


# The kinds of request: (path maker). Each kind, whatever the junk, has one route and status.
KINDS = [
    lambda rng: "/" + quote(junk(rng, 300), safe=""),  # no route: 404
    lambda rng: "/nowhere/" + junk(rng, 2000),  # no route, raw junk in the path: 404
    lambda rng: admin(quote(junk(rng, 30), safe=""), "/users/7/sessions"),  # the gate: 401
    lambda rng: admin(TENANT_A, f"/webhooks/{quote(junk(rng, 200), safe='')}"),  # 401
    lambda rng: "/console/nowhere/" + quote(junk(rng, 200), safe=""),  # console 404
]


async def test_random_methods_and_paths_add_no_series_and_no_long_log_lines(
    store: AsyncSessionStore, caplog: pytest.LogCaptureFixture
) -> None:
    registry = CollectorRegistry()
    app = create_app(store, metrics=ApiMetrics(registry))
    rng = random.Random(20)
    caplog.set_level(logging.INFO, logger="sessionstore.api")

    # Warm-up: every kind with every known method and one unknown one.
    for kind in KINDS:
        for method in (*KNOWN_METHODS, unknown_method(rng)):
            await asgi_call(app, method, kind(rng))
    before = series(registry)

    for _ in range(1000):
        method = rng.choice(KNOWN_METHODS) if rng.random() < 0.2 else unknown_method(rng)
        await asgi_call(app, method, rng.choice(KINDS)(rng))

    after = series(registry)
    assert len(after) == len(before), sorted(set(after) - set(before))[:3]
    assert all(len(line) < 300 for line in after)
    requests = [line for line in after if line.startswith("sessionstore_admin_requests_total")]
    assert {label_of(line, "method") for line in requests} <= {*KNOWN_METHODS, "other"}

    lines = [record for record in caplog.records if record.name == "sessionstore.api"]
    assert len(lines) >= 1000
    as_json = JsonFormatter()
    for record in lines:
        assert len(record.getMessage()) <= MAX_LOGGED, record.getMessage()[:80]
        assert len(as_json.format(record)) <= 3 * MAX_LOGGED
        fields = json.loads(as_json.format(record))
        assert fields["method"] in (*KNOWN_METHODS, "other")
        assert len(fields["path"]) <= MAX_PATH
        assert fields["path"].isprintable() and fields["path"].isascii()


def label_of(line: str, name: str) -> str:
    start = line.index(f'{name}="') + len(name) + 2
    return line[start : line.index('"', start)]


async def test_known_requests_keep_their_method_route_and_status(store: AsyncSessionStore) -> None:
    registry = CollectorRegistry()
    app = create_app(store, metrics=ApiMetrics(registry))
    await asgi_call(app, "GET", admin(TENANT_A, "/sessions"))
    await asgi_call(app, "get", admin(TENANT_A, "/sessions"))  # methods are case-sensitive
    counted = {
        (label_of(line, "route"), label_of(line, "method"), label_of(line, "status"))
        for line in series(registry)
        if line.startswith("sessionstore_admin_requests_total")
    }
    route = "/t/{tenant}/api/v1/admin/sessions"
    assert counted == {(route, "GET", "401"), (route, "other", "401")}


@pytest.mark.parametrize("status", [999, 0, 42, "200"])
async def test_a_status_outside_http_is_counted_as_other(status: Any) -> None:
    async def odd(scope: Any, receive: Any, send: Any) -> None:
        await send({"type": "http.response.start", "status": status, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    registry = CollectorRegistry()
    await asgi_call(AccessLog(odd, ApiMetrics(registry)), "GET", "/x")  # type: ignore[arg-type]
    (line,) = [s for s in series(registry) if s.startswith("sessionstore_admin_requests_total")]
    assert label_of(line, "status") == "other"


# -- no body is read past its limit --------------------------------------------------------------


def webhook_post(key: str, **headers: str) -> dict[str, str]:
    return {"authorization": f"Bearer {key}", "content-type": "application/json", **headers}


async def test_a_declared_oversized_body_is_refused_before_it_is_read(
    store: AsyncSessionStore, key: str
) -> None:
    app = create_app(store)
    body = Body(8 * 1024 * 1024)  # 8 MB on offer; the request says 400 MB
    answer = await asgi_call(
        app,
        "POST",
        admin(TENANT_A, "/webhooks"),
        headers=webhook_post(key, **{"content-length": str(400 * 1024 * 1024)}),
        body=body,
    )
    assert answer.status == 413
    assert answer.headers["content-type"] == "application/problem+json"
    problem = json.loads(answer.body)
    assert problem["status"] == 413 and str(MAX_BODY) in problem["detail"]
    assert body.pulled == 0


async def test_a_streamed_body_is_cut_off_at_its_limit(store: AsyncSessionStore, key: str) -> None:
    app = create_app(store)
    body = Body(1024 * 1024, chunk=1024)  # chunked: no Content-Length
    answer = await asgi_call(
        app, "POST", admin(TENANT_A, "/webhooks"), headers=webhook_post(key), body=body
    )
    assert answer.status == 413
    assert answer.headers["content-type"] == "application/problem+json"
    assert MAX_BODY < body.pulled <= MAX_BODY + 1024  # one chunk past the limit, no more


async def test_a_body_within_the_limit_is_still_read(store: AsyncSessionStore, key: str) -> None:
    app = create_app(store)
    registration = b'{"url": 42}'.ljust(MAX_BODY, b" ")  # exactly the limit, parsed whole
    for headers in (webhook_post(key, **{"content-length": str(MAX_BODY)}), webhook_post(key)):
        body = Body(len(registration), chunk=1000, data=registration)
        answer = await asgi_call(
            app, "POST", admin(TENANT_A, "/webhooks"), headers=headers, body=body
        )
        assert answer.status == 422, answer.body
        assert "url is required" in json.loads(answer.body)["detail"]


@pytest.mark.parametrize("length", ["-1", "1e3", "12 34", "0x10"])
async def test_a_malformed_content_length_is_400(
    store: AsyncSessionStore, key: str, length: str
) -> None:
    body = Body(10)
    answer = await asgi_call(
        create_app(store),
        "POST",
        admin(TENANT_A, "/webhooks"),
        headers=webhook_post(key, **{"content-length": length}),
        body=body,
    )
    assert answer.status == 400 and answer.headers["content-type"] == "application/problem+json"
    assert body.pulled == 0
