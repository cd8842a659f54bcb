"""web.py's decisions, which need no store: tokens, addresses, cookies, refusals, settings."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import pytest

from sessionstore import InvalidArgument, InvalidTenant
from sessionstore._core.inputs import AmbiguousCredential, bearer_token, cookie_token, joined
from sessionstore.web import (
    Credential,
    CrossSiteRequest,
    Exchange,
    Origin,
    Policy,
    cookie_max_age,
    synchronizer_token,
    synchronizer_token_matches,
)

TOKEN = "sst_" + "a" * 64


def policy(**options: Any) -> Policy:
    return Policy("acme-corp", **options)


@pytest.mark.parametrize(
    ("header", "value"),
    [
        (None, None),
        ("", None),
        ("sid=abc", "abc"),
        ("theme=dark; sid=abc; lang=en", "abc"),
        ('sid="abc"', "abc"),
        ("sid=; other=x", None),
        ("xsid=abc; sidx=def", None),
        ("garbage; sid=abc", "abc"),
        ("sid=; sid=abc", "abc"),  # an emptied cookie is no credential
    ],
)
def test_cookie_token(header: str | None, value: str | None) -> None:
    assert cookie_token(header, "sid") == value


@pytest.mark.parametrize(
    "header",
    [
        "sid=first; sid=second",
        "sid=same; sid=same",
        "sid=first,sid=second",  # how some WSGI servers join two Cookie fields
        "a=1; sid=first; b=2; sid=second",
    ],
)
def test_a_cookie_given_twice_is_ambiguous(header: str) -> None:
    with pytest.raises(AmbiguousCredential):
        cookie_token(header, "sid")


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
        ('Digest username="a", realm="b"', None),  # commas of one credential's own
        ("Basic abc, Basic def", None),  # not ours to judge
    ],
)
def test_bearer_token(header: str | None, token: str | None) -> None:
    assert bearer_token(header) == token


@pytest.mark.parametrize(
    "header",
    ["Bearer abc, Bearer def", "Bearer abc,Bearer def", "Basic abc, Bearer def", "Bearer a,b"],
)
def test_two_authorization_credentials_are_ambiguous(header: str) -> None:
    with pytest.raises(AmbiguousCredential):
        bearer_token(header)


def test_repeated_fields_are_joined_as_servers_join_them() -> None:
    assert joined([], ", ") is None
    assert joined(["Bearer a", "Bearer b"], ", ") == "Bearer a, Bearer b"


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


# -- where a request comes from (OWASP: Fetch Metadata, then Origin, then Referer) -------------

OWN = "https://app.example.com"
SIBLING = "https://evil.example.com"


def came_from(
    site: str | None = None, origin: str | None = None, referer: str | None = None
) -> Origin:
    return Origin("https", "app.example.com", site, origin, referer)


@pytest.mark.parametrize(
    ("request_", "passes"),
    [
        (came_from(), True),  # no browser sent it: curl, a mobile app, a bearer client
        (came_from("same-origin"), True),
        (came_from("none"), True),  # the user's own navigation
        (came_from("same-origin", SIBLING), True),  # the browser's word first
        (came_from("same-site", SIBLING), False),  # a sibling subdomain is not us
        (came_from("cross-site", "https://evil.test"), False),
        (came_from("cross-site"), False),  # a browser says cross-site and shows no origin
        (came_from("same-site", OWN), True),  # contradictory, and not another page's doing
        (came_from(origin=OWN), True),  # browsers without Fetch Metadata
        (came_from(origin="https://APP.example.com:443"), True),
        (came_from(origin="http://app.example.com"), False),  # plain http is another origin
        (came_from(origin="https://app.example.com:8443"), False),
        (came_from(origin=SIBLING), False),
        (came_from(origin="null"), False),  # sandboxed frames, data: URLs
        (came_from(referer=f"{OWN}/login?next=/"), True),
        (came_from(referer=f"{SIBLING}/page"), False),
        (came_from(referer="not a url"), False),
        (came_from(origin=SIBLING, referer=f"{OWN}/"), False),  # Origin before Referer
        (came_from("cross-site", "https://idp.example.net"), True),  # trusted below
        (came_from("cross-site", referer="https://idp.example.net/cb"), True),
    ],
)
def test_cross_site(request_: Origin, passes: bool) -> None:
    checked = policy(trusted_origins=["https://idp.example.net"])
    assert (checked.cross_site(request_) is None) is passes


def test_a_request_without_host_matches_only_trusted_origins() -> None:
    assert policy().cross_site(Origin("https", None, None, "null", None)) is not None
    assert policy().cross_site(Origin("https", None, None, OWN, None)) is not None


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


def test_a_flask_error_handler_written_from_the_readme_answers_as_the_middleware() -> None:
    """README: ``error_reply(environ, error)`` gives the reply (status, headers, body)."""
    from flask import Flask, request

    from sessionstore import SessionStore
    from sessionstore.web import CrossSiteRequest
    from sessionstore.wsgi import SessionMiddleware, error_reply, login

    app = Flask(__name__)

    @app.post("/login")
    def sign_in() -> str:
        login(request.environ, 7)  # refused: the request comes from another site's page
        return "signed in"

    @app.errorhandler(CrossSiteRequest)
    def answer(error: CrossSiteRequest) -> tuple[bytes, int, list[tuple[str, str]]]:
        reply = error_reply(request.environ, error)
        assert reply is not None
        status, headers, body = reply
        return body, status, list(headers)

    store = SessionStore()
    app.wsgi_app = SessionMiddleware(app.wsgi_app, store, "acme-corp")  # type: ignore[method-assign]
    answered = app.test_client().post("/login", headers={"sec-fetch-site": "cross-site"})
    assert answered.status_code == 403
    assert answered.headers["content-type"] == "application/problem+json"
    store.close()
