"""Every Redis key sessionstore writes, and nothing else builds key names.

=====================================  ======  ============================================
key                                    type    contents
=====================================  ======  ============================================
``P:{T:tag}:s:<random>``               hash    one session (fields in codec.py); PEXPIREAT
                                               at its expiry
``P:{T:tag}:u``                        zset    the user's live sessions: random -> expiry
                                               (ms); expires with its last session
``P:{T:ip:<address>}:i``               zset    sessions created from one IP: tag+random ->
                                               created (ms); capped, pruned after lifetime
``P:{T:b<k>}:t``                       zset    one of the tenant's ``tenant_buckets`` admin
                                               buckets: tag+random -> created (ms)
``P:tag-secret``                       string  HMAC key that turns user ids into tags
``P:apikey:<key id>``                  hash    an admin API key's hash and tenant
``P:{T}:apikeys``                      set     the tenant's API key ids
=====================================  ======  ============================================

``P`` is the configured prefix and ``T`` the tenant. ``tag`` is an HMAC of tenant and user id
(tokens.py): the text inside ``{...}`` is the Redis Cluster hash tag, so a session, its user
index and everything a script touches share one slot, while the tag reveals no user id.
A session id is ``sess_<tag><random>``, so a token or an id alone names its key. Index members
keep only what their key does not already say (memory: three members per session). Tenant
slugs and tags never contain braces (inputs.py), so no caller can move a hash tag.
"""

from __future__ import annotations

import zlib

_TAG = slice(5, 15)  # "sess_" is 5 characters, the tag 10


def user_member(session_id: str) -> str:
    """A session's member in its user's index: the random part (the key holds the tag)."""
    return session_id[15:]


def from_user_member(tag: str, member: str) -> str:
    return f"sess_{tag}{member}"


def tenant_member(session_id: str) -> str:
    """A session's member in the per-IP and per-tenant indexes: tag and random part."""
    return session_id[5:]


def from_tenant_member(member: str) -> str:
    return f"sess_{member}"


class KeySpace:
    __slots__ = ("_prefix", "buckets")

    def __init__(self, prefix: str, buckets: int) -> None:
        self._prefix = prefix
        self.buckets = buckets

    def session(self, tenant: str, session_id: str) -> str:
        return f"{self._prefix}:{{{tenant}:{session_id[_TAG]}}}:s:{session_id[15:]}"

    def user_index(self, tenant: str, user_tag: str) -> str:
        return f"{self._prefix}:{{{tenant}:{user_tag}}}:u"

    def user_index_of(self, tenant: str, session_id: str) -> str:
        return self.user_index(tenant, session_id[_TAG])

    def ip_index(self, tenant: str, ip_address: str) -> str:
        return f"{self._prefix}:{{{tenant}:ip:{ip_address}}}:i"

    def tenant_bucket(self, tenant: str, bucket: int) -> str:
        return f"{self._prefix}:{{{tenant}:b{bucket}}}:t"

    def tenant_bucket_of(self, tenant: str, session_id: str) -> str:
        return self.tenant_bucket(tenant, zlib.crc32(session_id.encode()) % self.buckets)

    def tenant_buckets(self, tenant: str) -> list[str]:
        return [self.tenant_bucket(tenant, k) for k in range(self.buckets)]

    def tag_secret(self) -> str:
        return f"{self._prefix}:tag-secret"

    def api_key(self, key_id: str) -> str:
        return f"{self._prefix}:apikey:{key_id}"

    def tenant_api_keys(self, tenant: str) -> str:
        return f"{self._prefix}:{{{tenant}}}:apikeys"
