"""Admin API keys: ``sk_live_<key id><secret><checksum>``, each bound to one tenant.

The key id (16 base62 characters) names the key in Redis and in ``apikey list``; the secret
(32 base62 characters, 190 bits from ``secrets``) proves possession; the checksum is the CRC32
of everything before it in 6 base62 characters, as in GitHub's token format, so a mistyped or
truncated key is refused offline, before any Redis command. Redis holds only the key's SHA-256
(a 190-bit secret needs no slow hash), compared in constant time.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import time
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any, Final

from .. import _connection
from .._core import inputs
from .._core.keys import KeySpace
from .._core.tokens import BASE62, encode_digits, random_base62
from ..model import from_ms

if TYPE_CHECKING:
    from ..aio import AsyncSessionStore
    from ..metrics import StoreMetrics

__all__ = [
    "ApiKey",
    "ApiKeys",
    "CHECKSUM_LEN",
    "ID_LEN",
    "KEY_ID",
    "PREFIX",
    "SECRET_LEN",
    "checksum",
    "digest",
    "mint",
    "parse",
]

PREFIX: Final = "sk_live_"
ID_LEN: Final = 16
SECRET_LEN: Final = 32
CHECKSUM_LEN: Final = 6
KEY_ID = re.compile(f"[0-9A-Za-z]{{{ID_LEN}}}")
_KEY = re.compile(
    f"{PREFIX}([0-9A-Za-z]{{{ID_LEN}}})[0-9A-Za-z]{{{SECRET_LEN}}}([0-9A-Za-z]{{{CHECKSUM_LEN}}})"
)


@dataclass(frozen=True, slots=True)
class ApiKey:
    """What the server knows about a key: never the key itself."""

    id: str
    tenant: str
    created_at: datetime | None = None


def checksum(text: str) -> str:
    """The key's last characters: a CRC32 of the rest, so a mistyped key costs no lookup."""
    return encode_digits(zlib.crc32(text.encode()), BASE62, CHECKSUM_LEN)


def mint() -> tuple[str, str]:
    """A fresh key: (key id, full key)."""
    key_id = random_base62(ID_LEN)
    body = f"{PREFIX}{key_id}{random_base62(SECRET_LEN)}"
    return key_id, body + checksum(body)


def parse(key: object) -> str | None:
    """The key id of a well-formed key with a valid checksum, else None (no I/O)."""
    if not isinstance(key, str):
        return None
    match = _KEY.fullmatch(key)
    if match is None or checksum(key[:-CHECKSUM_LEN]) != match[2]:
        return None
    return match[1]


def digest(key: str) -> bytes:
    """What Redis keeps of a key: its SHA-256, never the key."""
    return hashlib.sha256(key.encode()).digest()


class ApiKeys:
    """Mint, verify, list and revoke keys in Redis (asyncio client)."""

    def __init__(
        self,
        client: Any,
        prefix: str,
        *,
        clock: Callable[[], float] = time.time,
        metrics: StoreMetrics | None = None,
    ) -> None:
        """``metrics``: where a Redis failure of a lookup counts (the store's, when built
        with ``of``)."""
        self._client = client
        # Tenant buckets do not matter here: only the API key builders are used.
        self._keys = KeySpace(prefix, 1)
        self._clock = clock
        self._failed = None if metrics is None else metrics.redis_failed

    @classmethod
    def of(cls, store: AsyncSessionStore) -> ApiKeys:
        """The keys under a store's prefix, on its client, counted in its metrics."""
        return cls(store.client, store.config.prefix, metrics=store.metrics)

    def __repr__(self) -> str:
        return "ApiKeys()"

    async def create(self, tenant: str) -> tuple[ApiKey, str]:
        """Mint a key for ``tenant``; the full key is returned once and never stored."""
        tenant = inputs.tenant(tenant)
        key_id, key = mint()
        now = int(self._clock() * 1000)
        with _connection.translated(self._failed):
            # Listed before it works: a crash in between leaves a listed id that never verifies.
            await self._client.sadd(self._keys.tenant_api_keys(tenant), key_id)
            await self._client.hset(
                self._keys.api_key(key_id),
                mapping={"hash": digest(key), "tenant": tenant, "created": now},
            )
        return ApiKey(key_id, tenant, from_ms(now)), key

    async def verify(self, key: object) -> ApiKey | None:
        """The key's record if it is live; malformed keys cost no Redis command."""
        key_id = parse(key)
        if key_id is None:
            return None
        with _connection.translated(self._failed):
            stored, tenant = await self._client.hmget(self._keys.api_key(key_id), "hash", "tenant")
        if stored is None or tenant is None:
            return None
        if not hmac.compare_digest(bytes(stored), digest(str(key))):
            return None
        return ApiKey(key_id, tenant.decode())

    async def list(self, tenant: str) -> list[ApiKey]:
        """The tenant's keys (ids and when each was minted, never the keys), by id."""
        tenant = inputs.tenant(tenant)
        index = self._keys.tenant_api_keys(tenant)
        found = []
        with _connection.translated(self._failed):
            for raw in sorted(await self._client.smembers(index)):
                key_id = raw.decode()
                created = await self._client.hget(self._keys.api_key(key_id), "created")
                if created is None:
                    await self._client.srem(index, key_id)  # left by an interrupted create
                else:
                    found.append(ApiKey(key_id, tenant, from_ms(int(created))))
        return sorted(found, key=lambda key: (key.created_at, key.id))

    async def revoke(self, key_id: str) -> bool:
        """Delete the key at once; False if no such key."""
        if not KEY_ID.fullmatch(key_id):
            return False
        record = self._keys.api_key(key_id)
        with _connection.translated(self._failed):
            tenant = await self._client.hget(record, "tenant")
            if tenant is None:
                return False
            await self._client.delete(record)
            await self._client.srem(self._keys.tenant_api_keys(tenant.decode()), key_id)
        return True
