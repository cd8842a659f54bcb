"""Session ids, bearer tokens and user tags.

A session id is ``sess_<tag><random>``; a token is ``sst_<tag><random><secret>``. The tag routes
to the user's hash slot; the random part names the session; the secret proves possession and
is stored only as its SHA-256. Token and id carry an HMAC of the user id, never the id itself.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass
from typing import Final

TAG_LEN: Final = 10
RANDOM_LEN: Final = 22  # 22 base62 characters: 130 bits
SECRET_LEN: Final = 32  # 32 base62 characters: 190 bits
SESSION_PREFIX: Final = "sess_"
TOKEN_PREFIX: Final = "sst_"  # noqa: S105 (a prefix, not a secret)
BASE62: Final = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
BASE36: Final = "0123456789abcdefghijklmnopqrstuvwxyz"
_TOKEN: Final = re.compile(r"sst_[0-9a-z]{10}[0-9A-Za-z]{54}")
TOKEN_LEN: Final = len(TOKEN_PREFIX) + TAG_LEN + RANDOM_LEN + SECRET_LEN


@dataclass(frozen=True, slots=True)
class ParsedToken:
    session_id: str
    secret_hash: bytes

    def __repr__(self) -> str:
        return f"ParsedToken(session_id={self.session_id!r})"


def user_tag(tag_secret: bytes, tenant: str, user_id: int) -> str:
    digest = hmac.digest(tag_secret, f"{tenant}\x00{user_id}".encode(), "sha256")
    return encode_digits(int.from_bytes(digest[:8]), BASE36, TAG_LEN)


def new_session(tag: str) -> tuple[str, str, bytes]:
    """Draw a fresh session: (session id, token, stored hash of the secret)."""
    random_part = random_base62(RANDOM_LEN)
    secret = random_base62(SECRET_LEN)
    session_id = f"{SESSION_PREFIX}{tag}{random_part}"
    token = f"{TOKEN_PREFIX}{tag}{random_part}{secret}"
    return session_id, token, hash_secret(secret)


def parse_token(token: object) -> ParsedToken | None:
    """Split a token; anything not of the issued shape is None, before any Redis call."""
    if not isinstance(token, str) or len(token) != TOKEN_LEN or not _TOKEN.fullmatch(token):
        return None
    body = token[len(TOKEN_PREFIX) :]
    split = TAG_LEN + RANDOM_LEN
    return ParsedToken(SESSION_PREFIX + body[:split], hash_secret(body[split:]))


def hash_secret(secret: str) -> bytes:
    return hashlib.sha256(secret.encode()).digest()


def new_tag_secret() -> bytes:
    return secrets.token_bytes(32)


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
