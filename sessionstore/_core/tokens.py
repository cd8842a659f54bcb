"""Session ids, bearer tokens and user buckets: the one place that knows their shapes.

A session id is ``sess_<bucket><random>``; a token is ``sst_<bucket><random><secret>``. The
bucket (two base36 digits) names the hash slot that holds the user's sessions and indexes; the
random part names the session; the secret proves possession and is stored only as its SHA-256.
The bucket is a public function of tenant and user id (CRC32 modulo the bucket count), so no
key that could vanish decides where a user's sessions live; it reveals at most log2(buckets)
bits of a hash of the user id, never the id.
"""

from __future__ import annotations

import hashlib
import re
import secrets
import zlib
from dataclasses import dataclass
from typing import Final

BUCKET_LEN: Final = 2  # two base36 digits: up to 1296 buckets
MAX_BUCKETS: Final = 1024
RANDOM_LEN: Final = 22  # 22 base62 characters: 130 bits
SECRET_LEN: Final = 32  # 32 base62 characters: 190 bits
SESSION_PREFIX: Final = "sess_"
TOKEN_PREFIX: Final = "sst_"  # noqa: S105 (a prefix, not a secret)
BASE62: Final = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
BASE36: Final = "0123456789abcdefghijklmnopqrstuvwxyz"
_TOKEN: Final = re.compile(r"sst_[0-9a-z]{2}[0-9A-Za-z]{54}")
TOKEN_LEN: Final = len(TOKEN_PREFIX) + BUCKET_LEN + RANDOM_LEN + SECRET_LEN
SESSION_ID: Final = re.compile(r"sess_[0-9a-z]{2}[0-9A-Za-z]{22}")
# Where a session id's parts sit.
BUCKET: Final = slice(len(SESSION_PREFIX), len(SESSION_PREFIX) + BUCKET_LEN)
RANDOM: Final = slice(len(SESSION_PREFIX) + BUCKET_LEN, None)


@dataclass(frozen=True, slots=True)
class ParsedToken:
    session_id: str
    secret_hash: bytes

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


def parse_token(token: object) -> ParsedToken | None:
    """Split a token; anything not of the issued shape is None, before any Redis call."""
    if not isinstance(token, str) or len(token) != TOKEN_LEN or not _TOKEN.fullmatch(token):
        return None
    body = token[len(TOKEN_PREFIX) :]
    split = BUCKET_LEN + RANDOM_LEN
    return ParsedToken(SESSION_PREFIX + body[:split], hash_secret(body[split:]))


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
