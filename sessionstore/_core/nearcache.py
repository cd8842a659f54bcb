"""The near cache: validate hot sessions from the process's own memory, revocation included.

Sans-I/O: this module decides what the cache may answer and what a subscriber's messages mean;
``_subscribers.py`` holds the connections that feed it (the drivers' side).

Every script that changes a session publishes the session's key on its bucket's channel
``P:{T:bb}:changes`` in the same step (lua/lib.lua: ``announce``): revoke, revoke_all, bulk
revocation, the cap, the MFA update, and the drop of an ended session. The message is sharded
(``SPUBLISH``): the channel has the bucket's hash tag, so on a cluster it stays in the shard of
the session's slot instead of crossing the bus to every node. A process with a near cache keeps
one subscriber connection per lane (per cluster primary) and drops a session from memory as
soon as its key arrives. A touch publishes nothing: it changes only what a cached copy may show
as older (its last activity, and an idle expiry that moved later), and the cache stops answering
for a session once its own touch falls due, so every touch still reaches Redis.

Channels are subscribed on demand, one bucket at a time (``SSUBSCRIBE``, one command per
channel, on the lane of the primary that owns its slot). The cache answers for a session, and
keeps what a read found, only once its bucket's subscription has been confirmed on that lane,
and only what a read begun after the confirmation found (the confirmation is a generation, like
an announcement). A miss in a bucket not yet subscribed asks for it; a sync store's validate
then waits for the confirmation up to ``CHANNEL_WAIT`` (an async one cannot block its loop, so
its next validates fill the cache instead). At most ``MAX_CHANNELS`` buckets are followed per
cache: the sessions of any further bucket are simply not cached. Every lane also stays
subscribed to the prefix's classic channel ``P:changes``, on which nothing is published any
more (an older version of the scripts still would, during an upgrade): it keeps the connection
in subscribed mode for the PINGs, and shows a reconnect redis-py makes on its own. Sharded
pub/sub needs Redis 7.0 (as the scripts' ``PEXPIREAT ... NX`` already does); the embedded
server (fakeredis >= 2.41, what the ``embedded`` extra requires) has SPUBLISH in Lua and
SSUBSCRIBE, so every backend runs the same scripts and the same subscribers.

Two bounds, stated in the README:

- **Changes made by the scripts** are seen within ``TRUSTED_FOR`` (250 ms) whatever breaks.
  The subscriber PINGs every ``PING_EVERY``; Redis answers a PING after every message
  published before it, so a PONG handled at time t vouches for every change published before
  that PING was sent. The cache answers only while every lane's last PONG vouches for less
  than ``TRUSTED_FOR`` ago. Any break empties it: a lane that goes silent, a connection that
  drops, a reconnect the client library makes on its own, which shows as a second
  subscription confirmation on the same connection (``Lane.received``), and an
  ``sunsubscribe`` from the server, which drops a slot's shard channels when the slot leaves
  the node (a slot move, a failover): the broken lane's buckets count as unsubscribed until it
  has subscribed them again, on the node that owns them now. Pings sent before a break are
  forgotten with it, so no later PONG is credited to them. One gap is Redis Cluster's own:
  while a slot is being migrated, a script that Redis runs on the importing node (ASK)
  publishes there, where nobody is subscribed yet; the source's ``sunsubscribe`` when the
  slot is handed over empties the cache, so a cached answer for that slot is at most as old
  as the move (and never older than ``max_age``).
- **Changes made outside the scripts** (an operator's ``DEL``, ``FLUSHDB``, eviction, a
  restore) publish nothing. No cached answer is older than ``max_age`` (default 5 s); where
  the server has keyspace notifications on, the subscriber also follows them, and a ``DEL``,
  expiry, eviction or restore is then seen as fast as a script change (``FLUSHDB`` emits no
  per-key event, and an ``HSET`` or ``EXPIRE`` is what the scripts do on every touch: for
  those ``max_age`` is the bound).

A read that was in flight while its session's key was announced must not refill the cache with
what it read: each read notes the cache's generation before it starts, and an entry is stored
only if its key was not announced since (and no reset happened, and its bucket's subscription
was confirmed before the read began).
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict, deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from ..model import Session, to_ms
from .keys import bucket_of_key
from .tokens import secret_matches

PING_EVERY = 0.05  # seconds between the subscriber's PINGs
TRUSTED_FOR = 0.25  # seconds a handled PONG vouches for the cache
RECONNECT_AFTER = 0.2  # seconds between attempts to bring a broken channel back
CHANNEL_WAIT = TRUSTED_FOR  # longest a sync validate waits for its bucket's subscription
MAX_CHANNELS = 4096  # bucket channels one cache follows: 32 tenants of 128 buckets
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
class _Confirmed:
    lane: int
    generation: int  # reads begun before it may not fill the cache


@dataclass(frozen=True, slots=True)
class NearCacheStats:
    """What ``store.near_cache_stats()`` reports: counters since start, and the cache now."""

    hits: int
    misses: int
    invalidations: int
    resets: int
    size: int
    trusted: bool
    channels: int = 0  # buckets whose channel is subscribed and confirmed


def _nothing() -> None:
    pass


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
        # Bucket channels: every one asked for, in order (lanes keep a cursor into it), and
        # for each its confirmation (None: asked for, not confirmed) and when it was asked.
        self.max_channels = MAX_CHANNELS
        self._wanted: list[str] = []
        self._channels: dict[str, _Confirmed | None] = {}
        self._asked_at: dict[str, float] = {}
        self._heard = threading.Condition(self._lock)
        self.topology = 0  # moves when lanes must look at every wanted channel again
        # Set by the subscribers: how long a miss may wait for its bucket's confirmation (the
        # sync ones; an event loop may not block), and how to tell them a channel is wanted.
        self.wait_for_channel = 0.0
        self.wake: Callable[[], None] = _nothing

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
            # Ask already (without waiting: the lanes may be down), so that a lane coming up
            # subscribes the bucket before its first PING.
            self._follow(bucket_channel(key), wait=False)
            self.misses += 1
            return None
        with self._lock:
            entry = self._entries.get(key)
            if entry is not None:
                self._entries.move_to_end(key)
        if entry is None:
            # An entry exists only while its bucket's channel is confirmed: one whose channel
            # is not is asked for here, so that the read this miss leads to may be kept.
            self._follow(bucket_channel(key), wait=True)
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

    def _follow(self, channel: str, *, wait: bool) -> None:
        """Ask the lanes for the channel unless it is confirmed (or past the cap); with ``wait``,
        wait for its confirmation until ``wait_for_channel`` after it was asked for."""
        with self._lock:
            if channel in self._channels:
                if self._channels[channel] is not None:
                    return
                asked = False
            elif len(self._channels) >= self.max_channels:
                return  # past the bound: this bucket is not cached
            else:
                self._channels[channel] = None
                self._asked_at[channel] = self._clock()
                self._wanted.append(channel)
                asked = True
        if asked:
            self.wake()  # outside the lock: a lane takes it to read what is wanted
        if not wait or self.wait_for_channel <= 0:
            return
        with self._lock:
            until = self._asked_at[channel] + self.wait_for_channel
            while self._channels[channel] is None and (left := until - self._clock()) > 0:
                self._heard.wait(left)

    def generation(self) -> int:
        return self._generation

    def put(self, key: str, session: Session, secret_hash: bytes, read_from: int) -> None:
        """Remember what a read begun at generation ``read_from`` found, unless it is stale."""
        with self._lock:
            if read_from < self._floor or self._announced.get(key, -1) > read_from:
                return
            confirmed = self._channels.get(bucket_channel(key))
            if confirmed is None or read_from < confirmed.generation:
                return  # the read may have preceded the subscription: a change could be lost
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

    def wanted_from(self, cursor: int) -> list[str]:
        """The channels asked for since the lane's ``cursor`` (their count so far, once read)."""
        with self._lock:
            return self._wanted[cursor:]

    def confirmed(self, channel: str, lane: int) -> None:
        """The lane's connection is subscribed to the channel: reads begun from now may be
        kept (a read begun earlier may have been answered before the subscription)."""
        with self._lock:
            if channel not in self._channels:
                return
            self._generation += 1
            self._channels[channel] = _Confirmed(lane, self._generation)
            self._heard.notify_all()

    def rescan(self) -> None:
        """Which lane owns which channel may have changed (a new slot map): every lane looks
        at every wanted channel again."""
        with self._lock:
            self.topology += 1

    def reset(self, lane: int | None = None) -> None:
        """Empty the cache and refuse every read begun before now (the channel broke). With a
        ``lane``, its connection is gone: its buckets are unsubscribed until it (or the lane
        now owning their slot) has confirmed them again."""
        with self._lock:
            self._pongs.clear()
            self._vouched = float("-inf")
            self._generation += 1
            self._floor = self._generation
            self._announced.clear()
            self._entries.clear()
            self.resets += 1
            if lane is not None:
                now = self._clock()
                for channel, confirmed in self._channels.items():
                    if confirmed is not None and confirmed.lane == lane:
                        self._channels[channel] = None
                        self._asked_at[channel] = now
                self.topology += 1

    def stats(self) -> NearCacheStats:
        with self._lock:
            channels = sum(confirmed is not None for confirmed in self._channels.values())
        return NearCacheStats(
            self.hits,
            self.misses,
            self.invalidations,
            self.resets,
            len(self._entries),
            self.trusted(),
            channels,
        )


def channel(prefix: str) -> str:
    """The prefix's classic channel: each lane's anchor subscription (nothing publishes on it
    since the scripts publish per bucket)."""
    return f"{prefix}:changes"


def bucket_channel(session_key: str) -> str:
    """The sharded channel of a session key's bucket: ``P:{T:bb}:s:<random>`` ->
    ``P:{T:bb}:changes``, in the key's slot (lua/lib.lua: ``announce``)."""
    return bucket_of_key(session_key) + "changes"


def keyspace_pattern(prefix: str, db: int) -> str:
    """The keyspace-notification channels of the prefix's session hashes (keys.py: ``s:``)."""
    escaped = "".join(f"\\{char}" if char in "*?[]\\" else char for char in prefix)
    return f"__keyspace@{db}__:{escaped}:{{*}}:s:*"


def follows_keyspace(notify_keyspace_events: str) -> bool:
    """Whether the server's ``notify-keyspace-events`` setting names deleted, expired and
    evicted keys on keyspace channels (K plus a class that covers them)."""
    return "K" in notify_keyspace_events and bool(_KEYSPACE_EVENTS & set(notify_keyspace_events))


def _everything(channel: str) -> bool:
    return True


class Lane:
    """What one subscriber connection has told the cache so far: sans-I/O, driven by the
    sync and async subscribers alike. A fresh ``Lane`` for every connection: the pings of a
    connection that broke are never credited to another, and its bucket channels are asked
    for again. ``owns`` says which bucket channels this connection's node serves (all of
    them off a cluster)."""

    def __init__(
        self,
        cache: NearCache,
        number: int,
        subscriptions: int,
        owns: Callable[[str], bool] = _everything,
    ) -> None:
        self.cache = cache
        self.number = number
        self.owns = owns
        self._subscriptions = subscriptions  # channels and patterns asked for, once each
        self._confirmed = 0
        self._pings: deque[float] = deque()
        self._next_ping = 0.0
        self._asked: set[str] = set()  # bucket channels sent to this connection
        self._heard: set[str] = set()  # ... and confirmed on it
        self._cursor = 0
        self._topology = cache.topology

    def to_subscribe(self) -> list[str]:
        """Bucket channels wanted that this lane serves and has not asked for yet; the caller
        sends one SSUBSCRIBE for each (on a cluster, the channels of one command must share a
        slot), before its next PING."""
        if self._topology != self.cache.topology:
            self._topology, self._cursor = self.cache.topology, 0
        wanted = self.cache.wanted_from(self._cursor)
        self._cursor += len(wanted)
        fresh = [name for name in wanted if name not in self._asked and self.owns(name)]
        self._asked.update(fresh)
        return fresh

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
        elif kind == "ssubscribe":
            name = _text(message["channel"])
            if name not in self._asked or name in self._heard:
                raise ChannelBroken(f"{name} confirmed twice: the connection was remade")
            self._heard.add(name)
            self.cache.confirmed(name, self.number)
        elif kind == "sunsubscribe":
            # Nobody here unsubscribes: the server dropped the slot's channels (it moved).
            raise ChannelBroken(f"Redis dropped {_text(message['channel'])}: its slot moved")
        elif kind in ("message", "smessage"):
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
