"""Store settings, frozen so one object can be shared by every store and request."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import timedelta

from ._core.tokens import MAX_BUCKETS
from .errors import InvalidArgument

__all__ = ["StoreConfig"]

_PREFIX = re.compile(r"[A-Za-z0-9_.-]{1,32}")


@dataclass(frozen=True, slots=True)
class StoreConfig:
    """How long sessions live and how the store lays them out in Redis.

    ``prefix`` namespaces every key (tests use one per test). ``tenant_buckets`` is how many
    hash slots a tenant's sessions are spread over (keys.py); it is fixed for the life of a
    prefix, and a store configured otherwise refuses to run (IncompatibleLayout).
    ``events`` records every session's life (created, revoked, evicted, expired, MFA verified)
    in per-bucket Redis Streams, written by the same script as the change, kept for
    ``event_retention`` (events.py).
    ``near_cache_size`` > 0 lets validate answer that many hot sessions from process memory,
    kept in step with every change through Redis pub/sub (nearcache.py); no cached answer is
    older than ``near_cache_max_age``, which bounds what publishes nothing (an operator's DEL,
    FLUSHDB, eviction).
    ``revoke_replicas`` > 0 makes revocations wait (``WAIT``) until that many replicas hold
    them, and raise RevocationNotDurable when they do not in ``revoke_replica_timeout``
    (standalone Redis with replicas; the revocation is applied on the primary either way).
    ``busy_poll`` (off by default) is how long a sync store's thread reads its socket without
    blocking, for the reply to its plain reads (validate's), before it sleeps until the reply
    comes: a reply from a Redis on the same host can come sooner than a sleeping thread wakes.
    It pays where cores are idle, and costs where none is (_waiting.py has the figures).
    """

    prefix: str = "ss"
    lifetime: timedelta = timedelta(hours=24)
    idle_timeout: timedelta | None = None
    touch_interval: timedelta = timedelta(seconds=60)
    max_sessions_per_user: int = 100
    tenant_buckets: int = 128
    revoke_replicas: int = 0
    revoke_replica_timeout: timedelta = timedelta(milliseconds=200)
    events: bool = False
    near_cache_size: int = 0
    near_cache_max_age: timedelta = timedelta(seconds=5)
    event_retention: timedelta = timedelta(days=30)
    busy_poll: timedelta = timedelta(0)

    def __post_init__(self) -> None:
        self._check_sessions()
        self._check_machinery()
        idle = 0 if self.idle_timeout is None else _ms(self.idle_timeout)
        object.__setattr__(self, "lifetime_ms", _ms(self.lifetime))
        object.__setattr__(self, "idle_timeout_ms", idle)
        object.__setattr__(self, "event_retention_ms", _ms(self.event_retention))
        object.__setattr__(self, "touch_interval_ms", _ms(self.touch_interval))

    def _check_sessions(self) -> None:
        """What sessions are and how they are laid out."""
        if not isinstance(self.prefix, str) or not _PREFIX.fullmatch(self.prefix):
            raise InvalidArgument("prefix must be 1-32 characters of [A-Za-z0-9_.-]")
        if self.lifetime <= timedelta(0):
            raise InvalidArgument("lifetime must be positive")
        if self.idle_timeout is not None and self.idle_timeout <= timedelta(0):
            raise InvalidArgument("idle_timeout must be positive or None")
        if self.touch_interval < timedelta(0):
            raise InvalidArgument("touch_interval must not be negative")
        if not 1 <= self.max_sessions_per_user <= 100_000:
            raise InvalidArgument("max_sessions_per_user must be in 1..100000")
        if not 1 <= self.tenant_buckets <= MAX_BUCKETS:
            raise InvalidArgument(f"tenant_buckets must be in 1..{MAX_BUCKETS}")

    def _check_machinery(self) -> None:
        """How the store keeps them: durability, caching, events, waiting."""
        if not 0 <= self.revoke_replicas <= 16:
            raise InvalidArgument("revoke_replicas must be in 0..16")
        if not timedelta(milliseconds=1) <= self.revoke_replica_timeout <= timedelta(seconds=10):
            raise InvalidArgument("revoke_replica_timeout must be in 1 ms..10 s")
        if not 0 <= self.near_cache_size <= 1_000_000:
            raise InvalidArgument("near_cache_size must be in 0..1000000 (0: off)")
        if not timedelta(milliseconds=1) <= self.near_cache_max_age <= timedelta(hours=1):
            raise InvalidArgument("near_cache_max_age must be in 1 ms..1 hour")
        if not isinstance(self.events, bool):
            raise InvalidArgument("events must be a bool")
        if not timedelta(minutes=1) <= self.event_retention <= timedelta(days=366):
            raise InvalidArgument("event_retention must be in 1 minute..366 days")
        if not timedelta(0) <= self.busy_poll <= timedelta(milliseconds=1):
            raise InvalidArgument("busy_poll must be in 0..1 ms (0: off)")

    # The durations in milliseconds, as the scripts take them: set once, since the hot path
    # reads them on every call (a timedelta's conversion costs about 0.4 µs each time).
    lifetime_ms: int = field(init=False, repr=False, compare=False)
    idle_timeout_ms: int = field(init=False, repr=False, compare=False)  # 0: none
    event_retention_ms: int = field(init=False, repr=False, compare=False)
    touch_interval_ms: int = field(init=False, repr=False, compare=False)


def _ms(delta: timedelta) -> int:
    return int(delta.total_seconds() * 1000)
