"""A session's own page, the confirmation before revoking it, and paging the sessions back,
in-process (the browser tests walk the same pages in Chromium). The store under the pages is
tested on every backend; these run once, on the real Redis."""

from __future__ import annotations

import html
import re
from collections.abc import AsyncIterator

import httpx
import pytest

from sessionstore import AsyncSessionStore, StoreConfig
from sessionstore.admin import create_app
from sessionstore.admin.apikeys import ApiKeys
from sessionstore.admin.console.pages import sessions as sessions_page
from tests import backends
from tests.console.test_security import LOCAL, TENANT, client_for, sign_in


@pytest.fixture(params=backends.ONE_BACKEND)
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


SAME = {"Sec-Fetch-Site": "same-origin"}


@pytest.fixture
def config(prefix: str) -> StoreConfig:
    return StoreConfig(prefix=prefix, events=True)


@pytest.fixture
async def console(astore: AsyncSessionStore) -> AsyncIterator[httpx.AsyncClient]:
    _, key = await ApiKeys(astore.client, astore.config.prefix).create(TENANT)
    async with client_for(create_app(astore), LOCAL) as client:
        assert (await sign_in(client, key)).status_code == 303
        yield client


def hidden(page: httpx.Response, name: str) -> str:
    found = re.search(rf'<input type="hidden" name="{name}" value="([^"]*)">', page.text)
    assert found is not None, name
    return html.unescape(found[1])


async def test_the_confirmation_names_the_session_and_its_form_revokes_it(
    astore: AsyncSessionStore, console: httpx.AsyncClient
) -> None:
    session, token = await astore.create(
        TENANT, 42, ip_address="198.51.100.7", user_agent="curl/8", auth_method="sso"
    )
    confirm = await console.get(
        f"/console/sessions/{session.id}/revoke", params={"back": "/sessions?ip=198.51.100.7"}
    )
    assert confirm.status_code == 200
    facts = re.search(
        r'<dl class="confirm__facts" id="confirm-facts">(.*?)</dl>', confirm.text, re.S
    )
    assert facts is not None
    for words in ("42", "curl", "198.51.100.7", "just now", session.id):
        assert words in facts[1]
    assert await astore.validate(TENANT, token) is not None  # seeing it changes nothing
    form = {name: hidden(confirm, name) for name in ("csrf", "user_id", "session_id", "back")}
    assert form["back"] == "/sessions?ip=198.51.100.7"
    done = await console.post("/console/sessions/revoke", data=form, headers=SAME)
    assert done.status_code == 303
    assert done.headers["location"] == "/console/sessions?ip=198.51.100.7"
    assert await astore.validate(TENANT, token) is None

    # Its page stays, from its events; its confirmation says there is nothing to revoke.
    page = await console.get(f"/console/sessions/{session.id}")
    assert page.status_code == 200 and "Not live" in page.text
    kinds = re.findall(r'data-event-type="([^"]+)"', page.text)
    assert kinds == ["session.revoked", "session.created"]
    again = await console.get(f"/console/sessions/{session.id}/revoke")
    assert again.status_code == 404 and 'name="session_id"' not in again.text


@pytest.mark.parametrize(
    "back", ["//evil.example/x", "https://evil.example/", "/\\evil.example", "sessions"]
)
async def test_a_confirmation_goes_back_only_within_the_console(
    astore: AsyncSessionStore, console: httpx.AsyncClient, back: str
) -> None:
    session, _ = await astore.create(TENANT, 42, ip_address="198.51.100.7", user_agent="curl/8")
    confirm = await console.get(f"/console/sessions/{session.id}/revoke", params={"back": back})
    assert hidden(confirm, "back") == f"/sessions/{session.id}"  # its own page instead


@pytest.mark.parametrize(
    ("path", "status", "words"),
    [
        ("/console/sessions/sess_nope", 404, "That address names no session."),
        ("/console/sessions/sess_00AAAAAAAAAAAAAAAAAAAAAA", 404, "no event of it is kept"),
        ("/console/sessions/sess_00AAAAAAAAAAAAAAAAAAAAAA/revoke", 404, "is not live"),
        ("/console/sessions/revoke", 404, "That address names no session."),
    ],
)
async def test_a_session_that_is_not_there_is_answered_in_words(
    console: httpx.AsyncClient, path: str, status: int, words: str
) -> None:
    answer = await console.get(path)
    assert answer.status_code == status
    assert words in answer.text


async def test_the_sessions_list_pages_back_as_it_pages_on(
    astore: AsyncSessionStore,
    console: httpx.AsyncClient,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(sessions_page, "PAGE_SIZE", 3)
    for n in range(8):
        await astore.create(TENANT, n, ip_address="192.0.2.1", user_agent="curl/8")

    def shown(page: httpx.Response) -> list[str]:
        return re.findall(r'<tr data-session-id="([^"]+)"', page.text)

    def link(page: httpx.Response, words: str) -> str | None:
        found = re.search(rf'href="([^"]+)">{words}', page.text)
        return None if found is None else html.unescape(found[1])

    pages = [await console.get("/console/sessions", params={"ip": "192.0.2.1"})]
    assert link(pages[0], "Previous page") is None and link(pages[0], "First page") is None
    while (after := link(pages[-1], "Next page")) is not None:
        pages.append(await console.get(after))
    assert [len(shown(page)) for page in pages] == [3, 3, 2]
    assert all("ip=192.0.2.1" in (link(page, "Previous page") or "") for page in pages[1:])
    back = await console.get(link(pages[2], "Previous page") or "")
    assert shown(back) == shown(pages[1])
    back = await console.get(link(back, "Previous page") or "")
    assert shown(back) == shown(pages[0])
    assert link(pages[2], "First page") == "/console/sessions?ip=192.0.2.1"
