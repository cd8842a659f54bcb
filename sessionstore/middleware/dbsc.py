"""Device Bound Session Credentials (W3C DBSC) in the middlewares: written once, with no I/O.

With ``device_bound=True`` (or a ``DeviceBinding``) on either middleware:

- a cookie sign-in (``login``) answers ``Secure-Session-Registration: (ES256 RS256);path=...;
  challenge=...``; a browser that supports DBSC makes a key pair and posts a proof of it to the
  registration endpoint, which the middleware serves itself. A verified proof binds the session
  to the key (``sessionstore._core.binding``) and the answer is the JSON session instructions
  and a short-lived *bound cookie*;
- every request of a bound session then needs a live bound cookie as well as the session token,
  checked with an HMAC in the process: no Redis round trip beyond validate's own (none at all
  when the near cache answers). Without one the request is anonymous (401 where a session is
  required) and the browser refreshes: it posts ``Sec-Secure-Session-Id`` to the refresh
  endpoint, gets a 403 with a ``Secure-Session-Challenge``, signs it with the session's key and
  gets a new bound cookie. Sessions of clients without DBSC are never bound and are unaffected;
- a proof signed by another key, or a bound cookie presented after its expiry, records
  ``session.binding_failed`` (and revokes the session with ``revoke_on_failure``).

A registration or refresh for a session that is no longer live is answered 401 (problem+json,
with ``"continue": false``): a 4xx other than 403 ends the session in the browser too. A store
that does not answer is a 503, which a browser does not take as an end. The refresh endpoint
refuses framing and cross-origin reads, and never sends ``Access-Control-Allow-Credentials``.

The flows yield the store calls they need (policy.StoreCall), as policy.py's do; asgi.py and
wsgi.py read the request into a ``DbscRequest`` and run them.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Final

from .._core.binding import MAX_PROOF_BYTES, Attempt, Challenge, CookieCheck, InvalidProof, Outcome
from .._core.kinds import Reason
from ..errors import StoreUnavailable
from ..http.credentials import AmbiguousCredential, cookie_token
from ..http.problems import CONTENT_TYPE, problem_bytes
from .policy import DeviceBinding, Exchange, HelperFlow, Policy, Reply, StoreCall

__all__ = [
    "ALGORITHMS_OFFERED",
    "DbscRequest",
    "binding_check_flow",
    "challenge_header",
    "endpoint_flow",
    "instructions",
    "registration_flow",
    "registration_header",
    "sf_string",
]

ALGORITHMS_OFFERED: Final = "(ES256 RS256)"
# What an unquoted value may hold (a JWT, a session id): some clients send them bare.
_BARE = re.compile(r"[A-Za-z0-9._~+/=-]+")
_GUARDS: Final = (
    ("cache-control", "no-store"),
    ("x-frame-options", "DENY"),
    ("cross-origin-resource-policy", "same-origin"),
)


@dataclass(frozen=True, slots=True)
class DbscRequest:
    """What the DBSC endpoints read of a request. ``mount`` is where the app is mounted (ASGI
    ``root_path``, WSGI ``SCRIPT_NAME``), for the URLs sent back; headers are every field of
    that name, joined."""

    method: str
    path: str
    mount: str
    cookie: str | None = field(repr=False)
    authorization: str | None = field(repr=False)
    session_response: str | None = field(repr=False)  # Secure-Session-Response
    session_id: str | None  # Sec-Secure-Session-Id


# -- headers ----------------------------------------------------------------------------------


def sf_string(header: str | None) -> str | None:
    """The string of an RFC 9651 sf-string item (parameters ignored), or a bare value of token
    characters as some clients send; None when absent or malformed."""
    if header is None:
        return None
    text = header.strip()
    if not text.startswith('"'):
        bare = text.split(";", 1)[0].strip()
        return bare if _BARE.fullmatch(bare) else None
    value, escaped = [], False
    for char in text[1:]:
        if not " " <= char <= "~":
            return None
        if escaped:
            if char not in '"\\':
                return None
            value.append(char)
            escaped = False
        elif char == "\\":
            escaped = True
        elif char == '"':
            return "".join(value)
        else:
            value.append(char)
    return None  # no closing quote


def _quoted(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def registration_header(binding: DeviceBinding, mount: str, challenge: Challenge) -> str:
    """``Secure-Session-Registration``: the algorithms offered, the registration path, the
    challenge and (with ``authorization``) the value the proof must repeat."""
    header = (
        f"{ALGORITHMS_OFFERED};path={_quoted(mount + binding.registration_path)}"
        f";challenge={_quoted(challenge.value)}"
    )
    if challenge.authorization is not None:
        header += f";authorization={_quoted(challenge.authorization)}"
    return header


def challenge_header(challenge: str, session_id: str) -> str:
    """``Secure-Session-Challenge``: a challenge for the session named by ``id``."""
    return f"{_quoted(challenge)};id={_quoted(session_id)}"


def instructions(policy: Policy, binding: DeviceBinding, session_id: str, mount: str) -> bytes:
    """The JSON session instructions: the session, where to refresh it, its scope (this
    origin) and the bound cookie it keeps alive."""
    return json.dumps(
        {
            "session_identifier": session_id,
            "refresh_url": mount + binding.refresh_path,
            "scope": {"include_site": False},
            "credentials": [
                {
                    "type": "cookie",
                    "name": binding.cookie_name,
                    "attributes": policy.cookie_attributes(),
                }
            ],
        },
        separators=(",", ":"),
    ).encode()


# -- sign-in ------------------------------------------------------------------------------------


def registration_flow(
    policy: Policy, exchange: Exchange, token: str, mount: str
) -> HelperFlow[None]:
    """After a cookie sign-in: a registration challenge for the new session, and the
    ``Secure-Session-Registration`` header that offers it to the browser."""
    binding = policy.binding
    if binding is None or exchange.set_cookie is None:
        return  # no binding here, or a bearer sign-in: DBSC binds cookies
    challenge = yield StoreCall("begin_binding", (policy.tenant, token, binding.terms))
    if challenge is not None:
        header = registration_header(binding, mount, challenge)
        exchange.headers.append(("secure-session-registration", header))


# -- every request of a bound session ---------------------------------------------------------


def binding_check_flow(
    policy: Policy, exchange: Exchange, cookie_header: str | None
) -> HelperFlow[None]:
    """After validation: a bound session needs a live bound cookie too, else the request goes
    on as anonymous and a presented bound cookie is cleared (the browser then refreshes). A
    bound cookie presented after its expiry is recorded as session.binding_failed. Raises
    AmbiguousCredential for the bound cookie given twice."""
    session, binding = exchange.session, policy.binding
    if binding is None or session is None or not session.device_bound:
        return
    value = cookie_token(cookie_header, binding.cookie_name)
    check = yield StoreCall("check_bound_cookie", (policy.tenant, session.id, value))
    if check is CookieCheck.VALID:
        return
    if check is CookieCheck.EXPIRED:
        reason = Reason.BOUND_COOKIE_EXPIRED
        yield StoreCall(
            "record_binding_failure", (policy.tenant, exchange.token, reason, binding.terms)
        )
    exchange.unbind(policy.clearing_bound_cookie() if value is not None else None)


# -- the two endpoints ------------------------------------------------------------------------


def endpoint_flow(policy: Policy, request: DbscRequest) -> HelperFlow[Reply | None]:
    """The answer of the registration or refresh endpoint; None for any other path (and
    where the policy binds no sessions)."""
    binding = policy.binding
    if binding is None or request.path not in (binding.registration_path, binding.refresh_path):
        return None
    if request.method != "POST":
        return _problem(405, "The DBSC endpoints take POST only.", (("allow", "POST"),))
    try:
        if request.path == binding.registration_path:
            return (yield from _register(policy, binding, request))
        return (yield from _refresh(policy, binding, request))
    except AmbiguousCredential as error:
        return policy.ambiguous(error)
    except InvalidProof as error:
        return _problem(400, f"Refused: {error}.")
    except StoreUnavailable:
        return policy.unavailable()


def _register(policy: Policy, binding: DeviceBinding, request: DbscRequest) -> HelperFlow[Reply]:
    token = _token(policy, request)
    if token is None:
        return _ended(policy, "A DBSC registration needs the session it binds.")
    proof = _proof(request)
    if proof is None:
        return _problem(400, "A DBSC registration needs a Secure-Session-Response proof.")
    attempt: Attempt = yield StoreCall(
        "register_binding", (policy.tenant, token, proof, binding.terms)
    )
    if attempt.outcome is Outcome.PROVEN and attempt.session_id is not None:
        return (yield from _bound(policy, binding, request, attempt.session_id, attempt))
    if attempt.outcome is Outcome.STALE:
        return _problem(400, "Refused: the registration challenge is unknown, used or expired.")
    if attempt.outcome is Outcome.KEY_MISMATCH:
        return _ended(policy, "Refused: the session is bound to another key.")
    return _ended(policy, "The session is invalid, expired or revoked.")


def _refresh(policy: Policy, binding: DeviceBinding, request: DbscRequest) -> HelperFlow[Reply]:
    session_id = sf_string(request.session_id)
    if session_id is None:
        return _problem(400, "A DBSC refresh needs a Sec-Secure-Session-Id header.")
    token = _token(policy, request)
    if token is None:
        return _ended(policy, "The session is invalid, expired or revoked.")
    proof = None
    if request.session_response is not None:
        proof = _proof(request)
        if proof is None:
            return _problem(400, "The Secure-Session-Response header is not a proof.")
    attempt: Attempt = yield StoreCall(
        "refresh_binding", (policy.tenant, token, session_id, proof, binding.terms)
    )
    if attempt.outcome is Outcome.PROVEN:
        return (yield from _bound(policy, binding, request, session_id, attempt))
    if attempt.outcome in (Outcome.CHALLENGED, Outcome.STALE) and attempt.challenge:
        challenge = (("secure-session-challenge", challenge_header(attempt.challenge, session_id)),)
        return _problem(403, "Sign this challenge with the session's key.", challenge)
    if attempt.outcome is Outcome.KEY_MISMATCH:
        return _ended(policy, "Refused: the proof is not signed by the session's key.")
    return _ended(policy, "The session is invalid, expired, revoked or not bound.")


def _bound(
    policy: Policy, binding: DeviceBinding, request: DbscRequest, session_id: str, attempt: Attempt
) -> HelperFlow[Reply]:
    """200: the instructions, a new bound cookie, and the next challenge ahead of time."""
    value = yield StoreCall("bound_cookie", (policy.tenant, session_id, binding.cookie_seconds))
    body = instructions(policy, binding, session_id, request.mount)
    headers = [
        ("content-type", "application/json"),
        ("content-length", str(len(body))),
        *_GUARDS,
        ("set-cookie", policy.bound_cookie(value)),
    ]
    if attempt.challenge:
        headers.append(
            ("secure-session-challenge", challenge_header(attempt.challenge, session_id))
        )
    return Reply(200, tuple(headers), body)


def _token(policy: Policy, request: DbscRequest) -> str | None:
    found = policy.credentials(request.cookie, request.authorization)
    return found[0].token if found else None


def _proof(request: DbscRequest) -> str | None:
    header = request.session_response
    if header is None or len(header) > MAX_PROOF_BYTES + 64:
        return None if header is None else _oversized()
    return sf_string(header)


def _oversized() -> str:
    raise InvalidProof(f"the DBSC proof is longer than {MAX_PROOF_BYTES} bytes")


def _ended(policy: Policy, detail: str) -> Reply:
    """401 with ``"continue": false``: the browser ends its DBSC session (any 4xx but 403
    does), and its bound cookie goes."""
    body = problem_bytes(401, detail, **{"continue": False})
    headers = (
        ("content-type", CONTENT_TYPE),
        ("content-length", str(len(body))),
        *_GUARDS,
        ("set-cookie", policy.clearing_bound_cookie()),
    )
    return Reply(401, headers, body)


def _problem(status: int, detail: str, extra: tuple[tuple[str, str], ...] = ()) -> Reply:
    body = problem_bytes(status, detail)
    headers = (("content-type", CONTENT_TYPE), ("content-length", str(len(body))), *_GUARDS)
    return Reply(status, headers + extra, body)
