"""sessionstore.http.credentials: where a token is read, and the one rule for a credential
given twice. Pure parsing: no store, no server, run once."""

from __future__ import annotations

import pytest

from sessionstore import InvalidArgument
from sessionstore.http.credentials import (
    AmbiguousCredential,
    bearer_token,
    cookie_token,
    joined,
    scope_header,
)


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


def test_an_ambiguous_credential_is_a_400_invalid_request_and_an_invalid_argument() -> None:
    assert AmbiguousCredential.status == 400
    assert AmbiguousCredential.challenge == 'Bearer error="invalid_request"'
    assert issubclass(AmbiguousCredential, InvalidArgument)


def test_repeated_fields_are_joined_as_servers_join_them() -> None:
    assert joined([], ", ") is None
    assert joined(["Bearer a", "Bearer b"], ", ") == "Bearer a, Bearer b"


def test_an_asgi_scope_gives_every_field_of_a_name_joined() -> None:
    scope = {
        "headers": [
            (b"cookie", b"sid=a"),
            (b"authorization", b"Bearer x"),
            (b"cookie", b"sid=b"),
        ]
    }
    assert scope_header(scope, b"cookie", "; ") == "sid=a; sid=b"
    assert scope_header(scope, b"authorization", ", ") == "Bearer x"
    assert scope_header(scope, b"origin", ", ") is None
    # Two cookie fields of one name are the same cookie twice, as in one field.
    with pytest.raises(AmbiguousCredential):
        cookie_token(scope_header(scope, b"cookie", "; "), "sid")
