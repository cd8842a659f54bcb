"""Incident response in headless Chromium, on every backend: what happened most recently,
what happened from this IP, and how to end it; on a desktop and on a phone; with a
confirmation before every revocation, and words a person would write.

One console server per backend and one browser for the module (the other browser tests run
on the real Redis only: these are the issue's flows, so they run on all three; the phone's
layout and words, which no backend changes, on the real Redis). Any script
error or Content-Security-Policy refusal fails a test (conftest.Problems). The screenshots of
the first test at 1,280 and 390 px are the README's (docs/console-events-*.png are copies).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest

from sessionstore.admin.console.pages import events as events_page
from sessionstore.admin.console.pages import sessions as sessions_page
from tests import backends
from tests.console.conftest import console_server, open_page
from tests.console.helpers import (
    IPHONE_SAFARI,
    LINUX_FIREFOX,
    Live,
    event_rows,
    rows,
    screenshot,
)

expect: Any = None  # playwright.sync_api.expect, imported by the autouse fixture below

DESKTOP = {"width": 1280, "height": 800}
PHONE = {"width": 390, "height": 844}
PHONE_OPTIONS = {"viewport": PHONE, "is_mobile": True, "has_touch": True}


@pytest.fixture(scope="module", params=backends.BACKENDS)
def live(request: pytest.FixtureRequest) -> Iterator[Live]:
    """One console server per backend for the module (this overrides conftest's, which
    serves the real Redis only)."""
    with console_server(str(request.param)) as served:
        yield served


@pytest.fixture(autouse=True)
def _expect(browser: Any) -> None:
    global expect
    from playwright.sync_api import expect as playwright_expect

    expect = playwright_expect


@pytest.fixture
def opened(browser: Any, live: Live) -> Iterator[Any]:
    """Open pages (``opened(**options)``); each is closed, and checked for script errors and
    CSP refusals, at the end."""
    made = []

    def open_one(**options: Any) -> Any:
        context, page, problems = open_page(browser, live, **options)
        made.append((context, problems))
        return page

    yield open_one
    for context, problems in made:
        context.close()
        assert problems.seen == []


def sign_in(page: Any, tenant: str, key: str) -> None:
    page.goto("/console/signin")
    page.get_by_label("Tenant").fill(tenant)
    page.get_by_label("API key").fill(key)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("heading", name=f"Sessions of {tenant}")).to_be_visible()


def fits(page: Any, width: int) -> None:
    """The page is no wider than the window: nothing scrolls sideways, even when asked to."""
    page.wait_for_load_state("load")  # after a form's redirect too: the stylesheet applied
    wide, scrolled = page.evaluate(
        "() => { window.scrollTo(10000, 0);"
        " return [document.documentElement.scrollWidth, window.scrollX]; }"
    )
    assert (wide, scrolled) == (min(wide, width), 0), (page.url, wide, scrolled)


def ids_on_one_line(page: Any) -> None:
    """Every session id and button in a table is one line (no break inside a token)."""
    lines = page.locator("table .session-id, table .button").evaluate_all(
        """found => found.map(element => {
            const range = document.createRange();
            range.selectNodeContents(element);
            return new Set([...range.getClientRects()].map(rect => Math.round(rect.top))).size;
        })"""
    )
    assert lines and set(lines) == {1}, (page.url, lines)


def test_incident_response_newest_first_by_ip_then_revoke_everything_from_it(
    opened: Any, live: Live, tenant: str
) -> None:
    """The walkthrough of README (Events: incident response), at 1,280 px, then at 390 px."""
    suspect = "203.0.113.45"
    older, _ = live.create(tenant, 456, suspect, minutes_ago=90, mfa_verified=True)
    theirs, _ = live.create(tenant, 789, suspect, minutes_ago=30, user_agent=LINUX_FIREFOX)
    elsewhere, spared = live.create(tenant, 456, "198.51.100.23", minutes_ago=20)
    newest, _ = live.create(tenant, 790, suspect, minutes_ago=2, user_agent=IPHONE_SAFARI)
    key_id, key = live.mint(tenant)
    page = opened(viewport=DESKTOP)
    sign_in(page, tenant, key)

    # What happened most recently: the timeline opens on the newest events.
    page.get_by_role("link", name="Events", exact=True).click()
    created = "session.created"
    assert event_rows(page) == [
        (created, newest.id), (created, elsewhere.id), (created, theirs.id), (created, older.id)
    ]  # fmt: skip
    expect(page.locator("tr[data-event-type]").first).to_contain_text("2 minutes ago")

    # What happened from this IP: its link on the newest event filters the timeline by it.
    page.get_by_role("link", name=f"Events from {suspect}").first.click()
    expect(page.get_by_label("IP address")).to_have_value(suspect)
    assert event_rows(page) == [(created, newest.id), (created, theirs.id), (created, older.id)]
    expect(page.locator("#events-count")).to_contain_text(f"3 events on this page from {suspect}")

    # How to end it: revoke everything from it, after a confirmation that counts it.
    page.get_by_role("link", name=f"Revoke every session from {suspect}…").click()
    expect(page.locator("[data-count]")).to_have_text("3 live sessions")
    page.get_by_role("button", name=f"Revoke 3 sessions from {suspect}").click()
    expect(page.get_by_role("status")).to_have_text(f"Revoked 3 sessions from {suspect}.")
    expect(page.locator("#total")).to_contain_text(f"No live sessions from {suspect}")
    assert live.validates(tenant, spared)
    assert live.store.list_sessions(tenant, ip_address=suspect).data == []

    # Confirm: the IP's events, newest first, now begin with the revocations, by this key.
    page.get_by_role("link", name=f"Events from {suspect}, newest first").click()
    shown = event_rows(page)
    assert {session for _, session in shown[:3]} == {newest.id, theirs.id, older.id}
    assert [kind for kind, _ in shown] == ["session.revoked"] * 3 + [created] * 3
    revoked = page.locator("tr[data-event-type='session.revoked']")
    expect(revoked.first.locator(".actor")).to_have_text(f"admin:{key_id}")
    expect(revoked.first).to_contain_text("Bulk revocation (by IP)")
    fits(page, DESKTOP["width"])
    ids_on_one_line(page)
    screenshot(page, live.backend, "incident-events-1280")

    # The same screen on a phone: nothing scrolls sideways, the table scrolls in its box.
    page.set_viewport_size(PHONE)
    fits(page, PHONE["width"])
    wrap = page.locator(".table-wrap")
    assert wrap.evaluate("box => box.scrollWidth > box.clientWidth")
    screenshot(page, live.backend, "incident-events-390")


def test_every_revoke_is_confirmed_and_a_session_has_its_own_page_without_javascript(
    opened: Any, live: Live, tenant: str
) -> None:
    phone, phone_token = live.create(
        tenant, 42, "198.51.100.1", minutes_ago=45, user_agent=IPHONE_SAFARI, mfa_verified=True
    )
    laptop, laptop_token = live.create(tenant, 42, "198.51.100.2")  # fresh: 24 hours to live
    key_id, key = live.mint(tenant)
    page = opened(viewport=DESKTOP, java_script_enabled=False)
    sign_in(page, tenant, key)
    # No list revokes in one click: each row's "Revoke…" is a link to a confirmation.
    assert page.locator("form[action$='/sessions/revoke']").count() == 0
    # At a desktop width the whole table fits its box, every id on one line.
    assert page.locator(".table-wrap").evaluate("box => box.scrollWidth <= box.clientWidth")
    expect(page.locator(f"tr[data-session-id='{laptop.id}'] .relative").nth(2)).to_have_text(
        "in 1 day"  # rounded to the nearest unit, not down to "in 23 hours"
    )
    ids_on_one_line(page)

    # The confirmation names whose session, the device, the IP and the last activity; Cancel
    # changes nothing.
    page.get_by_role("link", name=f"Revoke session {phone.id} of user 42…").click()
    expect(page.get_by_role("heading", name="Revoke this session of user 42?")).to_be_visible()
    facts = page.locator("#confirm-facts")
    for words in ("42", "Mobile Safari on iOS", "198.51.100.1", "45 minutes ago"):
        expect(facts).to_contain_text(words)
    screenshot(page, live.backend, "confirm-session")
    page.get_by_role("link", name="Cancel").click()
    expect(page.get_by_role("heading", name=f"Sessions of {tenant}")).to_be_visible()
    assert live.validates(tenant, phone_token)

    # The session's own page: every field, its events, and revoke (confirmed too).
    page.get_by_role("link", name=f"Session {phone.id}: details and events").click()
    expect(page.get_by_role("heading", name=f"Session {phone.id}")).to_be_visible()
    fields = page.locator("#session-fields")
    for words in (
        phone.id, "42", "Mobile Safari on iOS", "Mobile", "iOS", IPHONE_SAFARI, "198.51.100.1",
        "Unknown", "Password", "MFA verified", "Not bound to a device key", "45 minutes ago",
        "in 23 hours",
    ):  # fmt: skip
        expect(fields).to_contain_text(words)
    assert event_rows(page) == [("session.created", phone.id)]
    screenshot(page, live.backend, "session")
    page.get_by_role("link", name=f"Revoke session {phone.id} of user 42…").click()
    page.get_by_role("button", name="Revoke session").click()
    expect(page.get_by_role("status")).to_have_text(f"Revoked session {phone.id} of user 42.")
    # Back on its page: no longer live, and its events say who ended it.
    expect(page.get_by_text("Not live")).to_be_visible()
    assert event_rows(page) == [("session.revoked", phone.id), ("session.created", phone.id)]
    expect(page.locator("tr[data-event-type='session.revoked'] .actor")).to_have_text(
        f"admin:{key_id}"
    )
    assert not live.validates(tenant, phone_token)

    # From the user's page, the same confirmation, then back to the user.
    page.get_by_role("link", name="User 42: all sessions").first.click()
    expect(page.locator("#total")).to_have_text("1 live session")
    page.get_by_role("link", name=f"Revoke session {laptop.id} of user 42…").click()
    expect(page.locator("#confirm-facts")).to_contain_text("198.51.100.2")
    page.get_by_role("button", name="Revoke session").click()
    expect(page.get_by_role("status")).to_have_text(f"Revoked session {laptop.id} of user 42.")
    expect(page.locator("#total")).to_have_text("User 42 has no live sessions.")
    assert not live.validates(tenant, laptop_token)

    # A confirmation for a session that has ended says so, and offers nothing to revoke.
    answer = page.goto(f"/console/sessions/{laptop.id}/revoke")
    assert answer is not None and answer.status == 404
    expect(page.get_by_role("heading", name=f"Session {laptop.id} is not live")).to_be_visible()
    assert page.get_by_role("button", name="Revoke session").count() == 0


# Layout and words, on the real Redis only (backends.ONE_BACKEND): nothing here depends on
# the backend, and the listing and timeline pages it walks are paged on every backend in
# process by test_pages.py and test_events.py.
@pytest.mark.parametrize("live", backends.ONE_BACKEND, indirect=True)
def test_on_a_phone_no_page_scrolls_sideways_and_the_words_read_right(
    opened: Any, live: Live, tenant: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Small pages (the server runs in this process), so that a few sessions make three
    # pages of the list and two of the timeline.
    monkeypatch.setattr(sessions_page, "PAGE_SIZE", 10)
    monkeypatch.setattr(events_page, "EVENTS_PAGE", 20)
    wide_ip = "2001:db8:85a3:1234:5678:8a2e:370:7334"
    made = [live.create(tenant, 100 + n, f"192.0.2.{n}", minutes_ago=120 - n)[0] for n in range(21)]
    wide, _ = live.create(tenant, 7, wide_ip, minutes_ago=1, user_agent=IPHONE_SAFARI)
    newest_first = [made_one.id for made_one in reversed(made)]
    _, key = live.mint(tenant)
    page = opened(**PHONE_OPTIONS)
    page.goto("/console/signin")
    fits(page, PHONE["width"])
    sign_in(page, tenant, key)
    fits(page, PHONE["width"])
    assert page.locator(".table-wrap").evaluate("box => box.scrollWidth > box.clientWidth")
    if live.backend == "redis":  # one backend's is enough (each costs a second)
        screenshot(page, live.backend, "phone-sessions")

    # "Previous page" wherever there is a next page, and on the last.
    first_page = rows(page)
    assert first_page == [wide.id, *newest_first[:9]]
    page.get_by_role("link", name="Next page").click()
    assert rows(page) == newest_first[9:19]
    page.get_by_role("link", name="Next page").click()
    assert rows(page) == newest_first[19:]
    expect(page.get_by_role("link", name="First page")).to_be_visible()
    page.get_by_role("link", name="Previous page").click()
    assert rows(page) == newest_first[9:19]
    page.get_by_role("link", name="Previous page").click()
    assert rows(page) == first_page
    expect(page.get_by_role("link", name="Previous page")).to_have_count(0)

    # The events: newest first, paged both ways, and the address that would widen a heading.
    page.get_by_role("link", name="Events", exact=True).click()
    timeline = event_rows(page)
    assert len(timeline) == 20 and timeline[0] == ("session.created", wide.id)
    fits(page, PHONE["width"])
    page.get_by_role("link", name=re.compile("^Next page")).click()
    assert event_rows(page) == [("session.created", made[1].id), ("session.created", made[0].id)]
    page.get_by_role("link", name=re.compile("^Previous page")).click()
    assert event_rows(page) == timeline

    for path in (
        f"/console/events?ip={wide_ip}",
        f"/console/ip/revoke?ip={wide_ip}",
        "/console/users/7",
        "/console/users/7/revoke-all",
        f"/console/sessions/{made[0].id}",
        f"/console/sessions/{made[0].id}/revoke",
    ):
        page.goto(path)
        fits(page, PHONE["width"])

    # Words: counts in English, a user-id error as a sentence.
    page.goto("/console/users/999")
    expect(page.locator("#total")).to_have_text("User 999 has no live sessions.")
    page.goto("/console/sessions?ip=192.0.2.250")
    expect(page.locator("#total")).to_contain_text("No live sessions from 192.0.2.250")
    page.goto("/console/users?user=-1")
    error = page.locator("#user + .field__error")
    expect(error).to_contain_text("Enter a user id: a whole number, such as 456")
    assert "922337" not in error.inner_text()
    fits(page, PHONE["width"])
