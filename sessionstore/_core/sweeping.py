"""Which buckets hold sessions, so a background sweep visits those and never walks the keyspace.

Every create registers its bucket's ``t`` index in the prefix's registry (keys.py:
``P:buckets``, a zset scored by the time until which the bucket may hold a session: its
newest session's end plus the events' grace, rounded up to a step of 1/24 of the lifetime, at
most an hour, which bounds how long the registry outlives the last session). The registration
goes in the same round trip as the create script; a failed create leaves at most an entry with
nothing to sweep, and a registration lost with a dropped connection is made again by the next
create of that bucket in this process.
A process registers a bucket again only when a new session outlives what it registered
(``Registered``): about once a step per bucket and process, not once per create.

A sweep reads the entries not yet past their time (``ZRANGE BYSCORE``), drops the others, and
sweeps those buckets in chunks: O(buckets that may hold sessions), whatever else the database
holds. Buckets written before the registry existed (an upgrade) are found by one SCAN, the first
time a sweep finds no mark ``P:buckets-seeded`` (a small key per prefix, like the layout
marker, which a new prefix gets with its layout marker); the registry itself expires with the
last session it could hold. During a rolling upgrade, a bucket that only older processes
write is swept once a newer process creates a session in it.
"""

from __future__ import annotations

import threading
import zlib
from collections import OrderedDict
from typing import Final

SWEEP_CHUNK: Final = 128  # buckets one round trip of a sweep asks about
READ_CHUNK: Final = 1024  # registry entries one read returns
MAX_STEP_MS: Final = 3_600_000
REGISTERED: Final = 100_000  # buckets whose registration a process remembers (~200 B each)
# A background sweep also counts the chunks of one bucket in this many again (index.lua:
# index_recount), about one call per 128 sessions: every bucket in turn within this many sweeps
# of a process, for a twentieth of a sweep's cost at a million sessions.
RECOUNT_EVERY: Final = 16


def recount_due(created_index: str, sweep_number: int) -> bool:
    """Whether this sweep of a process counts the bucket's chunks again: its turn comes once in
    RECOUNT_EVERY sweeps."""
    return zlib.crc32(created_index.encode()) % RECOUNT_EVERY == sweep_number % RECOUNT_EVERY


def step(lifetime_ms: int) -> int:
    """How far registrations are rounded up: 1/24 of the lifetime, at least 1 ms, at most an
    hour."""
    return max(1, min(MAX_STEP_MS, lifetime_ms // 24))


def horizon(ends_ms: int, step_ms: int) -> int:
    """The registry score for a bucket whose newest session (with its grace) ends then."""
    return -(-ends_ms // step_ms) * step_ms


class Registered:
    """The buckets this process has registered and until when: a bounded LRU, thread-safe."""

    def __init__(self, step_ms: int, capacity: int = REGISTERED) -> None:
        self.step_ms = step_ms
        self.capacity = capacity
        self._until: OrderedDict[str, int] = OrderedDict()
        self._lock = threading.Lock()

    def due(self, created_index: str, ends_ms: int) -> int | None:
        """The score to register the bucket with now, or None when it is registered long
        enough already."""
        with self._lock:
            known = self._until.get(created_index)
        return None if known is not None and known >= ends_ms else horizon(ends_ms, self.step_ms)

    def registered(self, created_index: str, until_ms: int) -> None:
        """Remember a registration Redis has confirmed."""
        with self._lock:
            self._until[created_index] = max(until_ms, self._until.get(created_index, 0))
            self._until.move_to_end(created_index)
            while len(self._until) > self.capacity:
                self._until.popitem(last=False)


class Sweep:
    """``t`` index keys gathered into chunks of SWEEP_CHUNK buckets, one round trip each: a
    sweep's (``sweep_buckets``), or the SCAN's that seeds the registry."""

    def __init__(self) -> None:
        self.swept = 0
        self._chunk: list[str] = []

    def found(self, key: bytes | str) -> list[str] | None:
        """Take one key; a full chunk to sweep now, or None."""
        self._chunk.append(key.decode() if isinstance(key, bytes) else key)
        return self._take() if len(self._chunk) == SWEEP_CHUNK else None

    def rest(self) -> list[str] | None:
        """What is left once every key is found, or None."""
        return self._take() if self._chunk else None

    def _take(self) -> list[str]:
        chunk, self._chunk = self._chunk, []
        self.swept += len(chunk)
        return chunk
