"""The floors of the listing measures: what a store without indexes does, with SCAN.

Such a store finds a user's sessions by scanning the whole keyspace with MATCH for keys named
after the user, and pages through a tenant (or an IP address's sessions) with the SCAN cursor
itself (in no useful order: the store's own pages are newest first, so these floors flatter
the naive way). The store's own keys do not name the user (keys.py), so the per-user floors
write keys of their own, ``<prefix>:naive:<tenant>:<user id>:<session id>``: hashes of the
very fields the store writes (codec.py). The paging floors read the store's session hashes.
Every floor decodes with the store's codec, so only the way of finding differs.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from sessionstore._core.codec import VIEW, decode_view, packed_ip, session_fields
from sessionstore.model import Session

SCAN_COUNT = 1000
WRITE_BATCH = 1000


def user_key(prefix: str, tenant: str, user_id: int, session_id: str) -> str:
    """Where the naive store keeps a session: its user in the name, so MATCH can find it."""
    return f"{prefix}:naive:{tenant}:{user_id}:{session_id}"


def user_pattern(prefix: str, tenant: str, user_id: int) -> str:
    return user_key(prefix, tenant, user_id, "*")


def save(client: Any, prefix: str, tenant: str, sessions: Iterable[Session]) -> int:
    """Write sessions as the naive store does: one hash each (the store's fields) and a TTL."""
    written = 0
    pipe = client.pipeline(transaction=False)
    for session in sessions:
        expires = round(session.expires_at.timestamp() * 1000)
        key = user_key(prefix, tenant, session.user_id, session.id)
        pipe.execute_command("HSET", key, "h", bytes(32), *session_fields(session, expires))
        pipe.execute_command("PEXPIREAT", key, expires)
        written += 1
        if written % WRITE_BATCH == 0:
            pipe.execute()
            pipe = client.pipeline(transaction=False)
    pipe.execute()
    return written


def list_user(client: Any, pattern: str) -> list[Session]:
    """SCAN MATCH one user's session keys, read them, newest activity first."""
    keys = list(client.scan_iter(match=pattern, count=SCAN_COUNT))
    sessions = _read(client, keys)
    sessions.sort(key=lambda session: session.last_active_at, reverse=True)
    return sessions


def revoke_all(client: Any, pattern: str) -> int:
    """SCAN MATCH one user's session keys and DEL them."""
    deleted = 0
    for keys in _scan_batches(client, pattern):
        if keys:
            deleted += client.delete(*keys)
    return deleted


def _scan_batches(client: Any, pattern: str) -> Iterator[list[bytes]]:
    cursor = None
    while cursor != 0:
        cursor, keys = client.scan(cursor or 0, match=pattern, count=SCAN_COUNT)
        yield keys


def _read(client: Any, keys: list[bytes]) -> list[Session]:
    pipe = client.pipeline(transaction=False)
    for key in keys:
        pipe.hmget(key, VIEW)
    # The key stands in for the session id: the floor has no need to parse it back.
    return [
        decode_view(key.decode(), view)
        for key, view in zip(keys, pipe.execute(), strict=True)
        if view[0] is not None
    ]


@dataclass(frozen=True, slots=True)
class ScanPosition:
    """Where a SCAN-paged listing stands: the SCAN cursor and keys found but not yet shown."""

    cursor: int = 0
    pending: tuple[bytes, ...] = ()
    started: bool = False

    @property
    def exhausted(self) -> bool:
        return self.started and self.cursor == 0 and not self.pending


def page(
    client: Any,
    pattern: str,
    position: ScanPosition,
    limit: int,
    *,
    ip_address: str | None = None,
) -> tuple[list[Session], ScanPosition]:
    """The next ``limit`` sessions from ``position`` (of one IP address, if given)."""
    found = list(position.pending)
    cursor, started = position.cursor, position.started
    while len(found) < limit and not (started and cursor == 0):
        cursor, keys = client.scan(cursor, match=pattern, count=SCAN_COUNT)
        started = True
        found += keys if ip_address is None else _at_address(client, keys, ip_address)
    shown, rest = found[:limit], tuple(found[limit:])
    return _read(client, shown), ScanPosition(cursor, rest, started)


def _at_address(client: Any, keys: list[bytes], ip_address: str) -> list[bytes]:
    if not keys:
        return []
    pipe = client.pipeline(transaction=False)
    for key in keys:
        pipe.hget(key, "ip")  # the address field of the session hash, packed (codec.py)
    wanted = packed_ip(ip_address)
    return [key for key, ip in zip(keys, pipe.execute(), strict=True) if ip == wanted]
