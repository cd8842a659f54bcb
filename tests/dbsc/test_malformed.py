"""Malformed DBSC requests get a 4xx problem+json, never a 500, and change nothing.

Input checks run before Redis does anything with them, so these run on the embedded server
only, through both faces.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from typing import Any

import pytest

from tests.dbsc.client import Key, b64url, proof, sf_string
from tests.dbsc.conftest import KEYS, OTHER_KEY, Browser, Web

pytestmark = pytest.mark.parametrize("backend", ["fake"])

REGISTER = "/.sessionstore/dbsc/register"
REFRESH = "/.sessionstore/dbsc/refresh"


def unsigned(header: dict[str, Any], claims: dict[str, Any]) -> str:
    return b64url(json.dumps(header).encode()) + "." + b64url(json.dumps(claims).encode()) + "."


def hs256_with_the_public_key(key: Key, challenge: str) -> str:
    """The classic confusion: HMAC keyed with the public key's text."""
    import hashlib
    import hmac

    head = {"alg": "HS256", "typ": "dbsc+jwt", "jwk": key.jwk()}
    signing = (
        b64url(json.dumps(head).encode()) + "." + b64url(json.dumps({"jti": challenge}).encode())
    )
    secret = json.dumps(key.jwk()).encode()
    mac = hmac.new(secret, signing.encode(), hashlib.sha256).digest()
    return signing + "." + b64url(mac)


def bad_signature(key: Key, challenge: str) -> str:
    signed = proof(key, challenge, registration=True)
    head, claims, signature = signed.split(".")
    flipped = bytearray(base64.urlsafe_b64decode(signature + "=" * (-len(signature) % 4)))
    flipped[0] ^= 1
    return f"{head}.{claims}.{b64url(bytes(flipped))}"


# Registration proofs: each a function of (the browser's key, the challenge) -> header value.
REGISTRATIONS: dict[str, Callable[[Key, str], str]] = {
    "wrong typ": lambda key, c: sf_string(
        key.sign({"alg": "ES256", "typ": "JWT", "jwk": key.jwk()}, {"jti": c})
    ),
    "alg none": lambda key, c: sf_string(
        unsigned({"alg": "none", "typ": "dbsc+jwt", "jwk": key.jwk()}, {"jti": c})
    ),
    "HS256 keyed with the public key": lambda key, c: sf_string(hs256_with_the_public_key(key, c)),
    "bad signature": lambda key, c: sf_string(bad_signature(key, c)),
    "signed by another key than its jwk": lambda key, c: sf_string(
        OTHER_KEY.sign({"alg": "ES256", "typ": "dbsc+jwt", "jwk": key.jwk()}, {"jti": c})
    ),
    "missing jwk": lambda key, c: sf_string(
        key.sign({"alg": "ES256", "typ": "dbsc+jwt"}, {"jti": c})
    ),
    "jwk of another algorithm": lambda key, c: sf_string(
        key.sign({"alg": "ES256", "typ": "dbsc+jwt", "jwk": KEYS["RS256"].jwk()}, {"jti": c})
    ),
    "jwk not an object": lambda key, c: sf_string(
        key.sign({"alg": "ES256", "typ": "dbsc+jwt", "jwk": "key"}, {"jti": c})
    ),
    "missing jti": lambda key, c: sf_string(
        key.sign({"alg": "ES256", "typ": "dbsc+jwt", "jwk": key.jwk()}, {"nonce": c})
    ),
    "jti not a string": lambda key, c: sf_string(
        key.sign({"alg": "ES256", "typ": "dbsc+jwt", "jwk": key.jwk()}, {"jti": 7})
    ),
    "oversized": lambda key, c: sf_string(
        key.sign(
            {"alg": "ES256", "typ": "dbsc+jwt", "jwk": key.jwk()}, {"jti": c, "pad": "x" * 9000}
        )
    ),
    "not a JWS": lambda key, c: sf_string("not.a.jws"),
    "unterminated string": lambda key, c: '"' + proof(key, c, registration=True),
    "empty": lambda key, c: '""',
    "control characters": lambda key, c: '"\x01\x7f"',
}


@pytest.mark.parametrize("case", list(REGISTRATIONS))
async def test_malformed_registrations(make_web: Any, case: str) -> None:
    web: Web = make_web()
    browser: Browser = web.browser()
    answer = await browser.login(register=False)
    offer = answer.header("secure-session-registration") or ""
    challenge = offer.split('challenge="')[1].split('"')[0]
    header = REGISTRATIONS[case](browser.device.key, challenge)
    refused = await browser.send("POST", REGISTER, {"secure-session-response": header})
    assert 400 <= refused.status < 500 and refused.status != 403, refused.content
    assert refused.header("content-type") == "application/problem+json"
    assert refused.json()["status"] == refused.status
    me = await browser.me()
    assert me.json()["deviceBound"] is False  # nothing was bound
    assert (await browser.register(offer)).status == 200  # the challenge is still unused


REFRESHES: dict[str, Callable[[Key, str], str]] = {
    "wrong typ": lambda key, c: sf_string(key.sign({"alg": "ES256", "typ": "jwt"}, {"jti": c})),
    "alg none": lambda key, c: sf_string(unsigned({"alg": "none", "typ": "dbsc+jwt"}, {"jti": c})),
    "a jwk on a refresh": lambda key, c: sf_string(proof(key, c, registration=True)),
    "oversized": lambda key, c: sf_string("a" * 20_000),
    "not a JWS": lambda key, c: sf_string("a.b"),
    "unterminated string": lambda key, c: '"abc',
}


@pytest.mark.parametrize("case", list(REFRESHES))
async def test_malformed_refreshes(make_web: Any, case: str) -> None:
    web: Web = make_web()
    browser: Browser = web.browser()
    await browser.login()
    headers = {
        "sec-secure-session-id": sf_string(browser.device.session_id or ""),
        "secure-session-response": REFRESHES[case](browser.device.key, "challenge"),
    }
    refused = await browser.send("POST", REFRESH, headers)
    assert 400 <= refused.status < 500 and refused.status != 403, refused.content
    assert refused.header("content-type") == "application/problem+json"
    assert "sessionstore-bound" in browser.cookies  # nothing cleared: the session is fine
    assert (await browser.refresh()).status == 200
    assert await web.events() == [("session.created", None), ("session.bound", None)]


@pytest.mark.parametrize(
    ("method", "path", "headers"),
    [
        ("GET", REGISTER, {}),
        ("PUT", REFRESH, {}),
        ("POST", REFRESH, {"sec-secure-session-id": '"unterminated'}),
        ("POST", REFRESH, {"sec-secure-session-id": sf_string("sess_nosuchsession")}),
        ("POST", REGISTER, {}),
    ],
)
async def test_bad_requests_to_the_endpoints(
    make_web: Any, method: str, path: str, headers: dict[str, str]
) -> None:
    web: Web = make_web()
    browser = web.browser()
    await browser.login()
    refused = await browser.send(method, path, headers)
    assert 400 <= refused.status < 500 and refused.status != 403
    assert refused.header("content-type") == "application/problem+json"


async def test_without_a_session_token(make_web: Any) -> None:
    web: Web = make_web()
    stranger = web.browser()
    for path in (REGISTER, REFRESH):
        headers = {
            "sec-secure-session-id": sf_string("sess_00000000000000000000000000"),
            "secure-session-response": sf_string(
                proof(stranger.device.key, "c", registration=True)
            ),
        }
        answer = await stranger.send("POST", path, headers)
        assert answer.status == 401 and answer.json()["continue"] is False
