"""Helpers for the console's tests: a real server on a free loopback port, and the browser.

The server is the admin app (``create_app``, as ``sessionstore serve`` builds it) under
uvicorn in a thread of the test process, so tests can reach its store directly: mint API keys
on its own event loop, create sessions with a sync store on the same Redis (or the same
embedded fakeredis server), and check with the store what the console did.
"""

from __future__ import annotations

import asyncio
import os
import threading
import time
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any, TypeVar

import uvicorn
from starlette.applications import Starlette

from sessionstore import AsyncSessionStore, Session, SessionStore
from sessionstore.admin.apikeys import ApiKeys
from sessionstore.admin.console.auth import ConsoleSessions
from tests import backends

T = TypeVar("T")

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = Path(os.environ.get("SESSIONSTORE_CHROMIUM", "/usr/bin/chromium"))
# One PNG per screen, per backend: a CI artifact (.ci/work is git-ignored).
SCREENSHOTS = Path(
    os.environ.get("SESSIONSTORE_SCREENSHOTS", ROOT / ".ci" / "work" / "screenshots")
)
# In CI (``.ci/run`` sets SESSIONSTORE_REQUIRE_REAL=1, the runner CI=true) nothing may skip.
REQUIRED = backends.REQUIRE_REAL or os.environ.get("CI") == "true"

MAC_CHROME = (
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 "
    "(KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36"
)
IPHONE_SAFARI = (
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_2 like Mac OS X) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Version/17.2 Mobile/15E148 Safari/604.1"
)
LINUX_FIREFOX = "Mozilla/5.0 (X11; Linux x86_64; rv:121.0) Gecko/20100101 Firefox/121.0"


def unavailable(reason: str) -> None:
    """Skip locally with the reason; fail in CI, where every test must run."""
    import pytest

    if REQUIRED:
        pytest.fail(f"the console's browser tests must run in CI: {reason}")
    pytest.skip(reason)


class ThreadedServer:
    """uvicorn serving ``make_app()`` from a thread with its own event loop, on a free port."""

    def __init__(self, make_app: Callable[[], Starlette]) -> None:
        self.loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._failure: BaseException | None = None
        self._make_app = make_app
        self.server: uvicorn.Server | None = None
        self.thread = threading.Thread(target=self._run, name="console-server", daemon=True)
        self.thread.start()
        if not self._ready.wait(30) or self.server is None or not self.server.started:
            raise RuntimeError(f"the console server did not start: {self._failure!r}")
        port = self.server.servers[0].sockets[0].getsockname()[1]
        self.url = f"http://127.0.0.1:{port}"

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)
        try:
            self.loop.run_until_complete(self._serve())
        except BaseException as error:  # reported by the constructor
            self._failure = error
        finally:
            self._ready.set()
            self.loop.close()

    async def _serve(self) -> None:
        config = uvicorn.Config(
            self._make_app(),
            host="127.0.0.1",
            port=0,
            log_config=None,
            access_log=False,
            lifespan="on",
        )
        self.server = uvicorn.Server(config)
        serving = asyncio.ensure_future(self.server.serve())
        while not self.server.started and not serving.done():
            await asyncio.sleep(0.01)
        self._ready.set()
        await serving

    def call(self, coroutine: Coroutine[Any, Any, T], timeout: float = 30) -> T:
        """Run a coroutine on the server's event loop (where its store's client lives)."""
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result(timeout)

    def stop(self) -> None:
        if self.server is not None:
            self.server.should_exit = True
        self.thread.join(30)


class Live:
    """A console server over one backend, a sync store on the same keys, and a clock that
    places new sessions in the past (so pages show a real order and real relative times)."""

    def __init__(
        self,
        backend: str,
        server: ThreadedServer,
        astore: AsyncSessionStore,
        store: SessionStore,
        clock: backends.Clock,
        client: Any,
    ) -> None:
        self.backend = backend
        self.server = server
        self.url = server.url
        self.astore = astore
        self.store = store
        self.clock = clock
        self.client = client
        self.prefix = astore.config.prefix

    def mint(self, tenant: str) -> tuple[str, str]:
        """A new API key for ``tenant``: (key id, key)."""
        api_keys = ApiKeys(self.astore.client, self.prefix)
        record, key = self.server.call(api_keys.create(tenant))
        return record.id, key

    def revoke_key(self, key_id: str) -> bool:
        return self.server.call(ApiKeys(self.astore.client, self.prefix).revoke(key_id))

    def create(
        self,
        tenant: str,
        user_id: int,
        ip_address: str,
        *,
        minutes_ago: float = 0,
        user_agent: str = MAC_CHROME,
        auth_method: str = "password",
        mfa_verified: bool = False,
    ) -> tuple[Session, str]:
        self.clock.now = time.time() - minutes_ago * 60
        try:
            return self.store.create(
                tenant,
                user_id,
                ip_address=ip_address,
                user_agent=user_agent,
                auth_method=auth_method,
                mfa_verified=mfa_verified,
            )
        finally:
            self.clock.now = time.time()

    def validates(self, tenant: str, token: str) -> bool:
        self.clock.now = time.time()
        return self.store.validate(tenant, token) is not None

    def console_keys(self) -> list[bytes]:
        return [key for key in backends.keys_of(self.client, self.prefix) if b":console:" in key]

    def console_record(self, cookie_value: str) -> str:
        """The Redis record a console cookie names."""
        return ConsoleSessions(None, self.prefix).record_key(cookie_value)


def screenshot(page: Any, backend: str, name: str) -> Path:
    """A full-page PNG of the current screen into the artifact folder."""
    path = SCREENSHOTS / backend / f"{name}.png"
    path.parent.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(path), full_page=True)
    return path


def loaded(page: Any) -> Any:
    """The page once the document a click navigated to is parsed: ``click`` returns when the
    navigation commits, and reading rows before the document is parsed finds none."""
    page.wait_for_load_state("domcontentloaded")
    return page


def rows(page: Any) -> list[str]:
    """The session id of each row of a sessions table, in the order shown."""
    return [
        row.get_attribute("data-session-id")
        for row in loaded(page).locator("tr[data-session-id]").all()
    ]


def event_rows(page: Any) -> list[tuple[str, str]]:
    """(type, session id) of each row of an events table, in the order shown."""
    return [
        (row.get_attribute("data-event-type"), row.locator(".session-id").inner_text())
        for row in loaded(page).locator("tr[data-event-type]").all()
    ]
