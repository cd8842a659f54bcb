"""The near cache: validate hot sessions from the process's own memory, revocation included.

Sans-I/O: this module decides what the cache may answer and what a subscriber's messages mean;
``_subscribers.py`` holds the connections that feed it (the drivers' side).

Every script that changes a session publishes the session's key on the prefix's channel
``P:changes`` in the same step (lua/lib.lua: ``announce``): revoke, revoke_all, bulk
revocation, the cap, the MFA update, and the drop of an ended session. A process with
a near cache keeps one subscriber connection per node on that channel and drops a session from
memory as soon as its key arrives. A touch publishes nothing: it changes only what a cached copy
may show as older (its last activity, and an idle expiry that moved later), and the cache stops
answering for a session once its own touch falls due, so every touch still reaches Redis.

Two bounds, stated in the README:

- **Changes made by the scripts** are seen within ``TRUSTED_FOR`` (250 ms) whatever breaks.
  The subscriber PINGs every ``PING_EVERY``; Redis answers a PING after every message
  published before it, so a PONG handled at time t vouches for every change published before
  that PING was sent. The cache answers only while every lane's last PONG vouches for less
  than ``TRUSTED_FOR`` ago. Any break empties it: a lane that goes silent, a connection that
  drops, and a reconnect the client library makes on its own, which shows as a second
  subscription confirmation on the same connection (``Lane.received``). Pings sent before a
  break are forgotten with it, so no later PONG is credited to them.
- **Changes made outside the scripts** (an operator's ``DEL``, ``FLUSHDB``, eviction, a
  restore) publish nothing. No cached answer is older than ``max_age`` (default 5 s); where
  the server has keyspace notifications on, the subscriber also follows them, and a ``DEL``,
  expiry, eviction or restore is then seen as fast as a script change (``FLUSHDB`` emits no
  per-key event, and an ``HSET`` or ``EXPIRE`` is what the scripts do on every touch: for
  those ``max_age`` is the bound).

A read that was in flight while its session's key was announced must not refill the cache with
what it read: each read notes the cache's generation before it starts, and an entry is stored
only if its key was not announced since (and no reset happened).
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict, deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from ..model import Session, to_ms
from .tokens import secret_matches

PING_EVERY = 0.05  # seconds between the subscriber's PINGs
TRUSTED_FOR = 0.25  # seconds a handled PONG vouches for the cache
RECONNECT_AFTER = 0.2  # seconds between attempts to bring a broken channel back
DEFAULT_MAX_AGE = 5.0  # seconds a cached answer may stand for changes that publish nothing
_RECENT_KEYS = 100_000  # announced keys remembered to refuse in-flight refills
_KEYSPACE_EVENTS = frozenset("Aghxe")  # notify-keyspace-events classes that name a DEL & co.
# Keyspace events the scripts cause on every create and touch: a touch needs no invalidation
# (see above), and acting on them would only cost the next validate a miss. An operator's
# HSET or EXPIRE is bounded by max_age. (Redis names PEXPIRE's event "expire"; the embedded
# server, the command.)
_SCRIPTS_OWN_EVENTS = frozenset({"hset", "expire", "pexpire", "pexpireat"})


class ChannelBroken(Exception):
    """A lane can no longer vouch for what it has heard: the cache must start afresh."""


@dataclass(frozen=True, slots=True)
class _Entry:
    session: Session
    secret_hash: bytes
    last_active_ms: int
    expires_ms: int
    stored_at: float  # the cache's clock when it was stored


@dataclass(frozen=True, slots=True)
class NearCacheStats:
    """What ``store.near_cache_stats()`` reports: counters since start, and the cache now."""

    hits: int
    misses: int
    invalidations: int
    resets: int
    size: int
    trusted: bool


class NearCache:
    """A bounded LRU of validated sessions, trusted while its subscribers keep up."""

    def __init__(
        self,
        capacity: int,
        *,
        max_age: float = DEFAULT_MAX_AGE,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.capacity = capacity
        self.max_age = max_age
        self._clock = clock
        self._entries: OrderedDict[str, _Entry] = OrderedDict()
        self._lock = threading.Lock()
        self._generation = 0
        self._floor = 0  # reads begun before this generation may not fill the cache
        self._announced: dict[str, int] = {}  # key -> generation of its last announcement
        self.lanes = 1  # subscriber connections that must all vouch (one per cluster primary)
        self._pongs: dict[int, float] = {}
        self._vouched = float("-inf")  # the oldest of the lanes' last PONGs
        self.hits = self.misses = self.invalidations = self.resets = 0

    # -- the validate path -------------------------------------------------------------------

    def trusted(self) -> bool:
        return self._clock() - self._vouched < TRUSTED_FOR

    def get(
        self, key: str, secret_hash: bytes, now_ms: int, touch_interval_ms: int
    ) -> Session | None:
        """The session, when the cache may answer for it: known, same secret, not ended, no
        touch due, younger than ``max_age``, and the channel whole. Anything else is a miss
        (Redis decides)."""
        if not self.trusted():
            if self._entries:
                self.reset()
            self.misses += 1
            return None
        with self._lock:
            entry = self._entries.get(key)
            if entry is not None:
                self._entries.move_to_end(key)
        if (
            entry is None
            or not secret_matches(secret_hash, entry.secret_hash)
            or now_ms >= entry.expires_ms
            or now_ms - entry.last_active_ms >= touch_interval_ms
            or self._clock() - entry.stored_at >= self.max_age
        ):
            self.misses += 1
            return None
        self.hits += 1
        return entry.session

    def generation(self) -> int:
        return self._generation

    def put(self, key: str, session: Session, secret_hash: bytes, read_from: int) -> None:
        """Remember what a read begun at generation ``read_from`` found, unless it is stale."""
        with self._lock:
            if read_from < self._floor or self._announced.get(key, -1) > read_from:
                return
            if not self.trusted():
                return
            self._entries[key] = _Entry(
                session,
                secret_hash,
                to_ms(session.last_active_at),
                to_ms(session.expires_at),
                self._clock(),
            )
            self._entries.move_to_end(key)
            while len(self._entries) > self.capacity:
                self._entries.popitem(last=False)

    def discard(self, key: str) -> None:
        with self._lock:
            self._entries.pop(key, None)

    # -- the subscribers' side ---------------------------------------------------------------

    def announced(self, key: str) -> None:
        with self._lock:
            self._generation += 1
            self._announced[key] = self._generation
            if len(self._announced) > _RECENT_KEYS:
                # Forget the keys, and refuse every read begun before now instead.
                self._announced.clear()
                self._floor = self._generation
            if self._entries.pop(key, None) is not None:
                self.invalidations += 1

    def ponged(self, sent_at: float, lane: int = 0) -> None:
        with self._lock:
            self._pongs[lane] = max(self._pongs.get(lane, sent_at), sent_at)
            if len(self._pongs) >= self.lanes:
                self._vouched = min(self._pongs.values())

    def reset(self) -> None:
        """Empty the cache and refuse every read begun before now (the channel broke)."""
        with self._lock:
            self._pongs.clear()
            self._vouched = float("-inf")
            self._generation += 1
            self._floor = self._generation
            self._announced.clear()
            self._entries.clear()
            self.resets += 1

    def stats(self) -> NearCacheStats:
        return NearCacheStats(
            self.hits,
            self.misses,
            self.invalidations,
            self.resets,
            len(self._entries),
            self.trusted(),
        )


def channel(prefix: str) -> str:
    return f"{prefix}:changes"


def keyspace_pattern(prefix: str, db: int) -> str:
    """The keyspace-notification channels of the prefix's session hashes (keys.py: ``s:``)."""
    escaped = "".join(f"\\{char}" if char in "*?[]\\" else char for char in prefix)
    return f"__keyspace@{db}__:{escaped}:{{*}}:s:*"


def follows_keyspace(notify_keyspace_events: str) -> bool:
    """Whether the server's ``notify-keyspace-events`` setting names deleted, expired and
    evicted keys on keyspace channels (K plus a class that covers them)."""
    return "K" in notify_keyspace_events and bool(_KEYSPACE_EVENTS & set(notify_keyspace_events))


class Lane:
    """What one subscriber connection has told the cache so far: sans-I/O, driven by the
    sync and async subscribers alike. A fresh ``Lane`` for every connection: the pings of a
    connection that broke are never credited to another."""

    def __init__(self, cache: NearCache, number: int, subscriptions: int) -> None:
        self.cache = cache
        self.number = number
        self._subscriptions = subscriptions  # channels and patterns asked for, once each
        self._confirmed = 0
        self._pings: deque[float] = deque()
        self._next_ping = 0.0

    def ping_due(self, now: float) -> bool:
        """Whether to send a PING now (and note it); ChannelBroken when Redis went silent."""
        if now < self._next_ping:
            return False
        if self._pings and now - self._pings[0] > TRUSTED_FOR * 4:
            raise ChannelBroken("no PONG from Redis")
        self._pings.append(now)
        self._next_ping = now + PING_EVERY
        return True

    def received(self, message: Mapping[str, Any]) -> None:
        kind = _text(message.get("type") or "")
        if kind in ("subscribe", "psubscribe"):
            self._confirmed += 1
            if self._confirmed > self._subscriptions:
                # The client library lost the connection and subscribed again on its own:
                # whatever was published in between is lost.
                raise ChannelBroken("the connection was remade behind the subscriber's back")
        elif kind == "message":
            self.cache.announced(_text(message["data"]))
        elif kind == "pmessage":
            if _text(message["data"]) not in _SCRIPTS_OWN_EVENTS:
                name = _text(message["channel"])
                self.cache.announced(name[name.index("__:") + 3 :])
        elif kind == "pong" or (not kind and _text(message.get("data")) == "PONG"):
            if self._pings:
                self.cache.ponged(self._pings.popleft(), self.number)


def _text(value: object) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)
