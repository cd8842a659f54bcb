"""The console as `sessionstore serve` serves it: a real server process, a real browser.

The demo's sessions page is the README's screenshot (docs/console.png is a copy of the
``demo/sessions.png`` artifact this test writes).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from sessionstore import SessionStore, StoreConfig
from tests import backends
from tests.api.helpers import ServerProcess, run_cli
from tests.console.helpers import screenshot
from tests.reliability.servers import NO_PERSISTENCE, start_server


@pytest.fixture
def context(browser: Any) -> Iterator[Any]:
    context = browser.new_context(viewport={"width": 1366, "height": 860})
    context.set_default_timeout(10_000)
    yield context
    context.close()


def test_the_demo_in_a_browser(context: Any, tmp_path: Path) -> None:
    from playwright.sync_api import expect

    server = ServerProcess(tmp_path, "--demo")
    try:
        key = re.search(r"sk_live_[0-9A-Za-z]+", server.stdout)
        assert key is not None, server.stdout
        page = context.new_page()
        page.goto(server.url + "/console")  # the bare path leads to the console too
        page.get_by_label("Tenant").fill("acme-corp")
        page.get_by_label("API key").fill(key[0])
        page.get_by_role("button", name="Sign in").click()
        expect(page.get_by_role("heading", name="Sessions of acme-corp")).to_be_visible()
        expect(page.locator("#total")).to_contain_text("4 live sessions")
        expect(page.get_by_text("New York, US")).to_be_visible()
        screenshot(page, "demo", "sessions")

        page.get_by_role("link", name="User 456: all sessions").first.click()
        expect(page.locator("#total")).to_have_text("3 live sessions")
        screenshot(page, "demo", "user")
        page.get_by_role("button", name="Sign out").click()
        expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
    finally:
        server.stop()
    log = server.stderr
    assert re.search(r"POST /console/signin 303 \d+\.\dms", log), log
    assert "sk_live_" not in log  # sign-in logs the key's id, never the key


def test_redis_going_away_shows_a_503_page_in_words(context: Any, tmp_path: Path) -> None:
    from playwright.sync_api import expect

    redis_server = start_server(tmp_path / "redis", *NO_PERSISTENCE)
    prefix = backends.new_prefix()
    server = ServerProcess(tmp_path, "--redis-url", redis_server.url, "--prefix", prefix)
    try:
        minted = run_cli("apikey", "create", "--tenant", "acme-corp",
                         "--redis-url", redis_server.url, "--prefix", prefix)  # fmt: skip
        assert minted.returncode == 0, minted.stderr
        store = SessionStore.from_url(redis_server.url, config=StoreConfig(prefix=prefix))
        store.create("acme-corp", 456, ip_address="203.0.113.45", user_agent="curl/8.4")
        store.close()

        page = context.new_page()
        page.goto(server.url + "/console/")
        page.get_by_label("Tenant").fill("acme-corp")
        page.get_by_label("API key").fill(minted.stdout.strip())
        page.get_by_role("button", name="Sign in").click()
        expect(page.locator("#total")).to_contain_text("1 live session")

        redis_server.stop()
        answer = page.reload()
        assert answer is not None and answer.status == 503
        assert answer.headers["retry-after"] == "1"
        expect(page.get_by_role("heading", name="The session store is unavailable")).to_be_visible()
        assert "Traceback" not in page.content()
        screenshot(page, "redis", "unavailable")
    finally:
        server.stop()
        redis_server.stop()
    assert "Traceback" not in server.stderr
