"""Redis unreachable: the DBSC endpoints and a bound request fail closed with a 503, never a 500
and never an authenticated answer. A real client on a port nobody listens on; nothing mocked."""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator
from typing import Any

import pytest

from sessionstore import AsyncSessionStore, SessionStore, StoreConfig
from sessionstore.middleware.policy import DeviceBinding
from tests.dbsc.client import proof, sf_string
from tests.dbsc.conftest import EXAMPLE, FACES, KEYS, Response, Web, wsgi_app

TOKEN = "sst_" + "0a" + "B" * 22 + "0" * 13 + "C" * 32  # well formed: it reaches the store
SESSION_ID = "sess_0a" + "B" * 22


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture(params=FACES)
async def web(request: pytest.FixtureRequest) -> AsyncIterator[Web]:
    url = f"redis://127.0.0.1:{closed_port()}/0"
    config = StoreConfig(prefix="dbsc-unreachable")
    binding = DeviceBinding()
    store: Any
    if request.param == "asgi":
        store = AsyncSessionStore.from_url(url, config=config)
        yield Web("asgi", EXAMPLE.create_app(store, binding=binding), store)
        await store.aclose()
    else:
        store = SessionStore.from_url(url, config=config)
        yield Web("wsgi", wsgi_app(store, binding), store)
        store.close()


def assert_unavailable(answer: Response) -> None:
    assert answer.status == 503, answer.content
    assert answer.headers["content-type"] == "application/problem+json"


async def test_every_dbsc_answer_fails_closed(web: Web) -> None:
    cookie = {"cookie": f"sessionstore={TOKEN}"}
    signed = proof(KEYS["ES256"], "a-challenge", registration=True)
    registration = await web.request(
        "POST",
        "/.sessionstore/dbsc/register",
        headers={**cookie, "secure-session-response": signed},
    )
    assert_unavailable(registration)
    refresh = await web.request(
        "POST",
        "/.sessionstore/dbsc/refresh",
        headers={**cookie, "sec-secure-session-id": SESSION_ID},
    )
    assert_unavailable(refresh)
    with_proof = await web.request(
        "POST",
        "/.sessionstore/dbsc/refresh",
        headers={
            **cookie,
            "sec-secure-session-id": SESSION_ID,
            "secure-session-response": sf_string(proof(KEYS["ES256"], "c", registration=False)),
        },
    )
    assert_unavailable(with_proof)
    me = await web.request("GET", "/me", headers=cookie)
    assert me.status in (401, 503)
