"""Session lifecycle events: what the scripts record, and how a tenant's events are read.

With ``StoreConfig(events=True)`` every script that changes a session appends an event to its
bucket's stream ``P:{T:bb}:e`` in the same step (lua/lib.lua: ``emit``), so there is no change
without its event and no event without its change. A user lives in one bucket, so a user's
events are in order; a tenant's are merged from its buckets by stream id, which Redis takes
from its clock. An event's id is ``<stream id>-<bucket>`` (``1764540000000-0-3f``): ordered by
time, then sequence, then bucket, and usable as a cursor.

A page of them reads at most PAGE_BUDGET stream entries, whatever the limit, the filter and
the bucket count (``read``): with a sparse filter it may stop at the budget with fewer events
than asked, even none, and a cursor past what it read.
"""

from __future__ import annotations

import heapq
import math
import re
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Final

from ..errors import InvalidActor, InvalidArgument, InvalidCursor
from ..model import from_ms, isoformat
from . import inputs
from .codec import ip_text
from .flows import Command, Flow
from .keys import KeySpace
from .kinds import EventType
from .tokens import session_id

# How long an ended session's hash outlives its end while events are on, so that the sweep
# that finds it can still say whose it was: the bound on a late session.expired (README).
GRACE: Final = timedelta(minutes=15)

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
    unknown = chosen - set(EventType.type_names())
    if unknown or not chosen:
        raise InvalidArgument(f"event types are {', '.join(EventType.type_names())}")
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
    """Events oldest first, and where the next page starts: None when nothing more is stored
    now. A page may hold fewer events than its limit (even none) and still a cursor, when its
    budget ran out on entries its filter passed over; the next page goes on from there."""

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


def script_argument(retention_ms: int | None, who: str) -> str:
    """The events argument of a script call (lua/lib.lua: events_from): events kept
    ``retention_ms``, recorded as done by ``who``; '' (``retention_ms`` None) records nothing."""
    if retention_ms is None:
        return ""
    return f"{retention_ms}:{int(GRACE.total_seconds() * 1000)}:{who}"


class Tail:
    """Where a tail of the events stands: after which event, and whether it has caught up.

    The drivers only read pages and wait; the cursor moves here, past each event as it is
    handed out and past what a page read even when it held no event, so nothing is skipped
    or repeated."""

    def __init__(self, cursor: str | None) -> None:
        self.cursor = cursor
        self.caught_up = False

    def follow(self, page: EventPage) -> Iterator[Event]:
        for event in page.data:
            yield event
            self.cursor = event.id
        if page.next_cursor is not None:
            self.cursor = page.next_cursor
        self.caught_up = page.next_cursor is None  # wait before asking again


# -- reading ------------------------------------------------------------------------------------

_Order = tuple[int, int, str]

# Stream entries one page may read, across all the buckets it reads: whatever the limit, the
# filter and the bucket count (it is above tokens.MAX_BUCKETS, so a page can always read the
# next entry of every bucket, and so always get past its cursor).
PAGE_BUDGET: Final = 2000
MAX_ROUNDS: Final = 4
# Asked of a bucket beyond its estimated need: a bounded read stops at its bound anyway, and
# what it does not read is not spent.
_MARGIN: Final = 1.25
_SLACK: Final = 1
_MIN_SHARE: Final = 4  # entries a round must be able to give each bucket it asks, on average
# Reads sent in one round trip: a round over many buckets goes in several, so that the
# async store's event loop turns to other calls between them instead of packing and parsing
# a whole round at once (another tenant's call waits for one of these steps, not a round).
BATCH: Final = 32


@dataclass(slots=True)
class _Stream:
    """One bucket's stream as a page reads it: all of it up to ``reached`` has been read."""

    bucket: str
    start: str  # XRANGE's start for the next read: just after ``reached``
    reached: _Order | None = None  # None: nothing read yet, so as far as the cursor
    more: bool = True  # it may hold entries past ``reached``
    read: int = 0  # entries this page has read of it


@dataclass(frozen=True, slots=True)
class _Read:
    stream: _Stream
    end: _Order | None  # read up to here (None: to the end of the stream)
    count: int


@dataclass(frozen=True, slots=True)
class Query:
    """An events request, its inputs checked."""

    tenant: str
    cursor: _Order | None
    limit: int
    letters: frozenset[bytes] | None  # the event types wanted, as the stream writes them
    owner: bytes | None  # the user wanted, as the stream writes it


def query(
    tenant: str,
    after: str | None,
    limit: int,
    kinds: Sequence[str] | None,
    user_id: int | None,
) -> Query:
    """Check an events request's inputs before anything is read."""
    tenant = inputs.tenant(tenant)
    limit = inputs.limit(limit)
    wanted = types(kinds)
    user = None if user_id is None else inputs.user_id(user_id)
    return Query(
        tenant,
        None if after is None else _order(after),
        limit,
        None if wanted is None else EventType.codes_of(wanted),
        None if user is None else str(user).encode(),
    )


def read(keys: KeySpace, wanted: Query) -> Flow[EventPage]:
    """Up to ``limit`` events after the cursor, oldest first, reading at most PAGE_BUDGET
    stream entries in at most MAX_ROUNDS rounds (each of one round trip per BATCH buckets).

    The first round asks every bucket for a little over its share of the page. An event is
    final once every bucket that may hold more has been read up to it: up to the lowest
    point the buckets have been read to (the frontier). So each later round asks only the
    buckets that hold the frontier back and can still contribute (read less far than the
    ``limit + 1``-th match found so far), and only up to a common level: the furthest one
    whose estimated cost (from how dense each bucket proved) fits the budget left, or that
    match. A read bounded so stops there, and what it does not read is not spent, so the
    budget goes to moving the frontier, not to entries a later page must read again.

    When the page is full, the cursor is its last event; when the budget or the rounds run
    out first, the page holds the matches up to the frontier (maybe none) and the cursor is
    the frontier, so the next page goes on from there: no event is skipped or repeated.
    No cursor: nothing more is stored now.
    """
    tenant, cursor, limit, letters, owner = (
        wanted.tenant,
        wanted.cursor,
        wanted.limit,
        wanted.letters,
        wanted.owner,
    )
    buckets = (
        [keys.bucket_of(tenant, int(owner))] if owner is not None else list(keys.all_buckets())
    )
    streams = [_Stream(b, _lower(b, cursor)) for b in buckets]
    want = limit + 1  # one more than the page, to know whether there are more
    budget = max(PAGE_BUDGET, len(streams))
    # A little over each bucket's share of the page, and at most half the budget in all.
    first = max(1, min(-(-want // len(streams)) + 2, budget // (2 * len(streams))))
    reads = [_Read(stream, None, first) for stream in streams]
    found: list[tuple[_Order, dict[bytes, bytes]]] = []  # the matching entries read
    origin: int | None = None if cursor is None else cursor[0]
    level: _Order | None = None  # the point the last fill round aimed at
    for round_ in range(MAX_ROUNDS):
        for offset in range(0, len(reads), BATCH):
            batch = reads[offset : offset + BATCH]
            replies = yield [
                Command(
                    (
                        "XRANGE",
                        keys.events(tenant, r.stream.bucket),
                        r.stream.start,
                        "+" if r.end is None else _upper(r.stream.bucket, r.end),
                        "COUNT",
                        r.count,
                    )
                )
                for r in batch
            ]
            for r, entries in zip(batch, replies, strict=True):
                stream = r.stream
                budget -= len(entries)
                stream.read += len(entries)
                for stream_id, reply in entries:
                    fields = _fields(reply)
                    if (letters is None or fields[b"t"] in letters) and (
                        owner is None or fields[b"u"] == owner
                    ):
                        found.append((_stream_order(stream_id, stream.bucket), fields))
                if len(entries) == r.count:  # full: there may be more past its last entry
                    last = entries[-1][0]
                    stream.reached = _stream_order(last, stream.bucket)
                    stream.start = "(" + (last.decode() if isinstance(last, bytes) else last)
                elif r.end is None:
                    stream.more = False  # read to its end
                else:
                    stream.reached = r.end  # read up to its bound: all of it up to there
                    stream.start = _lower(stream.bucket, r.end)
                if entries and round_ == 0 and cursor is None:
                    first_ms = _stream_order(entries[0][0], stream.bucket)[0]
                    origin = first_ms if origin is None else min(origin, first_ms)
        if origin is None:
            origin = 0  # nothing read: no bucket is left behind to plan for
        # A bucket read past the want-th match found has nothing more for this page.
        bar = heapq.nsmallest(want, found, key=_first)[-1][0] if len(found) >= want else None
        behind = [s for s in streams if s.more and (bar is None or _reached(s, cursor) < bar)]
        if not behind or budget <= 0 or round_ == MAX_ROUNDS - 1:
            break
        reads, level = _plan(behind, bar, budget, origin, cursor, level)
        if not reads:
            break
    frontier = min((_reached(s, cursor) for s in streams if s.more), default=None)
    final = sorted((item for item in found if frontier is None or item[0] <= frontier), key=_first)
    page = [_event(tenant, order, fields) for order, fields in final[:limit]]
    if len(final) > limit:
        return EventPage(page, page[-1].id)
    return EventPage(page, None if frontier is None else _id_of(frontier))


def _plan(
    behind: list[_Stream],
    bar: _Order | None,
    budget: int,
    origin: int,
    cursor: _Order | None,
    level: _Order | None,
) -> tuple[list[_Read], _Order | None]:
    """The next round's reads, asking ``budget`` entries at most in all, and the level they
    fill to.

    Buckets left short of the last round's level (their estimate was low) are filled up to
    it first, alone. Else the target is the furthest point a bucket still in play has been
    read to, or the bar if that comes first, and the buckets short of it are filled towards
    it, no further: as far as the budget goes by their estimated need (each bucket's entries
    per millisecond so far, times the milliseconds to go, with a margin). When every bucket is
    at the target, each gets an equal share, unbounded. A round that cannot give the buckets
    it would ask MIN_SHARE entries each on average is not worth its calls: no reads.
    """
    reach = [_reached(s, cursor) for s in behind]
    if level is not None and bar is not None:
        level = min(level, bar)
    if level is not None and min(reach) < level:
        target = level
    else:
        target = max(reach) if bar is None else min(max(reach), bar)
    short = [(s, at) for s, at in zip(behind, reach, strict=True) if at < target]
    if not short:
        if budget < _MIN_SHARE * len(behind):
            return [], level
        return [_Read(s, bar, budget // len(behind)) for s in behind], level
    if budget < _MIN_SHARE * len(short):
        # Not worth a round for all of them: only what holds the frontier back, a few each.
        short = sorted(short, key=lambda item: item[1])[: budget // _MIN_SHARE]
        if not short:
            return [], level
        return [_Read(s, target, budget // len(short)) for s, _ in short], level
    rates = [s.read / max(1, at[0] - origin) for s, at in short]

    def counts(ms: int) -> list[int]:  # to read every entry before the millisecond
        return [
            math.ceil(_MARGIN * rate * (ms - at[0])) + _SLACK if at[0] < ms else 0
            for (_, at), rate in zip(short, rates, strict=True)
        ]

    needs = counts(target[0] + 1)
    if sum(needs) <= budget:
        return [_Read(s, target, n) for (s, _), n in zip(short, needs, strict=True)], target
    low = min(_fill_level([at[0] for _, at in short], rates, budget), target[0])
    if low > min(at[0] for _, at in short):
        fill: _Order = (low, 0, "00")  # before every entry of that millisecond
        needs = counts(low)
        return [
            _Read(s, fill, n) for (s, at), n in zip(short, needs, strict=True) if at < fill
        ], fill
    # Not one more millisecond for each: an equal share, the least read first.
    lagging = [s for s, _ in sorted(short, key=lambda item: item[1])]
    return [_Read(s, target, budget // len(lagging)) for s in lagging], level


def _fill_level(starts: list[int], rates: list[float], budget: int) -> int:
    """The highest millisecond L at which the buckets' estimated need to read everything
    before L (``_MARGIN * rate * (L - start) + _SLACK``, rounded up, for each bucket that
    starts before L) fits the budget; ``min(starts)`` if none above it does.

    The need is piecewise linear in L, one piece between consecutive starts: walk the pieces
    in order, with the sums of the buckets already short, and solve the first that fills."""
    best = min(starts)
    total_rate = total_rate_start = 0.0
    ordered = sorted(zip(starts, rates, strict=True))
    for k, (start, rate) in enumerate(ordered, 1):
        total_rate += _MARGIN * rate
        total_rate_start += _MARGIN * rate * start
        # Rounding up adds less than one entry a bucket: count it as one.
        fits = math.floor((budget - (_SLACK + 1) * k + total_rate_start) / total_rate)
        if fits <= start:
            break
        after = ordered[k][0] if k < len(ordered) else fits
        best = min(fits, after)
        if fits <= after:
            break
    return best


def _first(item: tuple[_Order, Any]) -> _Order:
    return item[0]


def _reached(stream: _Stream, cursor: _Order | None) -> _Order:
    """How far the stream has been read: its last entry, or the cursor when not read yet."""
    if stream.reached is not None:
        return stream.reached
    return cursor if cursor is not None else (-1, -1, "")


def newest(keys: KeySpace, tenant: str) -> Flow[str | None]:
    """The id of the newest event of the tenant, a cursor for "only what comes next"."""
    buckets = keys.all_buckets()
    replies = yield [
        Command(("XREVRANGE", keys.events(tenant, b), "+", "-", "COUNT", 1)) for b in buckets
    ]
    last = [
        _stream_order(entries[0][0], b)
        for b, entries in zip(buckets, replies, strict=True)
        if entries
    ]
    return _id_of(max(last)) if last else None


def _fields(reply: Any) -> dict[bytes, bytes]:
    # A pipelined reply is a dict; one read unparsed (connection.run_raw) is a flat list.
    if isinstance(reply, dict):
        return reply
    return dict(zip(reply[::2], reply[1::2], strict=True))


def _event(tenant: str, order: _Order, fields: dict[bytes, bytes]) -> Event:
    owner = fields[b"u"]
    reason = fields[b"r"]
    return Event(
        id=_id_of(order),
        type=EventType.coded(fields[b"t"]).type_name,
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


def _upper(bucket: str, bound: _Order) -> str:
    """XRANGE's end for a bucket: up to the bound in (time, sequence, bucket), inclusive."""
    ms, sequence, at_bucket = bound
    return f"{ms}-{sequence}" if bucket <= at_bucket else f"({ms}-{sequence}"


def _lower(bucket: str, frontier: _Order | None) -> str:
    """XRANGE's start for a bucket: strictly after the frontier in (time, sequence, bucket)."""
    if frontier is None:
        return "-"
    ms, sequence, at_bucket = frontier
    return f"{ms}-{sequence}" if bucket > at_bucket else f"({ms}-{sequence}"
