"""`sessionstore serve` as a process on loopback ports, and what it composes (server.py)."""

from __future__ import annotations

import re
import socket
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from pathlib import Path

import httpx
import pytest

from sessionstore import AsyncSessionStore
from sessionstore.admin import create_app
from tests.api.helpers import ServerProcess, admin, bearer
from tests.cli.helpers import run


@pytest.fixture
def taken_port() -> Iterator[str]:
    """A loopback port something else listens on."""
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        yield str(taken.getsockname()[1])


def test_a_metrics_port_in_use_is_one_line_and_exit_2(
    capsys: pytest.CaptureFixture[str], taken_port: str
) -> None:
    code, out, err = run(capsys, "serve", "--embedded", "--port", "0", "--metrics-port", taken_port)
    assert (code, out) == (2, "")
    (line,) = err.strip().splitlines()  # found before anything is logged
    assert f"--metrics-port {taken_port}: cannot listen on 127.0.0.1" in line


def test_a_port_in_use_is_one_line_and_exit_2(
    capsys: pytest.CaptureFixture[str], taken_port: str
) -> None:
    code, out, err = run(capsys, "serve", "--embedded", "--port", taken_port)
    assert (code, out) == (2, "")
    (line,) = err.strip().splitlines()
    assert f"--port {taken_port}: cannot listen on 127.0.0.1" in line


def test_the_demo_prints_the_address_it_listens_on(tmp_path: Path) -> None:
    server = ServerProcess(tmp_path, "--demo")
    try:
        key = re.search(r"sk_live_[0-9A-Za-z]+", server.stdout)
        assert key is not None, server.stdout
        listing = f"{server.url}/t/acme-corp/api/v1/admin/users/456/sessions"
        assert f"Try: curl {listing} " in server.stdout
        assert f"Console: {server.url}/console/" in server.stdout
        answer = httpx.get(listing, headers=bearer(key[0]))
        assert len(answer.json()["data"]) == 3
        assert httpx.get(server.url + admin("acme-corp", "/events")).status_code == 401
    finally:
        server.stop()


async def test_create_app_runs_what_is_given_alongside_it() -> None:
    """The server's deliverer and sweep: started after the app's own start-up, in order,
    stopped in reverse before the store closes."""
    seen: list[str] = []

    class Store(AsyncSessionStore):
        async def aclose(self) -> None:
            seen.append("store closed")
            await super().aclose()

    def companion(name: str) -> Callable[[], AbstractAsyncContextManager[None]]:
        @asynccontextmanager
        async def running() -> AsyncIterator[None]:
            seen.append(f"start {name}")
            yield
            seen.append(f"stop {name}")

        return running

    app = create_app(Store(), close_store=True, alongside=[companion("a"), companion("b")])
    async with app.router.lifespan_context(app):  # what uvicorn runs around serving
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
            assert (await http.get("/openapi.json")).status_code == 200
        assert seen == ["start a", "start b"]
    assert seen == ["start a", "start b", "stop b", "stop a", "store closed"]
