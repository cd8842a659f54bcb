"""The console in headless Chromium, against a real server on every backend.

Each flow is what an operator does: sign in, look, filter, revoke, sign out; the store then
says whether the sessions really ended. A screenshot of each screen goes to the artifacts.
"""

from __future__ import annotations

import re
from typing import Any

import pytest

from sessionstore.admin.console.app import CONTENT_SECURITY_POLICY
from tests.console.helpers import (
    IPHONE_SAFARI,
    LINUX_FIREFOX,
    Live,
    event_rows,
    rows,
    screenshot,
)

expect: Any = None  # playwright.sync_api.expect, imported by the autouse fixture below


@pytest.fixture(autouse=True)
def _expect(browser: Any) -> None:
    global expect
    from playwright.sync_api import expect as playwright_expect

    expect = playwright_expect


def sign_in(page: Any, tenant: str, key: str) -> None:
    page.goto("/console/")
    expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
    page.get_by_label("Tenant").fill(tenant)
    page.get_by_label("API key").fill(key)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("heading", name=f"Sessions of {tenant}")).to_be_visible()


def revoke(page: Any, session_id: str, user_id: int) -> None:
    """Revoke one session from a list: its "Revoke…" link, then the confirmation's button."""
    page.get_by_role("link", name=f"Revoke session {session_id} of user {user_id}…").click()
    expect(
        page.get_by_role("heading", name=f"Revoke this session of user {user_id}?")
    ).to_be_visible()
    page.get_by_role("button", name="Revoke session").click()


def total(page: Any) -> int:
    return int(page.locator("[data-total-count]").get_attribute("data-total-count"))


def test_a_wrong_key_is_answered_with_an_error(page: Any, live: Live, tenant: str) -> None:
    _, key = live.mint(tenant)
    _, other_tenants_key = live.mint(tenant + "-other")
    wrong = key[:-7] + ("A" if key[-7] != "A" else "B") + key[-6:]  # the checksum fails
    for attempt in ("sk_live_nonsense", wrong, other_tenants_key):
        page.goto("/console/signin")
        page.get_by_label("Tenant").fill(tenant)
        page.get_by_label("API key").fill(attempt)
        with page.expect_response(re.compile(r"/console/signin$")) as answer:
            page.get_by_role("button", name="Sign in").click()
        assert answer.value.status == 401
        alert = page.get_by_role("alert")
        expect(alert).to_contain_text("do not match a live API key")
        # The tenant is kept, the key is not: never written back into a page.
        expect(page.get_by_label("Tenant")).to_have_value(tenant)
        expect(page.get_by_label("API key")).to_have_value("")
        expect(page.get_by_label("API key")).to_be_focused()  # the field to type again
        assert attempt not in page.content()
    screenshot(page, live.backend, "signin-wrong-key")
    assert page.context.cookies() == []


def test_sign_in_list_filter_by_ip_and_revoke_one(page: Any, live: Live, tenant: str) -> None:
    suspect, other = "203.0.113.45", "198.51.100.23"
    made = [
        live.create(
            tenant, 456, suspect, minutes_ago=50, auth_method="password", mfa_verified=True
        ),
        live.create(
            tenant, 456, other, minutes_ago=40, user_agent=IPHONE_SAFARI, auth_method="social"
        ),
        live.create(
            tenant, 789, suspect, minutes_ago=20, user_agent=LINUX_FIREFOX, auth_method="sso"
        ),
        live.create(tenant, 790, suspect, minutes_ago=5),
    ]
    _, key = live.mint(tenant)
    page.goto("/console/")
    screenshot(page, live.backend, "signin")
    sign_in(page, tenant, key)

    # Newest first, with the count of the whole listing.
    assert rows(page) == [session.id for session, _ in reversed(made)]
    assert total(page) == 4
    expect(page.locator("#total")).to_contain_text("4 live sessions")
    first = page.locator(f"tr[data-session-id='{made[0][0].id}']")
    expect(first).to_contain_text("Chrome on macOS")
    expect(first).to_contain_text("Password")
    expect(first).to_contain_text("MFA verified")
    expect(first).to_contain_text("50 minutes ago")
    expect(first.locator("time").first).to_have_attribute("datetime", re.compile(r"Z$"))
    expect(page.locator(f"tr[data-session-id='{made[1][0].id}']")).to_contain_text("No MFA")
    screenshot(page, live.backend, "sessions")

    page.get_by_label("IP address").fill(suspect)
    page.get_by_label("IP address").press("Enter")
    expect(page.locator("#total")).to_contain_text(f"3 live sessions from {suspect}")
    assert rows(page) == [made[3][0].id, made[2][0].id, made[0][0].id]
    screenshot(page, live.backend, "sessions-by-ip")

    victim, token = made[2]
    revoke(page, victim.id, 789)
    expect(page.get_by_role("status")).to_have_text(f"Revoked session {victim.id} of user 789.")
    # Still filtered by the IP, one fewer, and the token is dead in the store.
    expect(page.locator("#total")).to_contain_text(f"2 live sessions from {suspect}")
    assert victim.id not in rows(page)
    assert not live.validates(tenant, token)
    assert all(live.validates(tenant, t) for s, t in made if s.id != victim.id)
    screenshot(page, live.backend, "revoked-one")


def test_revoke_every_session_from_an_ip_without_javascript(
    no_js_page: Any, live: Live, tenant: str
) -> None:
    page = no_js_page
    ip = "192.0.2.66"
    doomed = [live.create(tenant, user, ip, minutes_ago=user) for user in (11, 12, 13, 13)]
    spared = live.create(tenant, 11, "192.0.2.67")
    _, key = live.mint(tenant)
    sign_in(page, tenant, key)

    page.get_by_label("IP address").fill(ip)
    page.get_by_role("button", name="Filter").click()
    page.get_by_role("link", name=f"Revoke every session from {ip}…").click()
    heading = page.get_by_role("heading", name=f"Revoke every session from {ip}?")
    expect(heading).to_be_visible()
    expect(page.locator("[data-count]")).to_have_text("4 live sessions")
    screenshot(page, live.backend, "confirm-ip")

    page.get_by_role("button", name=f"Revoke 4 sessions from {ip}").click()
    expect(page.get_by_role("status")).to_have_text(f"Revoked 4 sessions from {ip}.")
    expect(page.locator("#total")).to_contain_text(f"No live sessions from {ip}")
    assert rows(page) == []
    assert not any(live.validates(tenant, token) for _, token in doomed)
    assert live.validates(tenant, spared[1])
    screenshot(page, live.backend, "revoked-ip")


def test_revoke_by_ip_from_its_own_form(page: Any, live: Live, tenant: str) -> None:
    ip = "2001:db8::7"
    made = [live.create(tenant, 5, ip), live.create(tenant, 6, ip)]
    _, key = live.mint(tenant)
    sign_in(page, tenant, key)
    page.get_by_role("link", name="Revoke by IP").click()
    page.get_by_label("IP address").fill("2001:DB8:0::7")  # any spelling of the address
    page.get_by_role("button", name="Count sessions").click()
    expect(page.locator("[data-count]")).to_have_text("2 live sessions")
    page.get_by_role("button", name=f"Revoke 2 sessions from {ip}").click()
    expect(page.get_by_role("status")).to_have_text(f"Revoked 2 sessions from {ip}.")
    assert not any(live.validates(tenant, token) for _, token in made)


def test_a_users_sessions_revoke_one_then_all(page: Any, live: Live, tenant: str) -> None:
    mine = [
        live.create(tenant, 42, "198.51.100.1", minutes_ago=90, mfa_verified=True),
        live.create(tenant, 42, "198.51.100.2", minutes_ago=30, user_agent=IPHONE_SAFARI),
        live.create(tenant, 42, "198.51.100.3", minutes_ago=3, user_agent=LINUX_FIREFOX),
    ]
    theirs = live.create(tenant, 43, "198.51.100.1")
    _, key = live.mint(tenant)
    sign_in(page, tenant, key)

    page.get_by_role("link", name="User 42: all sessions").first.click()
    expect(page.get_by_role("heading", name="User 42")).to_be_visible()
    expect(page.locator("#total")).to_have_text("3 live sessions")
    screenshot(page, live.backend, "user")

    first, first_token = mine[0]
    revoke(page, first.id, 42)
    expect(page.get_by_role("status")).to_have_text(f"Revoked session {first.id} of user 42.")
    expect(page.get_by_role("heading", name="User 42")).to_be_visible()  # back on the user
    expect(page.locator("#total")).to_have_text("2 live sessions")
    assert not live.validates(tenant, first_token)

    page.get_by_role("link", name="Revoke all sessions of user 42…").click()
    expect(page.locator("[data-count]")).to_have_text("2 live sessions")
    screenshot(page, live.backend, "confirm-user")
    page.get_by_role("button", name="Revoke 2 sessions").click()
    expect(page.get_by_role("status")).to_have_text("Revoked 2 sessions of user 42.")
    expect(page.get_by_text("User 42 has no live sessions.")).to_be_visible()
    assert not any(live.validates(tenant, token) for _, token in mine)
    assert live.validates(tenant, theirs[1])


def test_sign_out_ends_the_cookie(page: Any, live: Live, tenant: str) -> None:
    _, key = live.mint(tenant)
    sign_in(page, tenant, key)
    (cookie,) = page.context.cookies()
    assert cookie["httpOnly"] and cookie["sameSite"] == "Strict"
    assert cookie["path"] == "/console" and not cookie["secure"]  # plain http on loopback
    assert key not in str(cookie)
    record = live.console_record(cookie["value"])
    assert live.client.exists(record)
    token = page.locator("input[name=csrf]").first.input_value()

    page.get_by_role("button", name="Sign out").click()
    expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
    expect(page.get_by_role("status")).to_have_text("You are signed out.")
    assert page.context.cookies() == []
    assert not live.client.exists(record)

    # The old cookie, put back, opens nothing and changes nothing.
    page.context.add_cookies([cookie])
    page.goto("/console/sessions")
    expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
    refused = page.context.request.post(
        "/console/ip/revoke", form={"csrf": token, "ip": "192.0.2.1"}, max_redirects=0
    )
    assert refused.status == 403
    assert "You are signed out" in refused.text()


def test_bad_input_is_answered_next_to_the_field(page: Any, live: Live, tenant: str) -> None:
    _, key = live.mint(tenant)
    page.goto("/console/signin")
    page.get_by_role("button", name="Sign in").click()
    expect(page.locator("#tenant-error")).to_have_text(re.compile("Enter your tenant"))
    expect(page.locator("#api_key-error")).to_have_text(re.compile("Enter an API key"))
    page.get_by_label("Tenant").fill("Acme Corp")
    page.get_by_label("API key").fill(key)
    page.get_by_role("button", name="Sign in").click()
    expect(page.locator("#tenant-error")).to_have_text(re.compile("lower-case letters"))
    sign_in(page, tenant, key)

    page.get_by_label("User id").fill("abc")
    page.get_by_label("IP address").fill("203.0.113.300")
    with page.expect_response(re.compile(r"/console/sessions\?")) as answer:
        page.get_by_role("button", name="Filter").click()
    assert answer.value.status == 422
    for name, words in (("user", "Enter a user id"), ("ip", "Enter an IPv4 or IPv6 address")):
        field = page.locator(f"#{name}")
        expect(field).to_have_attribute("aria-invalid", "true")
        expect(field).to_have_attribute("aria-describedby", f"{name}-error")
        # The message sits right after its field, and names what to type.
        expect(page.locator(f"#{name} + .field__error")).to_contain_text(words)
    expect(page.get_by_label("User id")).to_be_focused()  # the first field to fix
    assert page.get_by_role("table").count() == 0
    screenshot(page, live.backend, "field-errors")

    page.get_by_role("link", name="Users").click()
    page.get_by_label("User id").fill("12x")
    page.get_by_role("button", name="Show sessions").click()
    expect(page.locator("#user + .field__error")).to_contain_text("whole number")
    page.goto("/console/users/-1")
    expect(page.locator("#user + .field__error")).to_contain_text("whole number")

    page.get_by_role("link", name="Revoke by IP").click()
    page.get_by_label("IP address").fill("not-an-ip")
    page.get_by_role("button", name="Count sessions").click()
    expect(page.locator("#ip + .field__error")).to_contain_text("Enter an IPv4 or IPv6 address")
    expect(page.get_by_label("IP address")).to_have_value("not-an-ip")


def test_cross_site_posts_are_refused_and_headers_are_strict(
    page: Any, live: Live, tenant: str
) -> None:
    session, token = live.create(tenant, 7, "192.0.2.7")
    _, key = live.mint(tenant)
    answer = page.goto("/console/signin")
    headers = answer.headers
    policy = headers["content-security-policy"]
    assert policy == CONTENT_SECURITY_POLICY and "unsafe-inline" not in policy
    assert "default-src 'self'" in policy and "frame-ancestors 'none'" in policy
    assert "form-action 'self'" in policy
    assert headers["x-content-type-options"] == "nosniff"
    assert headers["referrer-policy"] == "same-origin"
    assert headers["cache-control"] == "no-store"
    sign_in(page, tenant, key)
    csrf = page.locator("input[name=csrf]").first.input_value()
    form = {"csrf": csrf, "user_id": "7", "session_id": session.id}

    # No token, a wrong one, or the right one from a foreign origin: 403, nothing revoked.
    for data, extra in (
        ({k: v for k, v in form.items() if k != "csrf"}, {}),
        ({**form, "csrf": "x" * len(csrf)}, {}),
        (form, {"Origin": "http://evil.example"}),
        (form, {"Sec-Fetch-Site": "cross-site"}),
    ):
        refused = page.context.request.post(
            "/console/sessions/revoke", form=data, headers=extra, max_redirects=0
        )
        assert refused.status == 403, (data, extra)
        assert refused.headers["content-type"].startswith("text/html")
        assert live.validates(tenant, token)

    # A real cross-site form, even one that knows the token: the browser sends it from
    # another origin, without the SameSite=Strict cookie, and the console refuses it.
    page.route(
        "http://evil.example/**",
        lambda route: route.fulfill(
            content_type="text/html",
            body=f"""<form method="post" action="{live.url}/console/sessions/revoke">
              <input name="csrf" value="{csrf}"><input name="user_id" value="7">
              <input name="session_id" value="{session.id}"><button>Win a prize</button></form>""",
        ),
    )
    page.goto("http://evil.example/")
    with page.expect_response(re.compile(r"/console/sessions/revoke$")) as answer:
        page.get_by_role("button", name="Win a prize").click()
    assert answer.value.status == 403
    expect(page.get_by_role("heading", name="Refused")).to_be_visible()
    screenshot(page, live.backend, "refused-cross-site")
    assert live.validates(tenant, token)

    # The same form from the console itself works.
    page.goto("/console/sessions")
    revoke(page, session.id, 7)
    expect(page.get_by_role("status")).to_contain_text("Revoked session")
    assert not live.validates(tenant, token)


def test_keyboard_only(page: Any, live: Live, tenant: str) -> None:
    session, token = live.create(tenant, 9, "192.0.2.9")
    _, key = live.mint(tenant)
    page.goto("/console/")
    expect(page.get_by_label("Tenant")).to_be_focused()  # autofocus on the first field
    page.keyboard.type(tenant)
    page.keyboard.press("Tab")
    expect(page.get_by_label("API key")).to_be_focused()
    page.keyboard.type(key)
    page.keyboard.press("Enter")
    expect(page.get_by_role("heading", name=f"Sessions of {tenant}")).to_be_visible()

    # The first Tab reaches the skip link; every control after it is reachable in order.
    page.keyboard.press("Tab")
    expect(page.get_by_role("link", name="Skip to content")).to_be_focused()
    for control in (
        page.get_by_role("link", name=f"Revoke session {session.id} of user 9…"),
        page.get_by_role("button", name="Revoke session"),  # on the confirmation page
    ):
        for _ in range(40):
            page.keyboard.press("Tab")
            if control.evaluate("element => element === document.activeElement"):
                break
        expect(control).to_be_focused()
        page.keyboard.press("Enter")
    expect(page.get_by_role("status")).to_contain_text("Revoked session")
    assert not live.validates(tenant, token)


def test_pages_of_sessions(page: Any, live: Live, tenant: str) -> None:
    made = [live.create(tenant, 100 + n, f"192.0.2.{n}", minutes_ago=60 - n)[0] for n in range(30)]
    newest_first = [session.id for session in reversed(made)]
    _, key = live.mint(tenant)
    sign_in(page, tenant, key)
    assert total(page) == 30
    assert rows(page) == newest_first[:25]
    page.get_by_role("link", name="Next page").click()
    assert total(page) == 30
    assert rows(page) == newest_first[25:]
    expect(page.get_by_role("link", name="Next page")).to_have_count(0)
    page.get_by_role("link", name="First page").click()
    assert rows(page) == newest_first[:25]

    page.goto("/console/sessions?cursor=garbage")
    expect(page.get_by_role("alert")).to_contain_text("no longer valid")


def test_relative_times_stay_current(page: Any, live: Live, tenant: str) -> None:
    session, _ = live.create(tenant, 3, "192.0.2.3")
    _, key = live.mint(tenant)
    page.clock.install()
    sign_in(page, tenant, key)
    # The heading shows before the deferred console.js has run and set its refresh timer: a
    # clock run before that finds no timer (CI under load met it).
    page.wait_for_load_state("load")
    row = page.locator(f"tr[data-session-id='{session.id}']")
    created = row.locator(".relative").first
    expect(created).to_have_text("just now")
    expect(row.locator(".relative").nth(2)).to_have_text(re.compile(r"^in 23 hours$|^in 1 day$"))
    # The page refreshes every 30 s from when its script ran, a moment after the clock was
    # installed: 31:15 ends just after the refresh 31 minutes after the render, which rounds
    # to "31 minutes ago" whatever that moment was (under 15 s).
    page.clock.run_for("31:15")
    expect(created).to_have_text("31 minutes ago")


def test_a_revoked_api_key_ends_the_console_session(page: Any, live: Live, tenant: str) -> None:
    key_id, key = live.mint(tenant)
    sign_in(page, tenant, key)
    (cookie,) = page.context.cookies()
    record = live.console_record(cookie["value"])
    assert live.client.exists(record)
    assert live.revoke_key(key_id)
    page.reload()
    expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
    assert not live.client.exists(record)  # ended at its next request, not left to expire


def test_the_timeline_shows_who_revoked_and_filters_by_user(
    page: Any, live: Live, tenant: str
) -> None:
    first, _ = live.create(tenant, 42, "198.51.100.1", minutes_ago=30)
    second, second_token = live.create(tenant, 42, "198.51.100.2", minutes_ago=20)
    other, _ = live.create(tenant, 43, "198.51.100.3", minutes_ago=10, user_agent=LINUX_FIREFOX)
    key_id, key = live.mint(tenant)
    sign_in(page, tenant, key)
    revoke(page, second.id, 42)
    expect(page.get_by_role("status")).to_contain_text(f"Revoked session {second.id}")
    assert not live.validates(tenant, second_token)

    page.get_by_role("link", name="Events", exact=True).click()
    expect(page.get_by_role("heading", name=f"Events of {tenant}")).to_be_visible()
    expect(page.get_by_role("link", name="Events", exact=True)).to_have_attribute(
        "aria-current", "page"
    )
    # Newest first: the console's revocation, then the three sign-ins.
    assert event_rows(page) == [
        ("session.revoked", second.id),
        ("session.created", other.id),
        ("session.created", second.id),
        ("session.created", first.id),
    ]
    expect(page.locator("#events-count")).to_contain_text("4 events on this page")
    created = page.locator("tr[data-event-type='session.created']").last  # the oldest
    expect(created).to_contain_text("Created")
    expect(created).to_contain_text("30 minutes ago")
    expect(created.locator("time")).to_have_attribute("datetime", re.compile(r"Z$"))
    expect(created.locator(".actor")).to_have_text("user")
    revoked = page.locator("tr[data-event-type='session.revoked']")
    expect(revoked).to_contain_text("Revoked")
    expect(revoked).to_contain_text("198.51.100.2")
    expect(revoked).to_contain_text("just now")
    expect(revoked.locator(".actor")).to_have_text(f"admin:{key_id}")  # who: this console's key
    expect(revoked).to_contain_text(f"API key {key_id}")
    screenshot(page, live.backend, "events")

    # The user column leads to the user; the user's page leads to their events.
    revoked.get_by_role("link", name="User 42: all sessions").click()
    expect(page.get_by_role("heading", name="User 42")).to_be_visible()
    page.get_by_role("link", name="Events of user 42").click()
    expect(page.get_by_label("User id")).to_have_value("42")
    assert event_rows(page) == [
        ("session.revoked", second.id),
        ("session.created", second.id),
        ("session.created", first.id),
    ]
    expect(page.locator("#events-count")).to_contain_text("3 events on this page of user 42")

    # The filter form: another user, then only revocations.
    page.get_by_label("User id").fill("43")
    page.get_by_role("button", name="Filter").click()
    assert event_rows(page) == [("session.created", other.id)]
    page.get_by_label("User id").fill("")
    page.get_by_label("Event type").select_option(label="Revoked")
    page.get_by_role("button", name="Filter").click()
    assert event_rows(page) == [("session.revoked", second.id)]
    expect(page.get_by_label("Event type")).to_have_value("session.revoked")


def test_timeline_filters_answer_bad_input_next_to_the_field_without_javascript(
    no_js_page: Any, live: Live, tenant: str
) -> None:
    page = no_js_page
    session, _ = live.create(tenant, 7, "192.0.2.7")
    _, key = live.mint(tenant)
    sign_in(page, tenant, key)
    page.get_by_role("link", name="Events", exact=True).click()
    assert event_rows(page) == [("session.created", session.id)]

    page.get_by_label("User id").fill("seven")
    with page.expect_response(re.compile(r"/console/events\?")) as answer:
        page.get_by_role("button", name="Filter").click()
    assert answer.value.status == 422
    field = page.locator("#user")
    expect(field).to_have_attribute("aria-invalid", "true")
    expect(field).to_have_attribute("aria-describedby", "user-error")
    expect(page.locator("#user + .field__error")).to_contain_text("Enter a user id")
    expect(page.get_by_label("User id")).to_have_value("seven")
    assert page.get_by_role("table").count() == 0
    screenshot(page, live.backend, "events-field-error")

    # A type the console does not know (only reachable by editing the address).
    answer = page.goto("/console/events?type=session.hijacked")
    assert answer.status == 422
    expect(page.get_by_label("Event type")).to_have_attribute("aria-invalid", "true")
    expect(page.locator("#type + .field__error")).to_contain_text("Choose an event type")

    page.goto("/console/events?after=not-a-cursor")
    expect(page.get_by_role("alert")).to_contain_text("no longer valid")
    page.get_by_role("link", name="First page").click()
    assert event_rows(page) == [("session.created", session.id)]
