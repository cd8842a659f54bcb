"""Webhook records in Redis: registering, listing and removing endpoints, and their logs.

``Webhooks`` registers a tenant's endpoints (also ``sessionstore webhooks add|list|remove|log``
and the admin API); ``RedisAdapter`` is how the registry and the deliverers (delivery.py) read
and write the records, on the store's own client.

Keys (``P`` the store's prefix, ``T`` the tenant; ``{T}`` is the tenant's hash slot, so every
call below touches one slot; registration's script, lua/webhook_add.lua, counts the tenant's
webhooks and adds one in a single step, so registrations at once never pass the limit):

=================================  ======  ======================================================
``P:webhook-tenants``              set     tenants with webhooks: where deliverers look
``P:{T}:webhooks``                 set     the tenant's webhook ids
``P:{T}:webhook:<id>``             hash    url, types, secret, state, created; the delivery's
                                           cursor, attempts, failing_since, next_attempt, and
                                           disabled_at and reason once disabled
``P:{T}:webhook:<id>:lease``       string  which deliverer works on the endpoint (SET NX PX)
``P:{T}:webhook:<id>:log``         stream  its delivery attempts, about the last 1000
=================================  ======  ======================================================
"""

from __future__ import annotations

import builtins
import re
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any, Final

from .. import _connection
from .._core import inputs, scripts
from .._core.events import types as event_types
from .._core.tokens import random_base62
from ..errors import InvalidArgument
from ..model import from_ms, isoformat
from .destinations import check_url
from .signing import new_secret

if TYPE_CHECKING:
    from ..aio import AsyncSessionStore

__all__ = [
    "DISABLED",
    "ENABLED",
    "ID_LEN",
    "ID_PREFIX",
    "LOG_LENGTH",
    "MAX_PER_TENANT",
    "WEBHOOK_ID",
    "Attempt",
    "Keys",
    "RedisAdapter",
    "TooManyWebhooks",
    "Webhook",
    "Webhooks",
    "read_webhook",
    "secret_of",
]

ID_PREFIX: Final = "wh_"
ID_LEN: Final = 16
MAX_PER_TENANT: Final = 20
LOG_LENGTH: Final = 1000

ENABLED: Final = "enabled"
DISABLED: Final = "disabled"

WEBHOOK_ID = re.compile(f"{ID_PREFIX}[0-9A-Za-z]{{{ID_LEN}}}")


class TooManyWebhooks(InvalidArgument):
    """The tenant already has MAX_PER_TENANT webhooks."""


# -- records ------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Webhook:
    """A registered endpoint, as listed: never its secret."""

    id: str
    tenant: str
    url: str
    types: frozenset[str] | None  # None: every type
    state: str
    created_at: datetime
    cursor: str | None
    attempts: int
    failing_since: datetime | None
    next_attempt_at: datetime | None
    disabled_at: datetime | None
    disabled_reason: str | None

    def to_dict(self) -> dict[str, Any]:
        """The endpoint as the admin API shows it (camelCase, ISO 8601 times)."""
        return {
            "id": self.id,
            "url": self.url,
            "types": None if self.types is None else sorted(self.types),
            "state": self.state,
            "createdAt": isoformat(self.created_at),
            "cursor": self.cursor,
            "failingSince": _iso(self.failing_since),
            "disabledAt": _iso(self.disabled_at),
            "disabledReason": self.disabled_reason,
        }


@dataclass(frozen=True, slots=True)
class Attempt:
    """One line of an endpoint's delivery log."""

    event_id: str
    outcome: str  # delivered, failed, or disabled (the endpoint gave up on after this)
    status: int | None  # the HTTP status, when there was an answer
    error: str | None
    duration_ms: float
    at: datetime

    def to_dict(self) -> dict[str, Any]:
        """The attempt as the admin API shows it (camelCase, ISO 8601 times)."""
        return {
            "eventId": self.event_id,
            "outcome": self.outcome,
            "status": self.status,
            "error": self.error,
            "durationMs": self.duration_ms,
            "at": isoformat(self.at),
        }


def _iso(moment: datetime | None) -> str | None:
    return None if moment is None else isoformat(moment)


def read_webhook(tenant: str, webhook_id: str, fields: Mapping[bytes, bytes]) -> Webhook | None:
    """The endpoint its hash's ``fields`` describe; None when they are no whole registration
    (never written whole, or removed meanwhile)."""
    url = _text(fields, "url")
    created = _moment(fields, "created")
    if url is None or created is None:
        return None
    kinds = _text(fields, "types")
    return Webhook(
        id=webhook_id,
        tenant=tenant,
        url=url,
        types=None if kinds is None else frozenset(kinds.split(",")),
        state=_text(fields, "state") or ENABLED,
        created_at=created,
        cursor=_text(fields, "cursor"),
        attempts=int(_text(fields, "attempts") or 0),
        failing_since=_moment(fields, "failing_since"),
        next_attempt_at=_moment(fields, "next_attempt"),
        disabled_at=_moment(fields, "disabled_at"),
        disabled_reason=_text(fields, "reason"),
    )


def secret_of(fields: Mapping[bytes, bytes]) -> str:
    """The signing secret in an endpoint's hash ("" when it has none)."""
    return _text(fields, "secret") or ""


def _text(fields: Mapping[bytes, bytes], name: str) -> str | None:
    value = fields.get(name.encode())
    return None if value is None or value == b"" else value.decode()


def _moment(fields: Mapping[bytes, bytes], name: str) -> datetime | None:
    value = _text(fields, name)
    return None if value is None else from_ms(int(value))


def _read_attempt(fields: Mapping[bytes, bytes]) -> Attempt:
    status = _text(fields, "status")
    return Attempt(
        event_id=_text(fields, "event") or "",
        outcome=_text(fields, "outcome") or "failed",
        status=None if status is None else int(status),
        error=_text(fields, "error"),
        duration_ms=float(_text(fields, "ms") or 0),
        at=_moment(fields, "at") or from_ms(0),
    )


def _attempt_fields(attempt: Attempt) -> list[tuple[str, object]]:
    """An attempt as its log entry's fields (``_read_attempt`` reads them back)."""
    return [
        ("event", attempt.event_id),
        ("outcome", attempt.outcome),
        ("status", "" if attempt.status is None else attempt.status),
        ("error", attempt.error or ""),
        ("ms", attempt.duration_ms),
        ("at", int(attempt.at.timestamp() * 1000)),
    ]


# -- Redis --------------------------------------------------------------------------------------


class Keys:
    """The webhook keys of one prefix (the module docstring lists them)."""

    def __init__(self, prefix: str) -> None:
        self.prefix = prefix

    def tenants(self) -> str:
        """The set of tenants with webhooks."""
        return f"{self.prefix}:webhook-tenants"

    def webhooks(self, tenant: str) -> str:
        """The set of the tenant's webhook ids."""
        return f"{self.prefix}:{{{tenant}}}:webhooks"

    def webhook(self, tenant: str, webhook_id: str) -> str:
        """The endpoint's hash: registration and delivery state."""
        return f"{self.prefix}:{{{tenant}}}:webhook:{webhook_id}"

    def lease(self, tenant: str, webhook_id: str) -> str:
        """The endpoint's lease: the name of the deliverer working on it."""
        return self.webhook(tenant, webhook_id) + ":lease"

    def log(self, tenant: str, webhook_id: str) -> str:
        """The endpoint's delivery log, a stream."""
        return self.webhook(tenant, webhook_id) + ":log"


class RedisAdapter:
    """Webhook records on the store's client (``AsyncSessionStore.client``): plain commands,
    each call (or pipeline) within one slot. Redis failures count in the store's
    ``sessionstore_redis_errors_total{kind}`` when it has metrics, as its own operations' do."""

    def __init__(self, store: AsyncSessionStore) -> None:
        self.store = store
        self.client = store.client
        self.keys = Keys(store.config.prefix)

    def _count(self, error: BaseException) -> None:
        if self.store.metrics is not None:
            self.store.metrics.redis_failed(error)

    async def call(self, *args: Any) -> Any:
        """One command; its reply."""
        with _connection.translated(self._count):
            async with _connection.turn(self.client):
                return await self.client.execute_command(*args)

    async def pipeline(self, *commands: tuple[Any, ...]) -> list[Any]:
        """Commands of one slot, sent together and run in order (not as a transaction)."""
        cluster = _connection.is_cluster(self.client)
        with _connection.translated(self._count):
            async with _connection.turn(self.client):
                pipe = self.client.pipeline() if cluster else self.client.pipeline(False)
                for command in commands:
                    pipe.execute_command(*command)
                replies: list[Any] = await pipe.execute()
                return replies

    async def fields(self, tenant: str, webhook_id: str) -> dict[bytes, bytes]:
        """The endpoint's hash (empty when there is none)."""
        fields = await self.call("HGETALL", self.keys.webhook(tenant, webhook_id))
        return _pairs(fields)

    async def enabled_endpoints(self) -> builtins.list[tuple[str, str]]:
        """(tenant, webhook id) of every enabled endpoint of every tenant with webhooks."""
        found = []
        for raw in sorted(await self.call("SMEMBERS", self.keys.tenants())):
            tenant = raw.decode()
            members = await self.call("SMEMBERS", self.keys.webhooks(tenant))
            ids = sorted(item.decode() for item in members)
            if not ids:
                continue
            states = await self.pipeline(
                *(("HGET", self.keys.webhook(tenant, webhook_id), "state") for webhook_id in ids)
            )
            found += [
                (tenant, webhook_id)
                for webhook_id, state in zip(ids, states, strict=True)
                if state == ENABLED.encode()
            ]
        return found

    async def record(
        self,
        tenant: str,
        webhook_id: str,
        *attempts: Attempt,
        reset: bool = False,
        **fields: object,
    ) -> bool:
        """Log ``attempts`` and set the endpoint's ``fields`` (``reset``: its failures cleared
        too); False, and nothing left behind, when the endpoint was removed meanwhile."""
        record = self.keys.webhook(tenant, webhook_id)
        log_key = self.keys.log(tenant, webhook_id)
        commands: list[tuple[Any, ...]] = [
            ("XADD", log_key, "MAXLEN", "~", LOG_LENGTH, "*", *_flat(_attempt_fields(attempt)))
            for attempt in attempts
        ]
        if reset:
            fields["attempts"] = 0
            commands.append(("HDEL", record, "failing_since", "next_attempt"))
        commands.append(("HSET", record, *_flat(fields.items())))
        commands.append(("SISMEMBER", self.keys.webhooks(tenant), webhook_id))
        *_, listed = await self.pipeline(*commands)
        if not listed:
            # Removed while this was in flight: remove what this just wrote, too.
            await self.pipeline(("DEL", record), ("DEL", log_key))
            return False
        return True


# -- registration -------------------------------------------------------------------------------


class Webhooks:
    """Register, list and remove a tenant's endpoints, and read their delivery logs."""

    def __init__(
        self,
        store: AsyncSessionStore,
        *,
        allow_private: bool = False,
        allow_metadata: bool = False,
        clock: Callable[[], float] = time.time,
    ) -> None:
        """``allow_private``, ``allow_metadata``: which destinations registration accepts
        (``destinations.allowed``); give the deliverers the same."""
        self._redis = RedisAdapter(store)
        self._store = store
        self._keys = self._redis.keys
        self._allow_private = allow_private
        self._allow_metadata = allow_metadata
        self._clock = clock

    def __repr__(self) -> str:
        return f"Webhooks(prefix={self._keys.prefix!r})"

    async def add(
        self, tenant: str, url: str, *, types: Iterable[str] | None = None
    ) -> tuple[Webhook, str]:
        """Register an endpoint; returns it and its signing secret (shown this once).

        It receives the tenant's events from now on: those after the newest one stored now.
        Raises DestinationRefused for a destination the allowances refuse, and TooManyWebhooks
        when the tenant already has MAX_PER_TENANT.
        """
        tenant = inputs.tenant(tenant)
        url = check_url(url, allow_private=self._allow_private, allow_metadata=self._allow_metadata)
        kinds = event_types(types)
        webhook_id = ID_PREFIX + random_base62(ID_LEN)
        secret = new_secret()
        fields = {
            "url": url,
            "types": "" if kinds is None else ",".join(sorted(kinds)),
            "secret": secret,
            "state": ENABLED,
            "created": int(self._clock() * 1000),
            "cursor": await self._store.newest_event_id(tenant) or "0-0-00",
            "attempts": 0,
        }
        await self._register(tenant, webhook_id, fields)
        webhook = read_webhook(tenant, webhook_id, _encoded(fields))
        assert webhook is not None
        return webhook, secret

    async def _register(self, tenant: str, webhook_id: str, fields: Mapping[str, object]) -> None:
        # The count, the record and the index entry in one step (webhook_add.lua), so that
        # registrations at once cannot pass the limit together; both keys are in the
        # tenant's slot. Then the tenant's entry on the deliverers' list (another slot): after
        # the index, so that a remove racing this puts it back (see remove).
        index = self._keys.webhooks(tenant)
        record = self._keys.webhook(tenant, webhook_id)
        added = await self._store.run_script(
            scripts.WEBHOOK_ADD, (index, record), MAX_PER_TENANT, webhook_id, *_flat(fields.items())
        )
        if not added:
            raise TooManyWebhooks(f"a tenant has at most {MAX_PER_TENANT} webhooks")
        await self._redis.call("SADD", self._keys.tenants(), tenant)

    async def get(self, tenant: str, webhook_id: str) -> Webhook | None:
        """The tenant's endpoint ``webhook_id``; None when it has no such endpoint."""
        tenant = inputs.tenant(tenant)
        if not isinstance(webhook_id, str) or not WEBHOOK_ID.fullmatch(webhook_id):
            return None
        listed = await self._redis.call("SISMEMBER", self._keys.webhooks(tenant), webhook_id)
        if not listed:
            return None
        return read_webhook(tenant, webhook_id, await self._redis.fields(tenant, webhook_id))

    async def list(self, tenant: str) -> list[Webhook]:
        """The tenant's endpoints, oldest first."""
        tenant = inputs.tenant(tenant)
        found = []
        for raw in sorted(await self._redis.call("SMEMBERS", self._keys.webhooks(tenant))):
            webhook_id = raw.decode()
            fields = await self._redis.fields(tenant, webhook_id)
            webhook = read_webhook(tenant, webhook_id, fields)
            if webhook is not None:
                found.append(webhook)
        return sorted(found, key=lambda webhook: (webhook.created_at, webhook.id))

    async def remove(self, tenant: str, webhook_id: str) -> bool:
        """Unregister at once; a delivery in flight may still finish. False if unknown."""
        tenant = inputs.tenant(tenant)
        if not isinstance(webhook_id, str) or not WEBHOOK_ID.fullmatch(webhook_id):
            return False
        index = self._keys.webhooks(tenant)
        # Unlisted first, so a deliverer that writes after the DEL sees it is gone
        # (RedisAdapter.record) and removes what it wrote.
        removed, *_ = await self._redis.pipeline(
            ("SREM", index, webhook_id),
            ("DEL", self._keys.webhook(tenant, webhook_id)),
            ("DEL", self._keys.log(tenant, webhook_id)),
            ("DEL", self._keys.lease(tenant, webhook_id)),
        )
        if not await self._redis.call("SCARD", index):
            # Off the deliverers' list; an add that raced this puts its tenant back.
            await self._redis.call("SREM", self._keys.tenants(), tenant)
            if await self._redis.call("SCARD", index):
                await self._redis.call("SADD", self._keys.tenants(), tenant)
        return bool(removed)

    async def log(
        self, tenant: str, webhook_id: str, *, limit: int = 100
    ) -> builtins.list[Attempt] | None:
        """The endpoint's latest delivery attempts, newest first; None if no such endpoint."""
        limit = inputs.limit(limit)
        if await self.get(tenant, webhook_id) is None:
            return None
        entries = await self._redis.call(
            "XREVRANGE", self._keys.log(tenant, webhook_id), "+", "-", "COUNT", limit
        )
        return [_read_attempt(_pairs(fields)) for _, fields in entries]


def _flat(items: Iterable[tuple[str, object]]) -> list[object]:
    return [part for pair in items for part in pair]


def _encoded(fields: Mapping[str, object]) -> dict[bytes, bytes]:
    return {name.encode(): str(value).encode() for name, value in fields.items()}


def _pairs(fields: Any) -> dict[bytes, bytes]:
    """A hash's fields, from a dict or (a reply without redis-py's callback) flat pairs."""
    if isinstance(fields, dict):
        return fields
    return dict(zip(fields[::2], fields[1::2], strict=True))
