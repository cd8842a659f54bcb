"""sessionstore.http.origin: the one cross-site rule and the one synchronizer-token compare,
which the middleware's helpers and the admin console share. Pure: run once."""

from __future__ import annotations

import pytest

from sessionstore import InvalidArgument
from sessionstore.http.origin import Origin, cross_site, tokens_match, trusted_origins

OWN = "https://app.example.com"
SIBLING = "https://evil.example.com"
TRUSTED = trusted_origins(["https://idp.example.net"])


def came_from(
    site: str | None = None, origin: str | None = None, referer: str | None = None
) -> Origin:
    return Origin("https", "app.example.com", site, origin, referer)


# -- where a request comes from (OWASP: Fetch Metadata, then Origin, then Referer) -------------


@pytest.mark.parametrize(
    ("request_", "passes"),
    [
        (came_from(), True),  # no browser sent it: curl, a mobile app, a bearer client
        (came_from("same-origin"), True),
        (came_from("none"), True),  # the user's own navigation
        (came_from("same-origin", SIBLING), True),  # the browser's word first
        (came_from("same-origin", "null"), True),  # a page under Referrer-Policy: no-referrer
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
        (came_from("cross-site", "null"), False),
        (came_from(referer=f"{OWN}/login?next=/"), True),
        (came_from(referer=f"{SIBLING}/page"), False),
        (came_from(referer="not a url"), False),
        (came_from(origin=SIBLING, referer=f"{OWN}/"), False),  # Origin before Referer
        (came_from(origin="null", referer=f"{OWN}/"), False),  # null hides, Referer can't vouch
        (came_from(origin=f"{OWN},{OWN}"), False),  # two Origin fields, joined: no origin
        (came_from("cross-site", "https://idp.example.net"), True),  # trusted
        (came_from("cross-site", referer="https://idp.example.net/cb"), True),
    ],
)
def test_cross_site(request_: Origin, passes: bool) -> None:
    assert (cross_site(request_, TRUSTED) is None) is passes


@pytest.mark.parametrize(
    ("scheme", "host", "origin", "passes"),
    [
        ("http", "127.0.0.1:8080", "http://127.0.0.1:8080", True),
        ("http", "127.0.0.1:8080", "https://127.0.0.1:8080", False),  # same host and port
        ("http", "127.0.0.1:8080", "http://127.0.0.1:8081", False),
        ("https", "console.example", "http://console.example", False),  # same host
        ("https", "console.example", "https://console.example:443", True),  # default port
        ("https", "console.example:443", "https://console.example", True),
        ("http", "console.example", "http://console.example:80", True),
        ("https", "console.example", "https://console.example:8443", False),
        ("https", "[::1]:8443", "https://[::1]:8443", True),
    ],
)
def test_an_origin_is_its_scheme_host_and_port(
    scheme: str, host: str, origin: str, passes: bool
) -> None:
    request = Origin(scheme, host, None, origin, None)
    assert (cross_site(request) is None) is passes


def test_a_request_without_host_matches_only_trusted_origins() -> None:
    assert cross_site(Origin("https", None, None, "null", None)) is not None
    assert cross_site(Origin("https", None, None, OWN, None)) is not None
    trusted = Origin("https", None, None, "https://idp.example.net", None)
    assert cross_site(trusted, TRUSTED) is None


def test_the_reason_never_echoes_more_than_a_little_of_a_header() -> None:
    reason = cross_site(came_from("x" * 1000))
    assert reason is not None and len(reason) < 80


# -- reading a request --------------------------------------------------------------------------


def test_an_asgi_scope_says_where_it_comes_from() -> None:
    scope = {
        "scheme": "wss",  # a WebSocket handshake: its page is an https one
        "headers": [
            (b"host", b"app.example.com"),
            (b"sec-fetch-site", b"same-site"),
            (b"origin", b"https://evil.example.com"),
            (b"referer", b"https://evil.example.com/page"),
        ],
    }
    assert Origin.from_scope(scope) == Origin(
        "https",
        "app.example.com",
        "same-site",
        "https://evil.example.com",
        "https://evil.example.com/page",
    )
    assert Origin.from_scope({"headers": []}) == Origin("http", None, None, None, None)


def test_two_origin_fields_are_no_origin() -> None:
    scope = {"scheme": "https", "headers": [(b"host", b"app.example.com")]}
    scope["headers"] += [(b"origin", OWN.encode()), (b"origin", OWN.encode())]
    assert cross_site(Origin.from_scope(scope)) is not None


def test_a_wsgi_environ_says_where_it_comes_from() -> None:
    environ = {
        "wsgi.url_scheme": "https",
        "HTTP_HOST": "app.example.com",
        "HTTP_SEC_FETCH_SITE": "cross-site",
        "HTTP_ORIGIN": "https://evil.test",
    }
    assert Origin.from_environ(environ) == Origin(
        "https", "app.example.com", "cross-site", "https://evil.test", None
    )
    # Without a Host header (HTTP/1.0), the server's own name and port.
    bare = {"SERVER_NAME": "app.example.com", "SERVER_PORT": "8443"}
    assert Origin.from_environ(bare).host == "app.example.com:8443"
    assert Origin.from_environ({}) == Origin("http", None, None, None, None)


# -- trusted origins ----------------------------------------------------------------------------


def test_trusted_origins_are_normalised_as_they_are_compared() -> None:
    assert trusted_origins(["HTTPS://IdP.example.net:443/", "http://localhost:8000"]) == (
        "https://idp.example.net",
        "http://localhost:8000",
    )


@pytest.mark.parametrize(
    "origins",
    [
        "https://app.example.com",  # one string, not a sequence
        ["app.example.com"],
        ["https://app.example.com/login"],
        ["https://app.example.com?x=1"],
        ["https://user@app.example.com"],
        ["ftp://app.example.com"],
        ["null"],
    ],
)
def test_what_is_no_origin_cannot_be_trusted(origins: list[str] | str) -> None:
    with pytest.raises(InvalidArgument):
        trusted_origins(origins)


# -- synchronizer tokens ------------------------------------------------------------------------


def test_tokens_match_only_when_equal_and_present() -> None:
    assert tokens_match("csrf_abc", "csrf_abc")
    assert not tokens_match("csrf_ab", "csrf_abc")
    assert not tokens_match("csrf_abd", "csrf_abc")
    assert not tokens_match(None, "csrf_abc")
    assert not tokens_match("", "csrf_abc")
    assert not tokens_match("", "")  # nothing expected: nothing matches, not even nothing
    assert not tokens_match("csrf_abc", None)
    assert not tokens_match("csrf_\udcff", "csrf_abc")  # undecodable input is just wrong
    assert tokens_match("é", "é")
