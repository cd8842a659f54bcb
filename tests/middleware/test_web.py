"""web.py's decisions, which need no store: tokens, addresses, cookies, refusals, settings."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import pytest

from sessionstore import InvalidArgument, InvalidTenant
from sessionstore.inputs import bearer_token
from sessionstore.web import (
    Credential,
    Policy,
    cookie_max_age,
    cookie_value,
    sets_cookie,
)

TOKEN = "sst_" + "a" * 64


def policy(**options: Any) -> Policy:
    return Policy("acme-corp", **options)


@pytest.mark.parametrize(
    ("header", "value"),
    [
        (None, None),
        ("", None),
        ("session=abc", "abc"),
        ("theme=dark; session=abc; lang=en", "abc"),
        ('session="abc"', "abc"),
        ("session=; other=x", None),
        ("xsession=abc; sessionx=def", None),
        ("session=first; session=second", "first"),
        ("garbage; session=abc", "abc"),
    ],
)
def test_cookie_value(header: str | None, value: str | None) -> None:
    assert cookie_value(header, "session") == value


@pytest.mark.parametrize(
    ("header", "token"),
    [
        (None, None),
        ("Bearer abc", "abc"),
        ("bearer   abc  ", "abc"),
        ("BEARER abc", "abc"),
        ("Bearer", None),
        ("Bearer   ", None),
        ("Basic abc", None),
        ("Bearerabc", None),
    ],
)
def test_bearer_token(header: str | None, token: str | None) -> None:
    assert bearer_token(header) == token


def test_find_token_follows_the_order_and_names_the_source() -> None:
    both = ("session=from-cookie", "Bearer from-header")
    assert policy().find_token(*both) == Credential("from-cookie", "cookie")
    assert policy(token_sources=["header", "cookie"]).find_token(*both) == Credential(
        "from-header", "header"
    )
    assert policy(token_sources=["cookie"]).find_token(None, "Bearer x") is None
    # An empty first source falls through to the next one.
    assert policy().find_token("session=", "Bearer x") == Credential("x", "header")


def test_a_credential_never_shows_its_token() -> None:
    assert TOKEN not in repr(Credential(TOKEN, "cookie"))


@pytest.mark.parametrize(
    ("path", "exempt"),
    [("/health", True), ("/health/", True), ("/static/app.css", True), ("/healthz", False),
     ("/", False), ("/statics", False)],
)  # fmt: skip
def test_exempt_paths_cover_what_is_below_them(path: str, exempt: bool) -> None:
    assert policy(exclude_paths=["/health", "/static/"]).exempt(path) is exempt


PROXIES = ("10.0.0.0/8", "::1")


@pytest.mark.parametrize(
    ("trusted", "peer", "forwarded", "client"),
    [
        ((), "203.0.113.9", None, "203.0.113.9"),
        ((), "10.0.0.5", "198.51.100.1", "10.0.0.5"),  # no trusted proxy: header ignored
        (PROXIES, "10.0.0.5", None, "10.0.0.5"),
        (PROXIES, "10.0.0.5", "198.51.100.1", "198.51.100.1"),
        (PROXIES, "10.0.0.5", "198.51.100.1, 10.0.0.6, 10.0.0.7", "198.51.100.1"),
        # The client may write anything on the left: the rightmost untrusted hop wins.
        (PROXIES, "10.0.0.5", "1.1.1.1, 198.51.100.1", "198.51.100.1"),
        (PROXIES, "203.0.113.9", "198.51.100.1", "203.0.113.9"),  # peer is no proxy of ours
        (PROXIES, "10.0.0.5", "not-an-ip, 10.0.0.6", "10.0.0.6"),
        (PROXIES, "10.0.0.5", "10.0.0.6", "10.0.0.6"),  # only proxies: the farthest one
        (PROXIES, "::1", "::ffff:198.51.100.1", "198.51.100.1"),
        ((), "::ffff:203.0.113.9", None, "203.0.113.9"),
        ((), None, None, "0.0.0.0"),
        ((), "testclient", None, "0.0.0.0"),
    ],
)
def test_client_ip(
    trusted: tuple[str, ...], peer: str | None, forwarded: str | None, client: str
) -> None:
    assert policy(trusted_proxies=trusted).client_ip(peer, forwarded) == client


def test_session_cookie_attributes() -> None:
    assert policy().session_cookie(TOKEN, 86400) == (
        f"session={TOKEN}; Max-Age=86400; Path=/; HttpOnly; Secure; SameSite=Lax"
    )
    assert policy(secure_cookie=False, same_site="strict").clearing_cookie() == (
        "session=; Max-Age=0; Expires=Thu, 01 Jan 1970 00:00:00 GMT; Path=/; HttpOnly; "
        "SameSite=Strict"
    )


def test_cookie_max_age_is_the_session_lifetime() -> None:
    assert cookie_max_age(timedelta(hours=12)) == 43200


def test_sets_cookie() -> None:
    assert sets_cookie(["a=1; Path=/", "session=x; Path=/"], "session")
    assert not sets_cookie(["xsession=1", "a=session=2"], "session")


def test_refusals() -> None:
    optional, required = policy(), policy(required=True)
    cookie, header = Credential(TOKEN, "cookie"), Credential(TOKEN, "header")
    assert optional.refusal(None, None) is None
    assert optional.refusal(cookie, None) is None
    missing = required.refusal(None, None)
    assert missing is not None and missing.status == 401
    assert ("www-authenticate", "Bearer") in missing.headers
    invalid = required.refusal(cookie, None)
    assert invalid is not None
    assert ("www-authenticate", 'Bearer error="invalid_token"') in invalid.headers
    assert ("set-cookie", required.clearing_cookie()) in invalid.headers
    refused_header = required.refusal(header, None)
    assert refused_header is not None
    assert all(name != "set-cookie" for name, _ in refused_header.headers)
    assert TOKEN.encode() not in invalid.body


def test_unavailable_is_a_503_that_keeps_the_cookie() -> None:
    reply = policy(retry_after=5).unavailable()
    headers = dict(reply.headers)
    assert reply.status == 503
    assert headers["retry-after"] == "5"
    assert headers["content-type"] == "application/problem+json"
    assert int(headers["content-length"]) == len(reply.body)
    assert "set-cookie" not in headers
    assert json.loads(reply.body)["status"] == 503


def test_clears_only_a_rejected_cookie() -> None:
    anyone = policy()
    assert anyone.clears_cookie(Credential(TOKEN, "cookie"), None)
    assert not anyone.clears_cookie(Credential(TOKEN, "header"), None)
    assert not anyone.clears_cookie(None, None)


@pytest.mark.parametrize(
    "options",
    [
        {"cookie_name": "bad name"},
        {"cookie_name": "__Host-sid", "secure_cookie": False},
        {"token_sources": []},
        {"token_sources": ["cookie", "cookie"]},
        {"token_sources": ["query"]},
        {"token_sources": "cookie"},
        {"same_site": "none"},
        {"exclude_paths": ["health"]},
        {"trusted_proxies": "10.0.0.0/8"},
        {"trusted_proxies": ["not-a-network"]},
        {"retry_after": 0},
    ],
)
def test_bad_options_are_refused(options: dict[str, Any]) -> None:
    with pytest.raises(InvalidArgument):
        policy(**options)


def test_the_tenant_is_validated() -> None:
    with pytest.raises(InvalidTenant):
        Policy("Acme Corp")
