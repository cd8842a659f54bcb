"""The console and session events, in-process: each revocation made from the console is
recorded with its API key as the actor, and the timeline answers in words. Events in Redis are
tested on every backend (tests/store/test_events.py); these run once, on the real Redis."""

from __future__ import annotations

import html
import re
from collections.abc import AsyncIterator

import httpx
import pytest

from sessionstore import AsyncSessionStore, StoreConfig
from sessionstore.admin import create_app
from sessionstore.admin.apikeys import ApiKeys
from sessionstore.admin.console.app import CONTENT_SECURITY_POLICY
from tests import backends
from tests.console.test_security import LOCAL, TENANT, client_for, csrf_of, sign_in


@pytest.fixture(params=backends.ONE_BACKEND)
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


SAME = {"Sec-Fetch-Site": "same-origin"}


@pytest.fixture
def config(prefix: str) -> StoreConfig:
    return StoreConfig(prefix=prefix, events=True)


@pytest.fixture
async def key_and_id(astore: AsyncSessionStore) -> tuple[str, str]:
    record, key = await ApiKeys(astore.client, astore.config.prefix).create(TENANT)
    return record.id, key


@pytest.fixture
async def console(
    astore: AsyncSessionStore, key_and_id: tuple[str, str]
) -> AsyncIterator[httpx.AsyncClient]:
    async with client_for(create_app(astore), LOCAL) as client:
        assert (await sign_in(client, key_and_id[1])).status_code == 303
        yield client


def order(event_id: str) -> tuple[int, int, str]:
    ms, sequence, bucket = event_id.split("-")
    return int(ms), int(sequence), bucket


async def revocations(astore: AsyncSessionStore) -> list[tuple[str, str, str | None]]:
    page = await astore.events(TENANT, types=["session.revoked"])
    return [(event.session_id, event.actor, event.reason) for event in page.data]


async def test_every_console_revocation_records_its_api_key_as_the_actor(
    astore: AsyncSessionStore, key_and_id: tuple[str, str], console: httpx.AsyncClient
) -> None:
    key_id = key_and_id[0]
    actor = f"admin:{key_id}"
    one, _ = await astore.create(TENANT, 5, ip_address="192.0.2.5", user_agent="curl/8")
    alls = [await astore.create(TENANT, 6, ip_address="192.0.2.6", user_agent="curl/8")]
    alls.append(await astore.create(TENANT, 6, ip_address="192.0.2.7", user_agent="curl/8"))
    by_ip, _ = await astore.create(TENANT, 8, ip_address="198.51.100.8", user_agent="curl/8")
    csrf = await csrf_of(console)

    # Events of different users may share a millisecond and merge in bucket order: compare
    # each step's new events as a set.
    seen: set[tuple[str, str, str | None]] = set()

    async def new_revocations() -> set[tuple[str, str, str | None]]:
        now = set(await revocations(astore))
        fresh = now - seen
        seen.update(now)
        return fresh

    done = await console.post(
        "/console/sessions/revoke",
        data={"csrf": csrf, "user_id": "5", "session_id": one.id},
        headers=SAME,
    )
    assert done.status_code == 303
    assert await new_revocations() == {(one.id, actor, None)}

    done = await console.post("/console/users/6/revoke-all", data={"csrf": csrf}, headers=SAME)
    assert done.status_code == 303
    assert await new_revocations() == {(session.id, actor, "revoke_all") for session, _ in alls}

    done = await console.post(
        "/console/ip/revoke", data={"csrf": csrf, "ip": "198.51.100.8"}, headers=SAME
    )
    assert done.status_code == 303
    assert await new_revocations() == {(by_ip.id, actor, "bulk")}

    # The timeline shows them, with the actor.
    timeline = await console.get("/console/events", params={"type": "session.revoked"})
    assert timeline.status_code == 200
    shown = re.findall(r'data-event-id="[^"]+" data-event-type="([^"]+)"', timeline.text)
    assert shown == ["session.revoked"] * 4
    assert timeline.text.count(f'<code class="actor">{actor}</code>') == 4
    for words in ("All of the user&#39;s sessions", "Bulk revocation (by IP)"):
        assert words in timeline.text


def links(page: httpx.Response) -> dict[str, str]:
    """The pager's links by their first words: First page, Previous page, Next page."""
    found = re.findall(
        r'<a class="button[^"]*"(?: rel="\w+")? href="([^"]+)">([A-Z][a-z]+ page)', page.text
    )
    return {words: html.unescape(href) for href, words in found}


async def test_the_timeline_is_newest_first_filters_by_user_and_type_and_pages_both_ways(
    astore: AsyncSessionStore, console: httpx.AsyncClient
) -> None:
    made = [
        (await astore.create(TENANT, user, ip_address="192.0.2.1", user_agent="curl/8"))[0]
        for user in [1] * 55 + [2] * 3
    ]
    await astore.mark_mfa_verified(TENANT, made[-1].id)
    everything = [event.id for event in (await astore.events(TENANT, limit=100)).data]

    first = await console.get("/console/events")
    ids = re.findall(r'data-event-id="([^"]+)"', first.text)
    assert ids == everything[::-1][:50]  # newest first, a whole page even of one burst
    assert set(links(first)) == {"Next page"}  # the newest: nothing before it
    second = await console.get(links(first)["Next page"])
    more = re.findall(r'data-event-id="([^"]+)"', second.text)
    assert more == everything[::-1][50:]
    # The last page offers the way back, not only the first page.
    assert set(links(second)) == {"First page", "Previous page"}
    back = await console.get(links(second)["Previous page"])
    assert re.findall(r'data-event-id="([^"]+)"', back.text) == ids
    assert set(links(back)) == {"First page", "Next page"}

    mine = await console.get("/console/events", params={"user": "2"})
    assert len(re.findall(r'data-event-id="', mine.text)) == 4
    assert 'href="/console/users/2"' in mine.text
    mfa = await console.get("/console/events", params={"user": "2", "type": "session.mfa_verified"})
    assert re.findall(r'data-event-type="([^"]+)"', mfa.text) == ["session.mfa_verified"]
    assert "MFA verified" in mfa.text
    # Every event links to its session's own page.
    assert f'href="/console/sessions/{made[-1].id}"' in mfa.text


async def test_the_timeline_filters_by_ip_address_and_offers_to_revoke_from_it(
    astore: AsyncSessionStore, console: httpx.AsyncClient
) -> None:
    theirs, _ = await astore.create(TENANT, 7, ip_address="2001:db8::5", user_agent="curl/8")
    await astore.create(TENANT, 8, ip_address="192.0.2.8", user_agent="curl/8")
    answer = await console.get("/console/events", params={"ip": "2001:DB8:0::5"})
    assert answer.status_code == 200
    assert re.findall(r'data-event-id="[^"]+" data-event-type="([^"]+)"', answer.text) == [
        "session.created"
    ]
    assert theirs.id in answer.text
    assert "1 event on this page</strong> from 2001:db8::5" in answer.text
    assert 'href="/console/ip/revoke?ip=2001%3Adb8%3A%3A5"' in answer.text
    assert 'href="/console/sessions?ip=2001%3Adb8%3A%3A5"' in answer.text


@pytest.mark.parametrize(
    ("params", "field", "words"),
    [
        ({"user": "abc"}, "user", "Enter a user id"),
        ({"user": "-1"}, "user", "whole number"),
        ({"type": "session.hacked"}, "type", "Choose an event type"),
        ({"ip": "203.0.113.300"}, "ip", "Enter an IPv4 or IPv6 address"),
    ],
)
async def test_bad_filters_are_answered_next_to_the_field(
    console: httpx.AsyncClient, params: dict[str, str], field: str, words: str
) -> None:
    answer = await console.get("/console/events", params=params)
    assert answer.status_code == 422
    assert f'aria-describedby="{field}-error" aria-invalid="true"' in answer.text
    error = re.search(rf'<p class="field__error" id="{field}-error">(.*?)</p>', answer.text)
    assert error is not None and words in error[1]
    assert "<table" not in answer.text


@pytest.mark.parametrize(
    "params",
    [{"after": "garbage"}, {"before": "garbage"}, {"after": "1-0-00", "before": "1-0-00"}],
)
async def test_a_bad_cursor_is_answered_in_words(
    console: httpx.AsyncClient, params: dict[str, str]
) -> None:
    answer = await console.get("/console/events", params=params)
    assert answer.status_code == 422
    assert "no longer valid" in answer.text


async def test_the_timeline_is_hardened_like_every_page(
    astore: AsyncSessionStore, console: httpx.AsyncClient
) -> None:
    await astore.create(TENANT, 5, ip_address="192.0.2.5", user_agent="curl/8")
    page = await console.get("/console/events", params={"user": "5"})
    assert page.status_code == 200
    assert page.headers["content-security-policy"] == CONTENT_SECURITY_POLICY
    assert page.headers["cache-control"] == "no-store"
    assert not re.search(r"<script(?![^>]*\bsrc=)", page.text)
    assert "<style" not in page.text and " style=" not in page.text
    assert not re.search(r"\son[a-z]+=", page.text)
    assert '<label for="type">Event type</label>' in page.text
    assert '<label for="user">User id</label>' in page.text
    assert (await console.post("/console/events")).status_code == 405

    console.cookies.clear()
    signed_out = await console.get("/console/events")
    assert signed_out.status_code == 303 and signed_out.headers["location"] == "/console/signin"


async def test_without_events_the_timeline_says_how_to_turn_them_on(
    prefix: str, backend: str, astore: AsyncSessionStore, key_and_id: tuple[str, str]
) -> None:
    off = AsyncSessionStore(astore.client, config=StoreConfig(prefix=prefix))
    async with client_for(create_app(off), LOCAL) as client:
        await sign_in(client, key_and_id[1])
        answer = await client.get("/console/events")
    assert answer.status_code == 200
    assert "This server records no session events" in answer.text
    assert "sessionstore serve --events" in answer.text and "--demo" in answer.text
    assert "<table" not in answer.text
