"""policy.py's decisions, which need no store: tokens, addresses, cookies, refusals, settings,
and the helpers' flows (the store calls they ask for, checked without making them)."""

from __future__ import annotations

import json
from datetime import timedelta
from types import SimpleNamespace
from typing import Any

import pytest

from sessionstore import InvalidArgument, InvalidTenant
from sessionstore.http.credentials import AmbiguousCredential
from sessionstore.http.origin import Origin
from sessionstore.middleware.policy import (
    Client,
    Credential,
    CrossSiteRequest,
    Exchange,
    Policy,
    SessionRequired,
    StoreCall,
    cookie_max_age,
    login_flow,
    synchronizer_token,
    synchronizer_token_matches,
)

TOKEN = "sst_" + "a" * 64


def policy(**options: Any) -> Policy:
    return Policy("acme-corp", **options)


def test_credentials_follow_the_order_and_name_the_source() -> None:
    both = ("sessionstore=from-cookie", "Bearer from-header")
    insecure = {"secure_cookie": False}
    assert policy(**insecure).credentials(*both) == (
        Credential("from-header", "header"),
        Credential("from-cookie", "cookie"),
    )
    assert policy(token_sources=["cookie", "header"], **insecure).credentials(*both) == (
        Credential("from-cookie", "cookie"),
        Credential("from-header", "header"),
    )
    assert policy(token_sources=["cookie"], **insecure).credentials(None, "Bearer x") == ()
    # A source the policy does not read is never judged, even when it is ambiguous.
    cookie_only = policy(token_sources=["cookie"], **insecure)
    assert cookie_only.credentials(both[0], "Bearer a, Bearer b") == (
        Credential("from-cookie", "cookie"),
    )


def test_default_cookie_names_collide_with_no_framework() -> None:
    assert policy().cookie_name == "__Host-sessionstore"
    assert policy(secure_cookie=False).cookie_name == "sessionstore"
    assert policy(cookie_name="sid").cookie_name == "sid"


def test_a_credential_never_shows_its_token() -> None:
    assert TOKEN not in repr(Credential(TOKEN, "cookie"))
    exchange = Exchange(credentials=(Credential(TOKEN, "cookie"),))
    exchange.change(None, TOKEN, f"sid={TOKEN}")
    assert TOKEN not in repr(exchange)


@pytest.mark.parametrize(
    ("path", "exempt"),
    [("/health", True), ("/health/", True), ("/static/app.css", True), ("/healthz", False),
     ("/", False), ("/statics", False), ("/static/../admin", False), ("/health/./x", False)],
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
        f"__Host-sessionstore={TOKEN}; Max-Age=86400; Path=/; HttpOnly; Secure; SameSite=Lax"
    )
    assert policy(secure_cookie=False, same_site="strict").clearing_cookie() == (
        "sessionstore=; Max-Age=0; Expires=Thu, 01 Jan 1970 00:00:00 GMT; Path=/; HttpOnly; "
        "SameSite=Strict"
    )


def test_cookie_max_age_is_the_session_lifetime() -> None:
    assert cookie_max_age(timedelta(hours=12)) == 43200


def test_refusals() -> None:
    optional, required = policy(), policy(required=True, exclude_paths=["/login"])
    by_cookie = Exchange(credentials=(Credential(TOKEN, "cookie"),), cookie_rejected=True)
    by_header = Exchange(credentials=(Credential(TOKEN, "header"),))
    assert optional.refusal(Exchange(), "/") is None
    assert optional.refusal(by_cookie, "/") is None
    assert required.refusal(by_cookie, "/login") is None
    missing = required.refusal(Exchange(), "/")
    assert missing is not None and missing.status == 401
    assert ("www-authenticate", "Bearer") in missing.headers
    invalid = required.refusal(by_cookie, "/")
    assert invalid is not None
    assert ("www-authenticate", 'Bearer error="invalid_token"') in invalid.headers
    assert ("set-cookie", required.clearing_cookie()) in invalid.headers
    refused_header = required.refusal(by_header, "/")
    assert refused_header is not None
    assert all(name != "set-cookie" for name, _ in refused_header.headers)
    assert TOKEN.encode() not in invalid.body


def test_an_ambiguous_credential_is_a_400_invalid_request() -> None:
    reply = policy().ambiguous(AmbiguousCredential("the cookie is there twice"))
    assert reply.status == 400
    assert ("www-authenticate", 'Bearer error="invalid_request"') in reply.headers
    assert json.loads(reply.body)["detail"] == "the cookie is there twice"


def test_unavailable_is_a_503_that_keeps_the_cookie() -> None:
    reply = policy(retry_after=5).unavailable()
    headers = dict(reply.headers)
    assert reply.status == 503
    assert headers["retry-after"] == "5"
    assert headers["content-type"] == "application/problem+json"
    assert int(headers["content-length"]) == len(reply.body)
    assert "set-cookie" not in headers
    assert json.loads(reply.body)["status"] == 503


# -- what a response gets -------------------------------------------------------------------

PRESENTED = Exchange(credentials=(Credential(TOKEN, "cookie"),))


@pytest.mark.parametrize(
    ("exchange", "app_headers", "added"),
    [
        # Nothing presented, nothing changed: the response is the app's alone.
        (Exchange(), [], []),
        (PRESENTED, [], [("vary", "Authorization, Cookie"), ("cache-control", "private")]),
        # The app's own choices stand; Vary gets what it lacks, unless it varies on anything.
        (PRESENTED, [("Cache-Control", "no-store"), ("Vary", "Accept, cookie")],
         [("vary", "Authorization")]),
        (PRESENTED, [("Vary", "*")], [("cache-control", "private")]),
        # A rejected cookie is cleared, unless the app set the cookie itself.
        (Exchange(credentials=PRESENTED.credentials, cookie_rejected=True), [],
         [("set-cookie", "CLEAR"), ("vary", "Authorization, Cookie"),
          ("cache-control", "private")]),
        (Exchange(credentials=PRESENTED.credentials, cookie_rejected=True),
         [("Set-Cookie", "__Host-sessionstore=new")],
         [("vary", "Authorization, Cookie"), ("cache-control", "private")]),
    ],
)  # fmt: skip
def test_finish(
    exchange: Exchange, app_headers: list[tuple[str, str]], added: list[tuple[str, str]]
) -> None:
    anyone = policy()
    expected = [(k, anyone.clearing_cookie() if v == "CLEAR" else v) for k, v in added]
    assert anyone.finish(exchange, app_headers) == app_headers + expected


def test_a_signed_in_or_out_response_carries_its_cookie_and_stays_private() -> None:
    anyone = policy(token_sources=["cookie"])
    exchange = Exchange()
    exchange.change(None, None, anyone.clearing_cookie())
    assert anyone.finish(exchange, []) == [
        ("set-cookie", anyone.clearing_cookie()),
        ("vary", "Cookie"),
        ("cache-control", "private"),
    ]
    exchange.started = True
    with pytest.raises(RuntimeError):
        exchange.change(None, None, None)


# -- where a request comes from: the rule is sessionstore.http.origin's -----------------------


def test_a_change_is_checked_against_the_own_and_the_trusted_origins() -> None:
    checked = policy(trusted_origins=["https://idp.example.net"])
    own = Origin("https", "app.example.com", None, "https://app.example.com", None)
    trusted = Origin("https", "app.example.com", "cross-site", "https://idp.example.net", None)
    opaque = Origin("https", "app.example.com", None, "null", None)
    checked.check_change(Exchange(), own)
    checked.check_change(Exchange(), trusted)
    checked.check_change(Exchange(), None)  # the caller opted out (check_origin=False)
    with pytest.raises(CrossSiteRequest):
        checked.check_change(Exchange(), opaque)
    with pytest.raises(CrossSiteRequest):
        policy().check_change(Exchange(), trusted)
    assert checked.trusted_origins == ("https://idp.example.net",)


def test_a_refusal_for_another_origin_is_a_403_problem() -> None:
    error = policy().forbidden("the request comes from another origin")
    assert isinstance(error, CrossSiteRequest)
    assert error.reply.status == 403
    assert json.loads(error.reply.body)["status"] == 403


def test_synchronizer_tokens_are_bound_to_the_session_token() -> None:
    mine = synchronizer_token(TOKEN)
    assert mine.startswith("csrf_") and TOKEN not in mine
    assert synchronizer_token(TOKEN) == mine
    assert synchronizer_token_matches(TOKEN, mine)
    assert not synchronizer_token_matches("sst_" + "b" * 64, mine)
    assert not synchronizer_token_matches(TOKEN, mine[:-1])
    assert not synchronizer_token_matches(TOKEN, None)
    assert not synchronizer_token_matches(None, mine)
    assert not synchronizer_token_matches(TOKEN, "csrf_é")


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
        {"trusted_origins": "https://app.example.com"},
        {"trusted_origins": ["app.example.com"]},
        {"trusted_origins": ["https://app.example.com/login"]},
        {"trusted_origins": ["ftp://app.example.com"]},
        {"exclude_paths": "/health"},
        {"retry_after": 0},
    ],
)
def test_bad_options_are_refused(options: dict[str, Any]) -> None:
    with pytest.raises(InvalidArgument):
        policy(**options)


def test_the_tenant_is_validated() -> None:
    with pytest.raises(InvalidTenant):
        Policy("Acme Corp")


# -- the helpers' flows: the store calls they ask for, and what they decide -----------------------

LAPTOP = Client(peer="10.0.0.5", forwarded_for="198.51.100.1", user_agent="Safari")


def signed_in_as(user_id: int, session_id: str, source: str = "cookie") -> Exchange:
    exchange = Exchange(credentials=(Credential(TOKEN, source),))  # type: ignore[arg-type]
    exchange.accept(exchange.credentials[0], SimpleNamespace(id=session_id, user_id=user_id))  # type: ignore[arg-type]
    return exchange


def sign_in(exchange: Exchange, origin: Origin | None = None, **options: Any) -> Any:
    checked = policy(trusted_proxies=["10.0.0.0/8"])
    settings = {"auth_method": "sso", "mfa_verified": True, "set_cookie": True, **options}
    return checked, login_flow(
        checked,
        exchange,
        7,
        client=LAPTOP,
        origin=origin,
        lifetime=timedelta(hours=1),
        **settings,
    )


def test_a_login_revokes_the_old_session_then_starts_one_and_sets_its_cookie() -> None:
    exchange = signed_in_as(7, "sess_old")
    checked, flow = sign_in(exchange)
    assert next(flow) == StoreCall("revoke", ("acme-corp", 7, "sess_old"), {"actor": "user"})
    create = flow.send(True)
    assert create == StoreCall(
        "create",
        ("acme-corp", 7),
        {
            "ip_address": "198.51.100.1",
            "user_agent": "Safari",
            "auth_method": "sso",
            "mfa_verified": True,
        },
    )
    new = SimpleNamespace(id="sess_new", user_id=7)
    with pytest.raises(StopIteration) as done:
        flow.send((new, "sst_new"))
    assert done.value.value == (new, "sst_new")
    assert exchange.session is new and exchange.token == "sst_new"
    assert exchange.set_cookie == checked.session_cookie("sst_new", 3600)


def test_a_bearer_login_over_a_cookie_session_clears_that_cookie() -> None:
    exchange = signed_in_as(7, "sess_old")
    checked, flow = sign_in(exchange, set_cookie=False)
    next(flow)
    flow.send(True)
    with pytest.raises(StopIteration):
        flow.send((SimpleNamespace(id="sess_new", user_id=7), "sst_new"))
    assert exchange.set_cookie == checked.clearing_cookie()
    anonymous = Exchange()
    _, flow = sign_in(anonymous, set_cookie=False)
    assert next(flow).method == "create"  # nothing to revoke
    with pytest.raises(StopIteration):
        flow.send((SimpleNamespace(id="sess_new", user_id=7), "sst_new"))
    assert anonymous.set_cookie is None and anonymous.changed


def test_a_login_from_another_site_asks_the_store_for_nothing() -> None:
    exchange = signed_in_as(7, "sess_old")
    _, flow = sign_in(exchange, Origin("https", "app.example.com", "cross-site", None, None))
    with pytest.raises(CrossSiteRequest):
        next(flow)
    assert not exchange.changed


def test_a_required_session_is_the_401_of_unauthenticated() -> None:
    checked = policy()
    with pytest.raises(SessionRequired) as refused:
        checked.require_session(Exchange())
    assert refused.value.reply == checked.unauthenticated(Exchange())
    assert checked.require_session(signed_in_as(7, "sess_x")).id == "sess_x"


def test_the_csrf_token_of_an_exchange_is_its_sessions_synchronizer_token() -> None:
    assert Exchange().csrf_token() is None
    assert signed_in_as(7, "sess_x").csrf_token() == synchronizer_token(TOKEN)
    with pytest.raises(CrossSiteRequest):
        policy().check_csrf_token(Exchange(), synchronizer_token(TOKEN))
    policy().check_csrf_token(signed_in_as(7, "sess_x"), synchronizer_token(TOKEN))
