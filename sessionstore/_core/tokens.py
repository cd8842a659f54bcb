"""Session ids, bearer tokens and user buckets: the one place that knows their shapes.

A session id is ``sess_<bucket><random>``; a token is ``sst_<bucket><random><owner><secret>``.
The bucket (two base36 digits) names the hash slot that holds the user's sessions and indexes;
the random part names the session; the owner (the user id in 13 base36 digits) names the user
index that says whether the session is live, so validate can read the session and that entry
in one round trip without a script; the secret proves possession and is stored only as its
SHA-256. The owner is no secret: a token's holder is that user, or can act as that user. The
bucket is a public function of tenant and user id (CRC32 modulo the bucket count), so no key
that could vanish decides where a user's sessions live.

Tokens issued before the owner was added (``sst_<bucket><random><secret>``) stay valid; they
parse with no owner, and validate reads their user index after their hash.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import zlib
from typing import Final, NamedTuple

BUCKET_LEN: Final = 2  # two base36 digits: up to 1296 buckets
MAX_BUCKETS: Final = 1024
RANDOM_LEN: Final = 22  # 22 base62 characters: 130 bits
SECRET_LEN: Final = 32  # 32 base62 characters: 190 bits
SESSION_PREFIX: Final = "sess_"
TOKEN_PREFIX: Final = "sst_"  # noqa: S105 (a prefix, not a secret)
BASE62: Final = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
BASE36: Final = "0123456789abcdefghijklmnopqrstuvwxyz"
OWNER_LEN: Final = 13  # base36 digits: every user id up to 2**63 - 1
_TOKEN: Final = re.compile(r"sst_[0-9a-z]{2}[0-9A-Za-z]{22}(?:[0-9a-z]{13})?[0-9A-Za-z]{32}")
TOKEN_LEN: Final = len(TOKEN_PREFIX) + BUCKET_LEN + RANDOM_LEN + OWNER_LEN + SECRET_LEN
OWNERLESS_TOKEN_LEN: Final = TOKEN_LEN - OWNER_LEN
_TOKEN_LENGTHS: Final = frozenset((TOKEN_LEN, OWNERLESS_TOKEN_LEN))
# Where a token's parts sit: the session id's bucket and random part, then its owner.
_ID_PART: Final = slice(len(TOKEN_PREFIX), len(TOKEN_PREFIX) + BUCKET_LEN + RANDOM_LEN)
_OWNER_PART: Final = slice(_ID_PART.stop, _ID_PART.stop + OWNER_LEN)
SESSION_ID: Final = re.compile(r"sess_[0-9a-z]{2}[0-9A-Za-z]{22}")
# Where a session id's parts sit.
BUCKET: Final = slice(len(SESSION_PREFIX), len(SESSION_PREFIX) + BUCKET_LEN)
RANDOM: Final = slice(len(SESSION_PREFIX) + BUCKET_LEN, None)


class ParsedToken(NamedTuple):  # a tuple: made on every validate, in half a frozen dataclass's time
    session_id: str
    secret_hash: bytes
    owner: int | None = None  # None: a token issued before tokens named their owner

    def __repr__(self) -> str:
        return f"ParsedToken(session_id={self.session_id!r})"


def user_bucket(tenant: str, user_id: int, buckets: int) -> str:
    """The bucket that holds every session of this user: stable for a fixed bucket count."""
    return bucket_name(zlib.crc32(f"{tenant}\x00{user_id}".encode()) % buckets)


def bucket_name(number: int) -> str:
    return encode_digits(number, BASE36, BUCKET_LEN)


def session_id(bucket: str, random_part: str) -> str:
    return f"{SESSION_PREFIX}{bucket}{random_part}"


def new_session(bucket: str) -> tuple[str, str, bytes]:
    """Draw a fresh session: (session id, token, stored hash of the secret)."""
    random_part = random_base62(RANDOM_LEN)
    secret = random_base62(SECRET_LEN)
    token = f"{TOKEN_PREFIX}{bucket}{random_part}{secret}"
    return session_id(bucket, random_part), token, hash_secret(secret)


def owned(token: str, owner: int) -> str:
    """A token of ``new_session`` with its owner's user id put before the secret."""
    split = len(TOKEN_PREFIX) + BUCKET_LEN + RANDOM_LEN
    return f"{token[:split]}{encode_digits(owner, BASE36, OWNER_LEN)[::-1]}{token[split:]}"


def parse_token(token: object) -> ParsedToken | None:
    """Split a token; anything not of an issued shape is None, before any Redis call."""
    # The length first: a huge string is refused before the pattern reads it.
    if (
        not isinstance(token, str)
        or len(token) not in _TOKEN_LENGTHS
        or not _TOKEN.fullmatch(token)
    ):
        return None
    session_id = SESSION_PREFIX + token[_ID_PART]
    secret_hash = hash_secret(token[-SECRET_LEN:])
    if len(token) == OWNERLESS_TOKEN_LEN:
        return ParsedToken(session_id, secret_hash)
    owner = int(token[_OWNER_PART], 36)
    if owner >= 2**63:
        return None  # no user id is that large: not a token this store issued
    return ParsedToken(session_id, secret_hash, owner)


def secret_matches(secret_hash: bytes, stored: bytes | None) -> bool:
    """Whether a session's stored digest is that of the presented secret: the one token
    compare, in constant time (the hot path, the near cache and device binding all use it)."""
    return stored is not None and hmac.compare_digest(bytes(stored), secret_hash)


def hash_secret(secret: str) -> bytes:
    return hashlib.sha256(secret.encode()).digest()


def random_base62(length: int) -> str:
    """``length`` characters of [0-9A-Za-z] from ``secrets``."""
    # Draw 64 bits more than the digits need, so the modulo bias stays below 2**-60.
    number = int.from_bytes(secrets.token_bytes(length * 6 // 8 + 8))
    return encode_digits(number, BASE62, length)


def encode_digits(number: int, alphabet: str, length: int) -> str:
    base = len(alphabet)
    chars = []
    for _ in range(length):
        number, digit = divmod(number, base)
        chars.append(alphabet[digit])
    return "".join(chars)
