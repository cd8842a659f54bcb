"""Fixtures for the console: a live server per backend, headless Chromium, a page per test."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from starlette.applications import Starlette

from sessionstore import AsyncSessionStore, SessionStore, StoreConfig, _embedded
from sessionstore.admin import create_app
from sessionstore.admin.ratelimit import Rate, RateLimits
from tests import backends, grouping
from tests.console.helpers import CHROMIUM, Live, ThreadedServer, unavailable


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Each file here runs on one worker: its browser and console servers are the module's."""
    grouping.by_file(items, Path(__file__).parent)


@contextmanager
def console_server(backend: str) -> Iterator[Live]:
    """A console server on ``backend`` (and a sync store beside it), stopped, and its keys
    removed, at the end."""
    fake_server = _embedded.new_server() if backend == "fake" else None
    client = backends.sync_client(backend, fake_server)
    # Events on, as `sessionstore serve --events` runs it: the timeline has something to show.
    config = StoreConfig(prefix=backends.new_prefix(), events=True)
    clock = backends.Clock()
    stores: list[AsyncSessionStore] = []

    def make_app() -> Starlette:
        # Built on the server's own thread and loop, as `sessionstore serve` builds it.
        astore = AsyncSessionStore(backends.async_client(backend, fake_server), config=config)
        stores.append(astore)
        # Tests fail sign-ins on purpose, from one address; none of them is about the throttle.
        limits = RateLimits(failed_auth_per_ip=Rate(1000, 1))
        return create_app(astore, limits=limits, close_store=True)

    server = ThreadedServer(make_app)
    try:
        yield Live(
            backend,
            server,
            stores[0],
            SessionStore(client, config=config, clock=clock),
            clock,
            client,
        )
    finally:
        server.stop()
        backends.delete_prefix(client, config.prefix)
        client.close()


@pytest.fixture(scope="module", params=backends.ONE_BACKEND)
def live(request: pytest.FixtureRequest) -> Iterator[Live]:
    """One console server for the module, on the real Redis (backends.ONE_BACKEND: the store
    under the pages is tested on every backend); each test works in its own tenant."""
    with console_server(str(request.param)) as served:
        yield served


@pytest.fixture
def tenant() -> str:
    """A tenant of this test alone, so counts on every page are exact."""
    return "t-" + uuid.uuid4().hex[:12]


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """Debian's Chromium, headless, driven by Playwright (never its own browser download)."""
    if not CHROMIUM.exists():
        unavailable(f"{CHROMIUM} is absent: apt-get install chromium (.ci/run installs it)")
    try:
        from playwright.sync_api import sync_playwright
    except ModuleNotFoundError:
        unavailable("playwright is not installed: pip install -e '.[test]'")
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM))
        yield chromium
        chromium.close()


class Problems:
    """What the browser reports going wrong: script errors and Content-Security-Policy refusals
    (an inline script or style would show up here)."""

    def __init__(self) -> None:
        self.seen: list[str] = []

    def console(self, message: Any) -> None:
        if "Content Security Policy" in message.text:
            self.seen.append(message.text)

    def page_error(self, error: Any) -> None:
        self.seen.append(str(error))


def open_page(browser: Any, live: Live, **options: Any) -> tuple[Any, Any, Problems]:
    """A new browser context (no cookies) and page on the live console, 1366 px wide unless
    ``options`` say otherwise, and what goes wrong in it."""
    options.setdefault("viewport", {"width": 1366, "height": 860})
    context = browser.new_context(base_url=live.url, **options)
    context.set_default_timeout(10_000)
    page = context.new_page()
    problems = Problems()
    page.on("console", problems.console)
    page.on("pageerror", problems.page_error)
    return context, page, problems


@pytest.fixture
def page(browser: Any, live: Live) -> Iterator[Any]:
    """A fresh browser context (no cookies) and page on the live console."""
    context, page, problems = open_page(browser, live)
    yield page
    context.close()
    assert problems.seen == []


@pytest.fixture
def no_js_page(browser: Any, live: Live) -> Iterator[Any]:
    """The same with JavaScript off: every screen must work with plain forms and links."""
    context, page, problems = open_page(browser, live, java_script_enabled=False)
    yield page
    context.close()
    assert problems.seen == []
