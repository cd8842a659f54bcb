"""What never changes in a session, remembered by each process for the hot path.

A session's id, owner, IP, user agent, device, location, auth method, creation time and the
hash of its secret are written once at creation; only its MOVING fields (codec.py) change.
A process reads a session it has not seen whole (``HMGET`` of every field, beside its user
index entry); once it has validated it, it keeps those fixed parts, so the next validations
read just what can change and the user index entry that says the session is still live: two
plain commands in one round trip, no script, and a smaller reply than the whole hash.

Nothing here can make a revoked session pass: liveness, expiry and MFA are read from Redis
on every validation. Entries are never stale (a session id is never reused), only evicted,
least recently used first, past ``capacity``: about 1.2 KB each with a browser's user agent,
of which 0.2 KB is the last reply kept for the compare (benchmarks' memory suite).
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from dataclasses import dataclass

from ..model import Session, to_ms


@dataclass(frozen=True, slots=True)
class Fixed:
    session: Session  # as last seen; its MOVING fields (codec.py) are refreshed on use
    secret_hash: bytes
    last_active_ms: int  # never ahead of Redis: activity only moves forward
    expires_ms: int
    # The MOVING reply that ``session`` was read from (None: not read yet), so the hot path
    # knows the session unchanged by comparing replies, without decoding one.
    moving: list[bytes | None] | None

    def __repr__(self) -> str:
        return f"Fixed(session_id={self.session.id!r})"


class FixedParts:
    """A bounded LRU map (tenant, session id) -> Fixed, safe to share between threads."""

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self._entries: OrderedDict[tuple[str, str], Fixed] = OrderedDict()
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, tenant: str, session_id: str) -> Fixed | None:
        with self._lock:
            fixed = self._entries.get((tenant, session_id))
            if fixed is not None:
                self._entries.move_to_end((tenant, session_id))
            return fixed

    def remember(
        self,
        tenant: str,
        session: Session,
        secret_hash: bytes,
        moving: list[bytes | None] | None = None,
    ) -> None:
        active, expires = to_ms(session.last_active_at), to_ms(session.expires_at)
        fixed = Fixed(session, secret_hash, active, expires, moving)
        with self._lock:
            self._entries[(tenant, session.id)] = fixed
            self._entries.move_to_end((tenant, session.id))
            while len(self._entries) > self.capacity:
                self._entries.popitem(last=False)

    def forget(self, tenant: str, session_id: str) -> None:
        with self._lock:
            self._entries.pop((tenant, session_id), None)
