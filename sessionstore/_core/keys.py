"""Every Redis key of the sessions, and the index entries inside them. Nothing else names them.

(Webhooks, the console and the near cache name their own few keys and channel beside the code
that uses them: webhooks/registry.py, admin/console/auth.py, _subscribers.py.)

=====================================  ======  ============================================
key                                    type    contents
=====================================  ======  ============================================
``P:{T:bb}:s:<random>``                hash    one session (fields in codec.py); PEXPIREAT
                                               at its expiry
``P:{T:bb}:u:<user id>``               zset    the user's sessions: random -> expiry (ms)
``P:{T:bb}:t``                         zset    the bucket's sessions, newest last by lex
                                               order: ``<created><random><ip>`` (score 0);
                                               its first chunk (lua/index.lua)
``P:{T:bb}:t:<hex>``                   zset    its further chunks, at most 128 entries each
``P:{T:bb}:t:d``                       zset    the chunks' boundaries (lex order)
``P:{T:bb}:t:n``                       hash    ``n``: the entries outside the first chunk
``P:{T:bb}:t:sort``                    zset    scratch, only inside a script that removes
                                               many entries at once
``P:{T:bb}:i`` (``:<hex>``, ``:d``,    zset    the same sessions by IP: ``<ip><created>
``:n``)                                        <random>`` (score 0), in chunks alike
``P:{T:bb}:x``                         zset    with an idle timeout: ``t`` entries -> expiry
``P:{T:bb}:e``                         stream  with events on: the bucket's session events
``P:{T:bb}:m:<call id>``               string  a remembered script's answer, for a retry of
                                               the same call; MEMO_MS (lib.lua: remember)
``P:layout``                           string  layout version and bucket count
``P:settings``                         hash    the deployment's settings: ``events`` 1 or 0
``P:buckets``                          zset    every bucket that may hold sessions: its ``t``
                                               key -> until when (ms); sweeping.py
``P:buckets-seeded``                   string  the registry was seeded from the keyspace
``P:bound-cookie-secret``              string  the HMAC key of DBSC bound cookies (binding.py)
``P:apikey:<key id>``                  hash    an admin API key's hash and tenant
``P:{T}:apikeys``                      set     the tenant's API key ids
=====================================  ======  ============================================

``P`` is the configured prefix, ``T`` the tenant and ``bb`` the user's bucket (tokens.py): the
text inside ``{...}`` is the Redis Cluster hash tag, so a session and every index entry of it
share one slot and every script changes them together. Index keys live as long as their
longest-lived session. ``<created>`` is 11 hex digits of milliseconds, so lex order is time
order; ``<ip>`` is a length byte and the packed address, so one IP's entries are one lex range.
Tenant slugs never contain braces (inputs.py), so no caller can move a hash tag.
"""

from __future__ import annotations

import secrets
from typing import TYPE_CHECKING, Final

from .tokens import BUCKET, RANDOM, bucket_name, session_id, user_bucket

if TYPE_CHECKING:
    from ..model import Session

LAYOUT: Final = 3
CHUNKED_SINCE: Final = 3  # layout 2 kept each index in one key; `sessionstore migrate` splits it
CREATED_HEX: Final = 11  # milliseconds, fixed width until the year 2527


# How long a remembered answer waits for a retry (lib.lua: remember): over five times the
# longest a call of the store's own client is retried for (_connection: under a second).
MEMO_MS: Final = 5_000
_MEMO: Final = "m:"


def bucket_of_key(key: str) -> str:
    """The bucket ``P:{T:bb}:`` of any of its keys (lua/lib.lua: ``bucket_of``)."""
    return key[: key.index("}:") + 2]


def memo_beside(key: str) -> str:
    """A new call's memo key, in the bucket of ``key`` (any key of a bucket)."""
    return f"{bucket_of_key(key)}{_MEMO}{secrets.token_hex(8)}"


def is_memo(key: bytes) -> bool:
    return f"}}:{_MEMO}".encode() in key


def position(created_ms: int, random_part: str) -> bytes:
    """Where a session sorts in a listing: by creation, then by its random part."""
    return f"{created_ms:0{CREATED_HEX}x}{random_part}".encode()


def ip_key(packed_ip: bytes) -> bytes:
    """An IP as index entries carry it: length byte first, so no address prefixes another."""
    return bytes([len(packed_ip)]) + packed_ip


def session_id_at(bucket: str, position_: bytes) -> str:
    return session_id(bucket, position_[CREATED_HEX:].decode())


def created_at(position_: bytes) -> int:
    return int(position_[:CREATED_HEX], 16)


def random_part(session_id: str) -> str:
    return session_id[RANDOM]


class KeySpace:
    __slots__ = ("_bucket_names", "_prefix", "buckets")

    def __init__(self, prefix: str, buckets: int) -> None:
        self._prefix = prefix
        self.buckets = buckets
        self._bucket_names = tuple(bucket_name(number) for number in range(buckets))

    def bucket_of(self, tenant: str, user_id: int) -> str:
        return user_bucket(tenant, user_id, self.buckets)

    def all_buckets(self) -> tuple[str, ...]:
        return self._bucket_names

    def _bucket(self, tenant: str, bucket: str) -> str:
        return f"{self._prefix}:{{{tenant}:{bucket}}}:"

    def session(self, tenant: str, session_id: str) -> str:
        return f"{self._bucket(tenant, session_id[BUCKET])}s:{session_id[RANDOM]}"

    def user_index(self, tenant: str, user_id: int) -> str:
        return f"{self._bucket(tenant, self.bucket_of(tenant, user_id))}u:{user_id}"

    def user_index_in(self, tenant: str, session_id: str, user_id: int) -> str:
        """The index of ``user_id`` in the bucket ``session_id`` names (a token's owner)."""
        return f"{self._bucket(tenant, session_id[BUCKET])}u:{user_id}"

    def user_index_of(self, tenant: str, session: Session) -> str:
        """The index of a session's user, named from its id: no hash of the user id needed."""
        return self.user_index_in(tenant, session.id, session.user_id)

    def created_index(self, tenant: str, bucket: str) -> str:
        """The bucket's ``t`` index; scripts name the bucket's other keys from its prefix."""
        return f"{self._bucket(tenant, bucket)}t"

    def every_created_index(self) -> str:
        """A SCAN pattern for the ``t`` index of every bucket of every tenant."""
        return f"{self._prefix}:{{*}}:t"

    def created_index_of(self, tenant: str, session_id: str) -> str:
        return self.created_index(tenant, session_id[BUCKET])

    def ip_index(self, tenant: str, bucket: str) -> str:
        return f"{self._bucket(tenant, bucket)}i"

    def ip_index_beside(self, created_index: str) -> str:
        """The ``i`` index of the bucket whose ``t`` index this is (a name a SCAN found)."""
        return created_index.removesuffix("t") + "i"

    def idle_index(self, tenant: str, bucket: str) -> str:
        return f"{self._bucket(tenant, bucket)}x"

    def events(self, tenant: str, bucket: str) -> str:
        return f"{self._bucket(tenant, bucket)}e"

    def layout(self) -> str:
        return f"{self._prefix}:layout"

    def registry(self) -> str:
        """The buckets that may hold sessions: ``t`` key -> until when (sweeping.py)."""
        return f"{self._prefix}:buckets"

    def registry_seeded(self) -> str:
        """Present once the registry holds the buckets written before it existed."""
        return f"{self._prefix}:buckets-seeded"

    def settings(self) -> str:
        """The deployment's settings: ``events`` is 1 while every store records events."""
        return f"{self._prefix}:settings"

    def bound_cookie_secret(self) -> str:
        """The deployment's key for bound cookies (DBSC): made once with SET NX, never changed."""
        return f"{self._prefix}:bound-cookie-secret"

    def legacy_tag_secret(self) -> str:
        """Present only under layout 1, whose keys this version must not misread."""
        return f"{self._prefix}:tag-secret"

    def api_key(self, key_id: str) -> str:
        return f"{self._prefix}:apikey:{key_id}"

    def tenant_api_keys(self, tenant: str) -> str:
        return f"{self._prefix}:{{{tenant}}}:apikeys"
