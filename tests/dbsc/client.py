"""A DBSC client written from the spec (W3C webappsec-dbsc, "DBSC Proof JWT Syntax" and the
header formats), for the tests: it makes its own keys with ``cryptography`` and signs its own
JWS by hand, so nothing here shares code with the server's verification.

``Device`` holds one key pair (ES256 or RS256), answers ``Secure-Session-Registration`` and
``Secure-Session-Challenge`` headers, and keeps what a browser keeps: the session identifier,
the refresh URL, the bound cookie's name and the cached challenge.
"""

from __future__ import annotations

import base64
import json
import re
from dataclasses import dataclass, field
from typing import Any

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def _int_bytes(number: int, length: int | None = None) -> bytes:
    return number.to_bytes(length or (number.bit_length() + 7) // 8, "big")


def sf_string(value: str) -> str:
    """An RFC 9651 sf-string."""
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def sf_params(header: str) -> dict[str, str]:
    """The string parameters of the first item of a structured header, by a simple reading
    (our server's values never hold quotes)."""
    return dict(re.findall(r';\s*([a-z_]+)="([^"]*)"', header))


def sf_item_string(header: str) -> str:
    match = re.match(r'\s*"([^"]*)"', header)
    assert match, header
    return match[1]


@dataclass
class Key:
    """A key pair and its algorithm; ``sign`` makes a compact JWS by hand."""

    algorithm: str
    private: Any = field(repr=False)

    @classmethod
    def new(cls, algorithm: str = "ES256") -> Key:
        if algorithm == "ES256":
            return cls(algorithm, ec.generate_private_key(ec.SECP256R1()))
        return cls(algorithm, rsa.generate_private_key(public_exponent=65537, key_size=2048))

    def jwk(self) -> dict[str, str]:
        numbers = self.private.public_key().public_numbers()
        if self.algorithm == "ES256":
            return {
                "kty": "EC",
                "crv": "P-256",
                "x": b64url(_int_bytes(numbers.x, 32)),
                "y": b64url(_int_bytes(numbers.y, 32)),
            }
        return {
            "kty": "RSA",
            "n": b64url(_int_bytes(numbers.n)),
            "e": b64url(_int_bytes(numbers.e)),
        }

    def signature(self, signing_input: bytes) -> bytes:
        if self.algorithm == "ES256":
            r, s = decode_dss_signature(self.private.sign(signing_input, ec.ECDSA(hashes.SHA256())))
            return _int_bytes(r, 32) + _int_bytes(s, 32)  # JWS: r || s, 32 bytes each
        return self.private.sign(signing_input, padding.PKCS1v15(), hashes.SHA256())

    def sign(self, header: dict[str, Any], claims: dict[str, Any]) -> str:
        encoded = b64url(json.dumps(header).encode()) + "." + b64url(json.dumps(claims).encode())
        return encoded + "." + b64url(self.signature(encoded.encode()))


def proof(
    key: Key,
    challenge: str,
    *,
    registration: bool,
    authorization: str | None = None,
    header: dict[str, Any] | None = None,
) -> str:
    """A DBSC proof: typ dbsc+jwt, the key's alg, its jwk at registration only; jti is the
    challenge, plus authorization when the registration header had one."""
    head: dict[str, Any] = {"alg": key.algorithm, "typ": "dbsc+jwt"}
    if registration:
        head["jwk"] = key.jwk()
    head.update(header or {})
    claims: dict[str, Any] = {"jti": challenge}
    if authorization is not None:
        claims["authorization"] = authorization
    return key.sign(head, claims)


@dataclass
class Device:
    """What a browser keeps of one DBSC session."""

    key: Key
    session_id: str | None = None
    refresh_url: str | None = None
    cookie_name: str | None = None
    cached_challenge: str | None = field(default=None, repr=False)
    instructions: dict[str, Any] | None = None

    def registration(self, header: str) -> tuple[str, dict[str, str]]:
        """The path to post to and the headers of a registration, from the login's
        ``Secure-Session-Registration`` header."""
        algorithms = re.match(r"\s*\(([^)]*)\)", header)
        assert algorithms and self.key.algorithm in algorithms[1].split(), header
        params = sf_params(header)
        signed = proof(
            self.key,
            params["challenge"],
            registration=True,
            authorization=params.get("authorization"),
        )
        headers = {"secure-session-response": sf_string(signed)}
        if "authorization" in params:
            headers["authorization"] = params["authorization"]
        return params["path"], headers

    def registered(self, body: dict[str, Any]) -> None:
        self.instructions = body
        self.session_id = body["session_identifier"]
        self.refresh_url = body.get("refresh_url")
        (credential,) = body["credentials"]
        assert credential["type"] == "cookie"
        self.cookie_name = credential["name"]

    def challenged(self, header: str | None) -> None:
        """Cache a ``Secure-Session-Challenge`` for this session."""
        if header and sf_params(header).get("id") == self.session_id:
            self.cached_challenge = sf_item_string(header)

    def refresh_headers(self, challenge: str | None = None) -> dict[str, str]:
        assert self.session_id is not None
        headers = {"sec-secure-session-id": sf_string(self.session_id)}
        signed_over = challenge or self.cached_challenge
        if signed_over is not None:
            headers["secure-session-response"] = sf_string(
                proof(self.key, signed_over, registration=False)
            )
        return headers
