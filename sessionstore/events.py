"""Session lifecycle events: what the scripts record, and how a tenant's events are read.

With ``StoreConfig(events=True)`` every script that changes a session appends an event to its
bucket's stream ``P:{T:bb}:e`` in the same step (lua/lib.lua: ``emit``), so there is no change
without its event and no event without its change. A user lives in one bucket, so a user's
events are in order; a tenant's are merged from its buckets by stream id, which Redis takes
from its clock. An event's id is ``<stream id>-<bucket>`` (``1764540000000-0-3f``): ordered by
time, then sequence, then bucket, and usable as a cursor.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, Final

from . import inputs
from .codec import ip_text
from .errors import InvalidActor, InvalidArgument, InvalidCursor
from .flows import Command, Flow
from .model import from_ms, isoformat
from .tokens import session_id

if TYPE_CHECKING:
    from ._core import Core

# What the scripts write (one letter, to keep each stream entry small) and what readers see.
TYPES: Final = {
    b"c": "session.created",
    b"r": "session.revoked",
    b"v": "session.evicted",
    b"x": "session.expired",
    b"m": "session.mfa_verified",
}
# How long an ended session's hash outlives its end while events are on, so that the sweep
# that finds it can still say whose it was: the bound on a late session.expired (README).
GRACE: Final = timedelta(minutes=15)
MAX_ROUNDS: Final = 4

_ACTOR = re.compile(r"[A-Za-z0-9_.:@-]{1,64}")
_EVENT_ID = re.compile(r"([0-9]{1,15})-([0-9]{1,19})-([0-9a-z]{2})")


def actor(value: object) -> str:
    """Who made a change: ``user``, ``system``, ``admin:<key id>``, or an embedding service's
    own name (1-64 characters of letters, digits and ``_.:@-``)."""
    if not isinstance(value, str) or not _ACTOR.fullmatch(value):
        raise InvalidActor("actor must be 1-64 characters of letters, digits and _.:@-")
    return value


def types(values: Iterable[str] | None) -> frozenset[str] | None:
    if values is None:
        return None
    chosen = frozenset(values)
    unknown = chosen - set(TYPES.values())
    if unknown or not chosen:
        raise InvalidArgument(f"event types are {', '.join(TYPES.values())}")
    return chosen


@dataclass(frozen=True, slots=True)
class Event:
    id: str
    type: str
    session_id: str
    user_id: int | None  # None only when the session's hash was gone before its end was seen
    ip_address: str
    actor: str
    reason: str | None
    at: datetime

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "type": self.type,
            "sessionId": self.session_id,
            "userId": self.user_id,
            "ipAddress": self.ip_address,
            "actor": self.actor,
            "reason": self.reason,
            "at": isoformat(self.at),
        }


@dataclass(frozen=True, slots=True)
class EventPage:
    data: list[Event]
    next_cursor: str | None

    @property
    def has_more(self) -> bool:
        return self.next_cursor is not None

    def to_dict(self) -> dict[str, Any]:
        return {
            "data": [event.to_dict() for event in self.data],
            "hasMore": self.has_more,
            "nextCursor": self.next_cursor,
        }


def script_argument(core: Core, who: str) -> str:
    """The events argument of a script call (lua/lib.lua: events_from); '' records nothing."""
    config = core.config
    if not config.events:
        return ""
    return f"{config.event_retention_ms}:{int(GRACE.total_seconds() * 1000)}:{who}"


# -- reading ------------------------------------------------------------------------------------

_Order = tuple[int, int, str]


def read(
    core: Core,
    tenant: str,
    after: str | None,
    limit: int,
    kinds: Sequence[str] | None,
    user_id: int | None,
) -> Flow[EventPage]:
    """Up to ``limit`` events after the cursor, oldest first, from every bucket at once.

    A round asks each bucket still in play for its next ``limit + 1`` entries in one pipeline
    and merges them; events are final only up to the lowest last id of the buckets that had
    more (the frontier). A page takes at most MAX_ROUNDS round trips; a sparse filter may then
    answer fewer events and a cursor at the frontier.
    """
    tenant = inputs.tenant(tenant)
    limit = inputs.limit(limit)
    wanted = types(kinds)
    user = None if user_id is None else inputs.user_id(user_id)
    frontier = None if after is None else _order(after)
    yield from core.check_layout()
    buckets = (
        [core.keys.bucket_of(tenant, user)] if user is not None else list(core.keys.all_buckets())
    )
    found: list[Event] = []
    for _round in range(MAX_ROUNDS):
        replies = yield [
            Command(
                (
                    "XRANGE",
                    core.keys.events(tenant, b),
                    _lower(b, frontier),
                    "+",
                    "COUNT",
                    limit + 1,
                )
            )
            for b in buckets
        ]
        merged: list[tuple[_Order, Any]] = []
        more: list[str] = []
        limits: list[_Order] = []
        for bucket, entries in zip(buckets, replies, strict=True):
            for stream_id, fields in entries:
                merged.append((_stream_order(stream_id, bucket), fields))
            if len(entries) > limit:
                more.append(bucket)
                limits.append(_stream_order(entries[-1][0], bucket))
        bound = min(limits) if limits else None
        for order, fields in sorted(merged, key=lambda item: item[0]):
            if bound is not None and order > bound:
                break
            event = _event(tenant, order, fields)
            if (wanted is None or event.type in wanted) and (user is None or event.user_id == user):
                found.append(event)
                if len(found) > limit:
                    return EventPage(found[:limit], found[limit - 1].id)
        if bound is None:
            return EventPage(found, None)
        frontier, buckets = bound, more
    return EventPage(found, _id_of(frontier)) if frontier else EventPage(found, None)


def newest(core: Core, tenant: str) -> Flow[str | None]:
    """The id of the newest event of the tenant, a cursor for "only what comes next"."""
    tenant = inputs.tenant(tenant)
    yield from core.check_layout()
    buckets = core.keys.all_buckets()
    replies = yield [
        Command(("XREVRANGE", core.keys.events(tenant, b), "+", "-", "COUNT", 1)) for b in buckets
    ]
    last = [
        _stream_order(entries[0][0], b)
        for b, entries in zip(buckets, replies, strict=True)
        if entries
    ]
    return _id_of(max(last)) if last else None


def _event(tenant: str, order: _Order, reply: Any) -> Event:
    # A pipelined reply is a dict; one read unparsed (connection.run_raw) is a flat list.
    fields = reply if isinstance(reply, dict) else dict(zip(reply[::2], reply[1::2], strict=True))
    owner = fields[b"u"]
    reason = fields[b"r"]
    return Event(
        id=_id_of(order),
        type=TYPES[fields[b"t"]],
        session_id=session_id(order[2], fields[b"s"].decode()),
        user_id=int(owner) if owner else None,
        ip_address=ip_text(fields[b"ip"]),
        actor=fields[b"a"].decode(),
        reason=reason.decode() if reason else None,
        at=from_ms(int(fields[b"at"])),
    )


def _stream_order(stream_id: bytes | str, bucket: str) -> _Order:
    text = stream_id.decode() if isinstance(stream_id, bytes) else stream_id
    ms, _, sequence = text.partition("-")
    return int(ms), int(sequence), bucket


def _id_of(order: _Order) -> str:
    return f"{order[0]}-{order[1]}-{order[2]}"


def _order(cursor: object) -> _Order:
    match = _EVENT_ID.fullmatch(cursor) if isinstance(cursor, str) else None
    if match is None:
        raise InvalidCursor("not an event id of this store")
    return int(match[1]), int(match[2]), match[3]


def _lower(bucket: str, frontier: _Order | None) -> str:
    """XRANGE's start for a bucket: strictly after the frontier in (time, sequence, bucket)."""
    if frontier is None:
        return "-"
    ms, sequence, at_bucket = frontier
    return f"{ms}-{sequence}" if bucket > at_bucket else f"({ms}-{sequence}"
