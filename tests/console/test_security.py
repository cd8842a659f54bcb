"""The console's defences, request by request, in-process: cookies, CSRF, headers, console
sessions in Redis, throttling, and words (never a traceback) on failure.

What lives in Redis (console sessions, their ends, throttling) runs on every backend; the rules
of a request (cookies, CSRF, headers, forms: ``RULE``) touch no Redis semantics and run once,
on the real Redis."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette
from starlette.routing import Mount

from sessionstore import AsyncSessionStore, StoreConfig
from sessionstore.admin import create_app
from sessionstore.admin.apikeys import ApiKeys, mint
from sessionstore.admin.console import Console
from sessionstore.admin.console.app import CONTENT_SECURITY_POLICY
from sessionstore.admin.console.auth import COOKIE, LOCAL_COOKIE, ConsoleSettings
from sessionstore.admin.ratelimit import Rate, RateLimits
from tests import backends
from tests.api.helpers import unused_port

TENANT = "acme-corp"
RULE = pytest.mark.parametrize("backend", backends.ONE_BACKEND, indirect=True)
LOCAL = "http://127.0.0.1:8080"  # a browser on the machine itself: plain http allowed
REMOTE = "https://console.example"  # anywhere else


def client_for(app: Any, base_url: str, address: str = "127.0.0.1") -> httpx.AsyncClient:
    transport = httpx.ASGITransport(app=app, client=(address, 50000))
    return httpx.AsyncClient(transport=transport, base_url=base_url)


@pytest.fixture
async def key(astore: AsyncSessionStore) -> str:
    return (await ApiKeys(astore.client, astore.config.prefix).create(TENANT))[1]


@pytest.fixture
async def local(astore: AsyncSessionStore) -> AsyncIterator[httpx.AsyncClient]:
    async with client_for(create_app(astore), LOCAL) as client:
        yield client


async def sign_in(client: httpx.AsyncClient, key: str, tenant: str = TENANT) -> httpx.Response:
    return await client.post(
        "/console/signin",
        data={"tenant": tenant, "api_key": key},
        headers={"Sec-Fetch-Site": "same-origin", "Origin": "null"},
    )


async def csrf_of(client: httpx.AsyncClient) -> str:
    page = await client.get("/console/sessions")
    match = re.search(r'name="csrf" value="([^"]+)"', page.text)
    assert match, page.text
    return match[1]


def console_keys(client: Any, prefix: str) -> list[bytes]:
    """Every key of the console: session records and each API key's list of them."""
    return [name for name in backends.keys_of(client, prefix) if b":console:" in name]


def console_records(client: Any, prefix: str) -> list[bytes]:
    """The console session records alone (named by a SHA-256)."""
    return [name for name in console_keys(client, prefix) if re.search(rb":[0-9a-f]{64}$", name)]


# -- cookies ------------------------------------------------------------------------------------


@RULE
async def test_over_https_the_cookie_is_host_prefixed_secure_httponly_strict(
    astore: AsyncSessionStore, key: str
) -> None:
    async with client_for(create_app(astore), REMOTE, address="203.0.113.9") as client:
        signed_in = await sign_in(client, key)
        assert signed_in.status_code == 303
        assert signed_in.headers["location"] == "/console/sessions"
        cookie = signed_in.headers["set-cookie"]
        assert cookie.startswith(f"{COOKIE}=")
        attributes = {part.strip().lower() for part in cookie.split(";")[1:]}
        assert attributes == {"httponly", "path=/", "samesite=strict", "secure"}
        assert key not in cookie
        assert (await client.get("/console/sessions")).status_code == 200


@pytest.mark.parametrize(
    ("base_url", "address"),
    [
        ("http://127.0.0.1:8080", "127.0.0.1"),
        ("http://localhost:8080", "::1"),
        ("http://[::1]:8080", "::1"),
    ],
)
@RULE
async def test_on_plain_http_to_loopback_the_cookie_is_not_secure_and_stays_in_the_console(
    astore: AsyncSessionStore, key: str, base_url: str, address: str
) -> None:
    async with client_for(create_app(astore), base_url, address=address) as client:
        cookie = (await sign_in(client, key)).headers["set-cookie"]
        assert cookie.startswith(f"{LOCAL_COOKIE}=")
        attributes = {part.strip().lower() for part in cookie.split(";")[1:]}
        assert attributes == {"httponly", "path=/console", "samesite=strict"}


@pytest.mark.parametrize(
    ("base_url", "address", "headers"),
    [
        ("http://192.0.2.10:8080", "192.0.2.77", {}),  # plain http off the machine
        ("http://127.0.0.1:8080", "192.0.2.77", {}),  # a remote client, whatever the Host
        ("http://127.0.0.1:8080", "127.0.0.1", {"X-Forwarded-Proto": "https"}),  # a proxy
        ("http://127.0.0.1:8080", "127.0.0.1", {"X-Forwarded-For": "192.0.2.77"}),
    ],
)
@RULE
async def test_anywhere_else_the_cookie_is_secure(
    astore: AsyncSessionStore, key: str, base_url: str, address: str, headers: dict[str, str]
) -> None:
    async with client_for(create_app(astore), base_url, address=address) as client:
        client.headers.update(headers)
        cookie = (await sign_in(client, key)).headers["set-cookie"]
        assert cookie.startswith(f"{COOKIE}=") and "Secure" in cookie


@RULE
async def test_the_local_cookie_counts_only_on_loopback_and_a_doubled_cookie_not_at_all(
    astore: AsyncSessionStore, key: str, local: httpx.AsyncClient
) -> None:
    value = (await sign_in(local, key)).cookies[LOCAL_COOKIE]
    local.cookies.clear()
    app = create_app(astore)
    # The same value under the local name, from elsewhere (a cookie tossed in): ignored.
    async with client_for(app, REMOTE, address="203.0.113.9") as remote:
        answer = await remote.get(
            "/console/sessions", headers={"Cookie": f"{LOCAL_COOKIE}={value}"}
        )
        assert answer.status_code == 303 and answer.headers["location"] == "/console/signin"
    doubled = {"Cookie": f"{LOCAL_COOKIE}={value}; {LOCAL_COOKIE}={value}"}
    assert (await local.get("/console/sessions", headers=doubled)).status_code == 303
    single = {"Cookie": f"{LOCAL_COOKIE}={value}"}
    assert (await local.get("/console/sessions", headers=single)).status_code == 200


@RULE
async def test_a_console_cookie_sent_twice_is_a_signed_out_browser(
    astore: AsyncSessionStore, key: str
) -> None:
    """The one cookie rule (sessionstore.http.credentials): the cookie twice is ambiguous, and
    the console answers it as a console session it does not know."""
    async with client_for(create_app(astore), REMOTE, address="203.0.113.9") as client:
        await sign_in(client, key)
        value, csrf = client.cookies[COOKIE], await csrf_of(client)
        client.cookies.clear()
        doubled = {"Cookie": f"{COOKIE}={value}; theme=dark; {COOKIE}={value}"}
        page = await client.get("/console/sessions", headers=doubled)
        assert page.status_code == 303 and page.headers["location"] == "/console/signin"
        same_origin = {**doubled, "Sec-Fetch-Site": "same-origin"}
        post = await client.post("/console/signout", data={"csrf": csrf}, headers=same_origin)
        assert post.status_code == 403 and "You are signed out" in post.text
        # An emptied copy is no cookie at all: the one left is the session, still live.
        for cookie in (f"{COOKIE}={value}", f"{COOKIE}=; {COOKIE}={value}"):
            answer = await client.get("/console/sessions", headers={"Cookie": cookie})
            assert answer.status_code == 200, cookie


# -- the console session in Redis ---------------------------------------------------------------


async def test_the_console_session_holds_no_key_expires_and_ends_with_sign_out(
    astore: AsyncSessionStore, client: Any, prefix: str, key: str, local: httpx.AsyncClient
) -> None:
    await sign_in(local, key)
    (name,) = console_records(client, prefix)
    stored = client.get(name)
    assert key.encode() not in stored and key[8:].encode() not in stored
    assert local.cookies[LOCAL_COOKIE].encode() not in name + stored  # only its SHA-256
    assert 0 < client.pttl(name) <= ConsoleSettings().idle_timeout * 1000

    signed_out = await local.post(
        "/console/signout",
        data={"csrf": await csrf_of(local)},
        headers={"Sec-Fetch-Site": "same-origin"},
    )
    assert signed_out.status_code == 303
    assert signed_out.headers["location"] == "/console/signin?signed-out=1"
    assert console_keys(client, prefix) == []
    assert LOCAL_COOKIE not in local.cookies  # the cookie is cleared too


async def test_a_revoked_key_ends_its_console_sessions_at_the_next_request(
    astore: AsyncSessionStore, client: Any, prefix: str, key: str, local: httpx.AsyncClient
) -> None:
    await sign_in(local, key)
    assert (await local.get("/console/sessions")).status_code == 200
    assert await ApiKeys(astore.client, prefix).revoke(key[8:24])
    answer = await local.get("/console/sessions")
    assert answer.status_code == 303 and answer.headers["location"] == "/console/signin"
    assert console_keys(client, prefix) == []


async def test_a_console_session_ends_after_its_lifetime(
    astore: AsyncSessionStore, key: str, clock: backends.Clock
) -> None:
    console = Console(astore, wall_clock=clock, settings=ConsoleSettings(lifetime=60))
    app = Starlette(routes=[Mount("/console", app=console.app())])
    async with client_for(app, LOCAL) as browser:
        await sign_in(browser, key)
        assert (await browser.get("/console/sessions")).status_code == 200
        clock.advance(61)
        assert (await browser.get("/console/sessions")).status_code == 303


async def test_a_key_of_another_tenant_or_a_wrong_key_signs_nobody_in(
    astore: AsyncSessionStore, key: str, local: httpx.AsyncClient
) -> None:
    wrong = key[:-1] + ("x" if key[-1] != "x" else "y")
    for tenant, attempt in (("globex", key), (TENANT, wrong), (TENANT, "sk_live_x0")):
        refused = await sign_in(local, attempt, tenant)
        assert refused.status_code == 401
        assert "do not match a live API key" in refused.text
        assert "set-cookie" not in refused.headers
        assert attempt not in refused.text


async def test_failed_sign_ins_are_throttled_per_address(
    astore: AsyncSessionStore, key: str, clock: backends.Clock
) -> None:
    app = create_app(astore, limits=RateLimits(failed_auth_per_ip=Rate(2, 60)), clock=clock)
    async with client_for(app, LOCAL) as browser:
        for _ in range(2):
            assert (await sign_in(browser, "sk_live_x")).status_code == 401
        throttled = await sign_in(browser, "sk_live_x")
        assert throttled.status_code == 429 and throttled.headers["retry-after"] == "30"
        assert "Too many failed sign-ins" in throttled.text
        assert (await sign_in(browser, key)).status_code == 303  # a valid key still works


# -- CSRF ------------------------------------------------------------------------------------------


@RULE
async def test_every_post_needs_this_consoles_token_and_origin(
    astore: AsyncSessionStore, key: str, local: httpx.AsyncClient
) -> None:
    session, token = await astore.create(TENANT, 5, ip_address="192.0.2.5", user_agent="curl/8")
    await sign_in(local, key)
    csrf = await csrf_of(local)
    form = {"csrf": csrf, "user_id": "5", "session_id": session.id}
    same = {"Sec-Fetch-Site": "same-origin"}
    refusals: list[tuple[dict[str, str], dict[str, str]]] = [
        ({k: v for k, v in form.items() if k != "csrf"}, same),
        ({**form, "csrf": ""}, same),
        ({**form, "csrf": csrf[:-1] + ("A" if csrf[-1] != "A" else "B")}, same),
        (form, {"Sec-Fetch-Site": "cross-site"}),
        (form, {"Sec-Fetch-Site": "same-site"}),
        (form, {"Origin": "http://evil.example"}),
        (form, {"Origin": "http://127.0.0.1:8081"}),
        (form, {"Origin": "null"}),
    ]
    for data, headers in refusals:
        refused = await local.post("/console/sessions/revoke", data=data, headers=headers)
        assert refused.status_code == 403, (data, headers)
        assert refused.headers["content-type"].startswith("text/html")
        assert "Nothing was changed" in refused.text or "another site" in refused.text
    assert await astore.validate(TENANT, token) is not None

    # Sign-in too refuses a foreign origin (login CSRF).
    local.cookies.clear()
    foreign = await local.post(
        "/console/signin",
        data={"tenant": TENANT, "api_key": key},
        headers={"Sec-Fetch-Site": "cross-site"},
    )
    assert foreign.status_code == 403 and "set-cookie" not in foreign.headers


@RULE
async def test_a_form_with_its_token_from_this_console_is_done(
    astore: AsyncSessionStore, key: str, local: httpx.AsyncClient
) -> None:
    session, token = await astore.create(TENANT, 5, ip_address="192.0.2.5", user_agent="curl/8")
    await sign_in(local, key)
    csrf = await csrf_of(local)
    for headers in (
        {"Sec-Fetch-Site": "same-origin", "Origin": "null"},  # what Chromium sends here
        {"Origin": LOCAL},  # a browser without Sec-Fetch-Site
        {},  # neither: the token decides
        # The one rule (sessionstore.http.origin) takes a browser at its word: "none" is the
        # user's own navigation, and a client that contradicts itself is no browser, so no
        # other site's page made it. The token still decides.
        {"Sec-Fetch-Site": "none"},
        {"Sec-Fetch-Site": "same-origin", "Origin": "https://evil.example"},
    ):
        done = await local.post(
            "/console/sessions/revoke",
            data={"csrf": csrf, "user_id": "5", "session_id": session.id, "back": "/users/5"},
            headers=headers,
        )
        assert done.status_code == 303 and done.headers["location"] == "/console/users/5"
    assert await astore.validate(TENANT, token) is None


# What a browser without Fetch Metadata sends from somewhere that is not this console: the
# one cross-site rule (sessionstore.http.origin) compares whole origins and never trusts null.
FOREIGN_ORIGINS = [
    ("opaque origin", LOCAL, "127.0.0.1", "null"),
    ("the same host and port over https", LOCAL, "127.0.0.1", "https://127.0.0.1:8080"),
    ("the same host over plain http", REMOTE, "203.0.113.9", "http://console.example"),
    ("the same host on another port", REMOTE, "203.0.113.9", "https://console.example:8443"),
]


@pytest.mark.parametrize(
    ("base_url", "address", "origin"),
    [row[1:] for row in FOREIGN_ORIGINS],
    ids=[row[0] for row in FOREIGN_ORIGINS],
)
@RULE
async def test_a_form_from_another_origin_changes_nothing(
    astore: AsyncSessionStore, key: str, base_url: str, address: str, origin: str
) -> None:
    session, token = await astore.create(TENANT, 5, ip_address="192.0.2.5", user_agent="curl/8")
    async with client_for(create_app(astore), base_url, address=address) as client:
        assert (await sign_in(client, key)).status_code == 303
        form = {"csrf": await csrf_of(client), "user_id": "5", "session_id": session.id}
        refused = await client.post(
            "/console/sessions/revoke", data=form, headers={"Origin": origin}
        )
        assert refused.status_code == 403
        assert "another site" in refused.text
        assert await astore.validate(TENANT, token) is not None

        client.cookies.clear()
        foreign = await client.post(
            "/console/signin", data={"tenant": TENANT, "api_key": key}, headers={"Origin": origin}
        )
        assert foreign.status_code == 403 and "set-cookie" not in foreign.headers


@RULE
async def test_back_never_leaves_the_console(
    astore: AsyncSessionStore, key: str, local: httpx.AsyncClient
) -> None:
    await sign_in(local, key)
    csrf = await csrf_of(local)
    for back in ("//evil.example/", "https://evil.example/", "/\\evil.example", "evil", ""):
        done = await local.post(
            "/console/sessions/revoke",
            data={"csrf": csrf, "user_id": "5", "session_id": "sess_00" + "A" * 22, "back": back},
        )
        assert done.headers["location"] == "/console/sessions", back


@RULE
async def test_forms_are_small_url_encoded_and_say_each_field_once(
    astore: AsyncSessionStore, key: str, local: httpx.AsyncClient
) -> None:
    await sign_in(local, key)
    csrf = await csrf_of(local)
    as_json = await local.post("/console/ip/revoke", json={"csrf": csrf, "ip": "192.0.2.1"})
    assert as_json.status_code == 415
    huge = await local.post("/console/ip/revoke", data={"csrf": csrf, "ip": "1" * 5000})
    assert huge.status_code == 413
    twice = await local.post(
        "/console/ip/revoke",
        content=f"csrf={csrf}&ip=192.0.2.1&ip=192.0.2.2",
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert twice.status_code == 400


# -- headers and errors ------------------------------------------------------------------------


@RULE
async def test_every_answer_carries_the_security_headers(
    astore: AsyncSessionStore, key: str, local: httpx.AsyncClient
) -> None:
    answers = [
        await local.get("/console/signin"),
        await local.get("/console/static/console.css"),
        await local.get("/console/static/console.js"),
        await local.get("/console/no-such-page"),
        await local.post("/console/sessions"),  # 405
        await local.post("/console/signout", data={"csrf": ""}),  # 403
    ]
    await sign_in(local, key)
    answers += [await local.get("/console/sessions"), await local.get("/console/users/1")]
    for answer in answers:
        headers = answer.headers
        assert headers["content-security-policy"] == CONTENT_SECURITY_POLICY, answer.url
        assert headers["cache-control"] == "no-store"
        assert headers["x-content-type-options"] == "nosniff"
        assert headers["referrer-policy"] == "same-origin"
        assert headers["x-frame-options"] == "DENY"
    assert "unsafe-inline" not in CONTENT_SECURITY_POLICY
    assert "unsafe-eval" not in CONTENT_SECURITY_POLICY
    for directive in ("default-src 'self'", "frame-ancestors 'none'", "form-action 'self'"):
        assert directive in CONTENT_SECURITY_POLICY
    assert [answer.status_code for answer in answers] == [200, 200, 200, 404, 405, 403, 200, 200]
    assert answers[1].headers["content-type"].startswith("text/css")
    assert answers[2].headers["content-type"].split(";")[0] in (
        "text/javascript",
        "application/javascript",
    )
    assert "No such page" in answers[3].text  # words, not problem+json


@RULE
async def test_pages_have_no_inline_script_or_style(
    astore: AsyncSessionStore, key: str, local: httpx.AsyncClient
) -> None:
    session, _ = await astore.create(TENANT, 5, ip_address="192.0.2.5", user_agent="curl/8")
    pages = [await local.get("/console/signin")]
    await sign_in(local, key)
    for path in (
        "/sessions",
        "/users/5",
        "/users/5/revoke-all",
        "/ip/revoke?ip=192.0.2.5",
        f"/sessions/{session.id}",
        f"/sessions/{session.id}/revoke",
        "/events?ip=192.0.2.5",
    ):
        pages.append(await local.get(f"/console{path}"))
    for page in pages:
        assert page.status_code == 200
        assert not re.search(r"<script(?![^>]*\bsrc=)", page.text), page.url
        assert "<style" not in page.text and " style=" not in page.text, page.url
        assert not re.search(r"\son[a-z]+=", page.text), page.url  # no inline handlers
        assert "http://" not in page.text and "https://" not in page.text  # nothing external


async def test_an_unreachable_store_is_a_503_page_in_words() -> None:
    store = AsyncSessionStore.from_url(
        f"redis://127.0.0.1:{unused_port()}", config=StoreConfig(prefix=backends.new_prefix())
    )
    _, key = mint()  # well-formed, so checking it needs Redis
    try:
        async with client_for(create_app(store), LOCAL) as browser:
            assert (await browser.get("/console/signin")).status_code == 200  # needs no Redis
            junk = await browser.post("/console/signin", data={"tenant": TENANT, "api_key": "x"})
            assert junk.status_code == 401  # a malformed key is refused without Redis
            down = await browser.post("/console/signin", data={"tenant": TENANT, "api_key": key})
            listing = await browser.get(
                "/console/sessions", headers={"Cookie": f"{LOCAL_COOKIE}={'a' * 16}.{'a' * 43}"}
            )
            for answer in (down, listing):
                assert answer.status_code == 503
                assert answer.headers["retry-after"] == "1"
                assert answer.headers["content-type"].startswith("text/html")
                assert "The session store is unavailable" in answer.text
                assert "Traceback" not in answer.text and key not in answer.text
    finally:
        await store.aclose()
