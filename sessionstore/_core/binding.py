"""Device Bound Session Credentials (W3C DBSC): the store's side of binding a session to a key.

A browser that supports DBSC answers a ``Secure-Session-Registration`` header (sent with the
login response) by making a key pair and posting a proof: a JWS of type ``dbsc+jwt`` whose
header carries the public key (``jwk``) and whose ``jti`` is the challenge it was given. Once
the proof is verified, the key is stored in the session's own hash and the session is *bound*:
its requests then need a short-lived bound cookie as well as the session token, and only the
holder of the private key can get a new one (a refresh: a proof over a fresh challenge, signed
by the stored key). A thief who copies every cookie but cannot copy the key is locked out when
the bound cookie expires.

What lives where (codec.py names the fields):

- ``b`` and the key chunks ``k0``, ``k1``, ... are written by one script step (bind.lua) with
  the registration challenge it takes, so a session is never bound without its key, nor twice.
  ``b`` is one of the MOVING fields: the hot path sees a session become bound, and bind.lua
  announces the change so near caches drop it.
- Challenges are kept in the session's hash too, a few at a time (lua/challenges.lua), each
  used once and only before it expires. Every script touches the session's own bucket.
- The bound cookie needs no Redis at all: ``<expiry>.<HMAC(secret, tenant, session, expiry)>``,
  compared in constant time. The secret is made once per deployment (SET NX under the prefix,
  keys.bound_cookie_secret) and read once per process.

Proofs are read with PyJWT (and its ``cryptography`` backend): the algorithm is taken from the
allowed list only (ES256, RS256; never ``none``), the key from the proof's own ``jwk`` at
registration and from the session's stored one at refresh. Nothing here logs or shows a
token, a proof, a key or the secret.
"""

from __future__ import annotations

import base64
import enum
import hashlib
import hmac
import json
import secrets
import threading
from collections import OrderedDict
from dataclasses import dataclass, field
from functools import lru_cache
from typing import TYPE_CHECKING, Any, Final

from ..errors import InvalidArgument
from . import events, inputs, scripts
from .flows import Command, Flow, ScriptCall
from .kinds import Reason
from .scripts import Script
from .tokens import ParsedToken, parse_token, secret_matches

if TYPE_CHECKING:
    from .operations import Core

__all__ = [
    "ALGORITHMS",
    "MAX_PROOF_BYTES",
    "SCRIPTS",
    "Attempt",
    "Binder",
    "BindingTerms",
    "Challenge",
    "CookieCheck",
    "InvalidProof",
    "Outcome",
    "session_call",
]

ALGORITHMS: Final = ("ES256", "RS256")  # what the registration header offers; never "none"
PROOF_TYPE: Final = "dbsc+jwt"
MAX_PROOF_BYTES: Final = 8192  # an RS256 proof with a 4096-bit key is about 2 KB
KEY_CHUNK: Final = 64  # hash values stay in a listpack (codec.py)
MAX_KEY_CHUNKS: Final = 16  # bind.lua reads k0..k15: a 4096-bit RSA key fits
MIN_RSA_BITS: Final = 2048
KNOWN_KEYS: Final = 10_000  # bound sessions whose key a process remembers (keys never change)
SCRIPTS: Final = (scripts.CHALLENGE, scripts.BIND, scripts.PROVE, scripts.BINDING_FAILED)
_SECRET_BYTES: Final = 32
_MAC_BYTES: Final = 16
_REGISTRATION, _REFRESH = "r", "f"  # the kinds of challenge (lua/challenges.lua)


class InvalidProof(InvalidArgument):
    """A DBSC proof (``Secure-Session-Response``) that is not a well-formed ``dbsc+jwt`` JWS
    signed with ES256 or RS256 by the key it must be signed by: refused before any change."""


class Outcome(enum.Enum):
    """How a registration or refresh ended."""

    PROVEN = "proven"  # bound (registration), or the key proven (refresh)
    CHALLENGED = "challenged"  # a refresh without a proof: here is a challenge to sign
    STALE = "stale"  # the challenge is unknown, used or expired (a refresh gets a new one)
    ENDED = "ended"  # no live session for this token, or it is not the session named
    UNBOUND = "unbound"  # a refresh for a session that is not bound
    KEY_MISMATCH = "key_mismatch"  # signed by another key: recorded as session.binding_failed


class CookieCheck(enum.Enum):
    """What a bound cookie says for the session it came with."""

    VALID = "valid"
    MISSING = "missing"  # absent, or not one this deployment made for this session
    EXPIRED = "expired"  # ours, for this session, and past its expiry: a stolen copy, likely


@dataclass(frozen=True, slots=True)
class BindingTerms:
    """How an app binds sessions (the middleware's DeviceBinding): how long a challenge lives,
    how long a bound cookie lives, whether the registration header carries an
    ``authorization`` value the proof must repeat, and whether a binding failure revokes."""

    challenge_seconds: int = 120
    cookie_seconds: int = 300
    authorization: bool = False
    revoke_on_failure: bool = False

    def __post_init__(self) -> None:
        if not 10 <= self.challenge_seconds <= 3600:
            raise InvalidArgument("challenge_seconds must be in 10..3600")
        if not 30 <= self.cookie_seconds <= 86_400:
            raise InvalidArgument("cookie_seconds must be in 30..86400")

    @property
    def preloaded_ms(self) -> int:
        """How long a challenge handed out ahead of the next refresh lives: until the bound
        cookie it will renew has expired, and one challenge lifetime more."""
        return (self.cookie_seconds + self.challenge_seconds) * 1000


@dataclass(frozen=True, slots=True)
class Challenge:
    """A registration challenge, and the ``authorization`` value sent with it (or None)."""

    value: str = field(repr=False)
    authorization: str | None = field(default=None, repr=False)


@dataclass(frozen=True, slots=True)
class Attempt:
    """What a registration or refresh came to; ``challenge`` is the one to send next
    (``Secure-Session-Challenge``), when one was issued."""

    outcome: Outcome
    session_id: str | None = None
    challenge: str | None = field(default=None, repr=False)
    revoked: bool = False


@dataclass(frozen=True, slots=True)
class _Proof:
    token: str = field(repr=False)
    algorithm: str
    key: str | None = field(repr=False)  # the canonical JWK of the header's ``jwk``


def session_call(
    core: Core, script: Script, tenant: str, session_id: str, *args: Any
) -> ScriptCall:
    """A call of a binding script on one session: its hash and its bucket's ``t`` index."""
    keys = core.keys
    return ScriptCall(
        script,
        (keys.session(tenant, session_id), keys.created_index_of(tenant, session_id)),
        (core.now_ms(), *args),
    )


class Binder:
    """The DBSC flows of one store: they share its core, its clock, the deployment's bound
    cookie secret once read, and the keys of the bound sessions this process has met."""

    def __init__(self, core: Core) -> None:
        self.core = core
        self._secret: bytes | None = None
        self._keys: OrderedDict[tuple[str, str], str] = OrderedDict()
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"Binder(prefix={self.core.config.prefix!r})"

    # -- the deployment's secret ----------------------------------------------------------------

    def secret(self) -> Flow[bytes]:
        """The bound cookie secret: made once per deployment, read once per process."""
        if self._secret is None:
            key = self.core.keys.bound_cookie_secret()
            _, stored = yield [
                Command(("SET", key, secrets.token_bytes(_SECRET_BYTES), "NX")),
                Command(("GET", key)),
            ]
            self._secret = bytes(stored)
        return self._secret

    # -- registration ---------------------------------------------------------------------------

    def begin(self, tenant: str, token: object, terms: BindingTerms) -> Flow[Challenge | None]:
        """A registration challenge for the token's new session; None when it is not live (or
        bound already). Single-use, and it expires after ``terms.challenge_seconds``."""
        tenant = inputs.tenant(tenant)
        parsed = parse_token(token)
        if parsed is None:
            return None
        yield from self.core.check_layout()
        challenge = _new_challenge()
        expires = self.core.now_ms() + terms.challenge_seconds * 1000
        call = self._call(scripts.CHALLENGE, tenant, parsed, _REGISTRATION, challenge, expires)
        (reply,) = yield [call]
        if int(reply) != 1:
            return None
        if not terms.authorization:
            return Challenge(challenge)
        secret = yield from self.secret()
        return Challenge(challenge, _authorization(secret, challenge))

    def register(
        self, tenant: str, token: object, proof: str, terms: BindingTerms
    ) -> Flow[Attempt]:
        """Verify a registration proof and bind the token's session to its key.

        Raises InvalidProof for a proof that is not well formed or whose signature does not
        hold with its own ``jwk``, before anything changes."""
        tenant = inputs.tenant(tenant)
        read = _read_proof(proof, registration=True)
        key = _key(read)
        claims = _verified(read, key)
        parsed = parse_token(token)
        if parsed is None:
            return Attempt(Outcome.ENDED)
        yield from self.core.check_layout()
        secret = yield from self.secret()
        _check_authorization(claims, secret if terms.authorization else None)
        following = _new_challenge()
        (reply,) = yield [
            self._call(
                scripts.BIND,
                tenant,
                parsed,
                claims["jti"],
                self._events("user"),
                following,
                self.core.now_ms() + terms.preloaded_ms,
                *_chunks(key),
            )
        ]
        reply = int(reply)
        if reply == 1:
            self._remember(tenant, parsed.session_id, key)
            return Attempt(Outcome.PROVEN, parsed.session_id, following)
        if reply == 3:
            return (yield from self._failed(tenant, parsed, Reason.KEY_MISMATCH, terms))
        return Attempt(Outcome.STALE if reply == 2 else Outcome.ENDED)

    # -- refresh --------------------------------------------------------------------------------

    def refresh(
        self,
        tenant: str,
        token: object,
        session_id: str,
        proof: str | None,
        terms: BindingTerms,
    ) -> Flow[Attempt]:
        """A refresh of the bound session ``session_id`` (``Sec-Secure-Session-Id``), by the
        request that holds ``token``. Without a proof: a challenge to sign. With one: PROVEN
        when it signs a recent, unused challenge with the session's key (a new challenge comes
        with it, for the next refresh); STALE with a fresh challenge when its challenge is not
        outstanding; KEY_MISMATCH, recorded, when another key signed it.

        Raises InvalidProof for a proof that is not well formed, before any Redis call."""
        tenant = inputs.tenant(tenant)
        read = None if proof is None else _read_proof(proof, registration=False)
        parsed = parse_token(token)
        if parsed is None or parsed.session_id != session_id:
            return Attempt(Outcome.ENDED)
        yield from self.core.check_layout()
        if read is None:
            return (yield from self._challenge(tenant, parsed, terms.challenge_seconds * 1000))
        key = self._known(tenant, session_id)
        if key is None:
            found = yield from self._stored_key(tenant, parsed)
            if isinstance(found, Outcome):
                return Attempt(found)
            key = found
        try:
            claims = _verified(read, key)
        except _WrongKey:
            return (yield from self._failed(tenant, parsed, Reason.KEY_MISMATCH, terms))
        following = _new_challenge()
        expires = self.core.now_ms() + terms.preloaded_ms
        call = self._call(scripts.PROVE, tenant, parsed, claims["jti"], following, expires)
        (reply,) = yield [call]
        issued = following if int(reply) in (1, 2) else None
        return Attempt(_PROVE_REPLIES[int(reply)], session_id, issued)

    def _challenge(self, tenant: str, parsed: ParsedToken, lifetime_ms: int) -> Flow[Attempt]:
        challenge = _new_challenge()
        expires = self.core.now_ms() + lifetime_ms
        (reply,) = yield [
            self._call(scripts.CHALLENGE, tenant, parsed, _REFRESH, challenge, expires)
        ]
        reply = int(reply)
        if reply == 1:
            return Attempt(Outcome.CHALLENGED, parsed.session_id, challenge)
        return Attempt(Outcome.UNBOUND if reply == 2 else Outcome.ENDED)

    def _stored_key(self, tenant: str, parsed: ParsedToken) -> Flow[str | Outcome]:
        """The session's key, read once per process (a bound key never changes)."""
        names = [f"k{index}" for index in range(MAX_KEY_CHUNKS)]
        session_key = self.core.keys.session(tenant, parsed.session_id)
        (values,) = yield [Command(("HMGET", session_key, "h", "b", *names))]
        stored, bound, *chunks = values
        if not secret_matches(parsed.secret_hash, stored):
            return Outcome.ENDED
        if bound != b"1":
            return Outcome.UNBOUND
        key = b"".join(chunk for chunk in chunks if chunk is not None).decode()
        self._remember(tenant, parsed.session_id, key)
        return key

    # -- bound cookies --------------------------------------------------------------------------

    def cookie(self, tenant: str, session_id: str, seconds: int) -> Flow[str]:
        """A bound cookie for the session, valid ``seconds`` from now."""
        secret = yield from self.secret()
        expires = self.core.now_ms() + seconds * 1000
        return _cookie(secret, tenant, session_id, expires)

    def check_cookie(self, tenant: str, session_id: str, value: str | None) -> Flow[CookieCheck]:
        """Whether ``value`` is a live bound cookie of this session: no Redis call once the
        secret is read, so the hot path stays one round trip (or none, from a near cache)."""
        if not value:
            return CookieCheck.MISSING
        secret = yield from self.secret()
        expiry, _, mac = value.partition(".")
        if not 1 <= len(expiry) <= 12 or not all(c in "0123456789abcdef" for c in expiry):
            return CookieCheck.MISSING
        expected = _cookie(secret, tenant, session_id, int(expiry, 16)).encode()
        if not hmac.compare_digest(expected, value.encode(errors="replace")):
            return CookieCheck.MISSING
        return CookieCheck.VALID if int(expiry, 16) > self.core.now_ms() else CookieCheck.EXPIRED

    # -- failures -------------------------------------------------------------------------------

    def record_failure(
        self, tenant: str, token: object, reason: Reason, terms: BindingTerms
    ) -> Flow[bool]:
        """Record a binding failure of the token's live session (session.binding_failed), and
        revoke the session in the same step when ``terms.revoke_on_failure``; False when the
        token has no live session (nothing recorded)."""
        tenant = inputs.tenant(tenant)
        parsed = parse_token(token)
        if parsed is None:
            return False
        yield from self.core.check_layout()
        return (yield from self._record(tenant, parsed, reason, terms))

    def _failed(
        self, tenant: str, parsed: ParsedToken, reason: Reason, terms: BindingTerms
    ) -> Flow[Attempt]:
        recorded = yield from self._record(tenant, parsed, reason, terms)
        revoked = recorded and terms.revoke_on_failure
        return Attempt(Outcome.KEY_MISMATCH, parsed.session_id, revoked=revoked)

    def _record(
        self, tenant: str, parsed: ParsedToken, reason: Reason, terms: BindingTerms
    ) -> Flow[bool]:
        revoke = "1" if terms.revoke_on_failure else "0"
        recorded = self._events("system")
        name = reason.name.lower()  # binding_failed.lua maps it to its REASON
        call = self._call(scripts.BINDING_FAILED, tenant, parsed, recorded, name, revoke)
        (reply,) = yield [call]
        if int(reply) == 1 and terms.revoke_on_failure:
            self.core.fixed.forget(tenant, parsed.session_id)
            near = self.core.near
            if near is not None:
                near.discard(self.core.keys.session(tenant, parsed.session_id))
        return int(reply) == 1

    # -- shared steps ---------------------------------------------------------------------------

    def _call(self, script: Script, tenant: str, parsed: ParsedToken, *args: Any) -> ScriptCall:
        return session_call(self.core, script, tenant, parsed.session_id, parsed.secret_hash, *args)

    def _events(self, who: str) -> str:
        core = self.core
        retention = core.config.event_retention_ms if core.events_on else None
        return events.script_argument(retention, who)

    def _known(self, tenant: str, session_id: str) -> str | None:
        with self._lock:
            key = self._keys.get((tenant, session_id))
            if key is not None:
                self._keys.move_to_end((tenant, session_id))
            return key

    def _remember(self, tenant: str, session_id: str, key: str) -> None:
        with self._lock:
            self._keys[(tenant, session_id)] = key
            self._keys.move_to_end((tenant, session_id))
            while len(self._keys) > KNOWN_KEYS:
                self._keys.popitem(last=False)


_PROVE_REPLIES: Final = {
    0: Outcome.ENDED,
    1: Outcome.PROVEN,
    2: Outcome.STALE,
    4: Outcome.UNBOUND,
}


# -- proofs (PyJWT) -----------------------------------------------------------------------------


class _WrongKey(Exception):
    """A well-formed proof whose signature does not hold with the key it was checked with."""


def _read_proof(proof: object, *, registration: bool) -> _Proof:
    """The parts of a proof that decide how to check it; InvalidProof when malformed."""
    import jwt  # here: only apps that bind sessions pay for importing it

    if not isinstance(proof, str) or not proof:
        raise InvalidProof("the DBSC proof is missing")
    if len(proof) > MAX_PROOF_BYTES:
        raise InvalidProof(f"the DBSC proof is longer than {MAX_PROOF_BYTES} bytes")
    try:
        header = jwt.get_unverified_header(proof)
    except jwt.PyJWTError:
        raise InvalidProof("the DBSC proof is not a JWS") from None
    if header.get("typ") != PROOF_TYPE:
        raise InvalidProof(f'the DBSC proof\'s "typ" must be "{PROOF_TYPE}"')
    algorithm = header.get("alg")
    if algorithm not in ALGORITHMS:
        raise InvalidProof(f'the DBSC proof\'s "alg" must be one of {", ".join(ALGORITHMS)}')
    jwk = header.get("jwk")
    if not registration:
        if jwk is not None:
            raise InvalidProof('a refresh proof carries no "jwk": the session\'s key signs it')
        return _Proof(proof, algorithm, None)
    if not isinstance(jwk, dict):
        raise InvalidProof('a registration proof must carry its public key as "jwk"')
    return _Proof(proof, algorithm, _canonical_jwk(jwk, algorithm))


def _key(proof: _Proof) -> str:
    """The key a registration proof carries (``_read_proof`` gave it one, or refused it)."""
    if proof.key is None:
        raise InvalidProof('a registration proof must carry its public key as "jwk"')
    return proof.key


def _canonical_jwk(jwk: dict[str, Any], algorithm: str) -> str:
    """The public key as RFC 7638 orders it (required members only, sorted, no spaces):
    one spelling per key, so comparing keys is comparing strings."""
    kty = jwk.get("kty")
    if algorithm == "ES256" and kty == "EC" and jwk.get("crv") == "P-256":
        members = {name: jwk.get(name) for name in ("crv", "kty", "x", "y")}
    elif algorithm == "RS256" and kty == "RSA":
        members = {name: jwk.get(name) for name in ("e", "kty", "n")}
    else:
        raise InvalidProof(f"the DBSC proof's jwk is not a key for {algorithm}")
    if not all(isinstance(value, str) and value for value in members.values()):
        raise InvalidProof("the DBSC proof's jwk lacks a member of its key")
    canonical = json.dumps(members, separators=(",", ":"))
    if len(canonical) > KEY_CHUNK * MAX_KEY_CHUNKS:
        raise InvalidProof("the DBSC proof's key is too large")
    _verifier(canonical, algorithm)  # a key that does not load is a malformed proof
    return canonical


@lru_cache(maxsize=4096)
def _verifier(key: str, algorithm: str) -> Any:
    """The loaded public key of a canonical JWK, checked to suit ``algorithm``."""
    import jwt

    try:
        loaded = jwt.PyJWK(json.loads(key), algorithm=algorithm)
    except (jwt.PyJWTError, ValueError, TypeError):
        raise InvalidProof("the DBSC proof's jwk is not a valid public key") from None
    if algorithm == "RS256" and loaded.key.key_size < MIN_RSA_BITS:
        raise InvalidProof(f"an RS256 key must have at least {MIN_RSA_BITS} bits")
    return loaded.key


def _verified(proof: _Proof, key: str) -> dict[str, Any]:
    """The proof's claims once its signature holds with ``key``: _WrongKey when it does not
    (or the key is for another algorithm), InvalidProof when the claims are malformed."""
    import jwt

    try:
        verifier = _verifier(key, proof.algorithm)
    except InvalidProof:
        raise _WrongKey from None  # the session's key is for the other algorithm
    try:
        claims = jwt.decode(
            proof.token,
            verifier,
            algorithms=[proof.algorithm],
            # Chrome's proofs may carry "iat" as a string (the spec's own example does).
            options={"require": ["jti"], "verify_aud": False, "verify_iat": False},
        )
    except (jwt.InvalidSignatureError, jwt.InvalidAlgorithmError, jwt.InvalidKeyError):
        if proof.key is not None:
            raise InvalidProof("the DBSC proof's signature does not hold with its jwk") from None
        raise _WrongKey from None
    except jwt.PyJWTError as error:
        raise InvalidProof(
            f"the DBSC proof's claims are not valid: {type(error).__name__}"
        ) from None
    jti = claims.get("jti")
    if not isinstance(jti, str) or not 1 <= len(jti) <= 64:
        raise InvalidProof('the DBSC proof\'s "jti" must be the challenge it answers')
    return claims


def _check_authorization(claims: dict[str, Any], secret: bytes | None) -> None:
    """The ``authorization`` claim must repeat the one the registration header sent (none:
    absent)."""
    claimed = claims.get("authorization")
    if secret is None:
        if claimed is not None:
            raise InvalidProof('no "authorization" was sent, so the proof must carry none')
        return
    expected = _authorization(secret, claims["jti"])
    if not isinstance(claimed, str) or not hmac.compare_digest(claimed.encode(), expected.encode()):
        raise InvalidProof('the DBSC proof\'s "authorization" is not the one sent')


# -- small pieces -------------------------------------------------------------------------------


def _new_challenge() -> str:
    return secrets.token_urlsafe(16)  # 128 random bits, 22 characters


def _chunks(key: str) -> list[bytes]:
    encoded = key.encode()
    return [encoded[at : at + KEY_CHUNK] for at in range(0, len(encoded), KEY_CHUNK)]


def _mac(secret: bytes, *parts: str) -> str:
    digest = hmac.new(secret, "\0".join(parts).encode(), hashlib.sha256).digest()[:_MAC_BYTES]
    return base64.urlsafe_b64encode(digest).decode().rstrip("=")


def _cookie(secret: bytes, tenant: str, session_id: str, expires_ms: int) -> str:
    return f"{expires_ms:x}.{_mac(secret, 'bound cookie', tenant, session_id, str(expires_ms))}"


def _authorization(secret: bytes, challenge: str) -> str:
    """The ``authorization`` value sent with a registration challenge: derived from it, so
    nothing more is stored, and only this deployment can make it."""
    return _mac(secret, "authorization", challenge)
