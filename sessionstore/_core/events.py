"""Session lifecycle events: what the scripts record, and how a tenant's events are read.

With ``StoreConfig(events=True)`` every script that changes a session appends an event to its
bucket's stream ``P:{T:bb}:e`` in the same step (lua/lib.lua: ``emit``), so there is no change
without its event and no event without its change. A user lives in one bucket, so a user's
events are in order; a tenant's are merged from its buckets by stream id, which Redis takes
from its clock. An event's id is ``<stream id>-<bucket>`` (``1764540000000-0-3f``): ordered by
time, then sequence, then bucket, and usable as a cursor.

A page of them reads at most PAGE_BUDGET stream entries, whatever the limit, the filter and
the bucket count (``read``): with a sparse filter it may stop at the budget with fewer events
than asked, even none, and a cursor past what it read. It reads oldest first after a cursor
(``after``) or newest first before one (``before``), with the same budget either way; the
filters (type, user, IP address, session) are checked on each entry read, so a filter never
makes a page read more, only find less.
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
from .codec import ip_text, packed_ip
from .flows import Command, Flow
from .keys import KeySpace
from .kinds import EventType
from .tokens import BASE36, BUCKET, RANDOM, session_id

# How long an ended session's hash outlives its end while events are on, so that the sweep
# that finds it can still say whose it was: the bound on a late session.expired (README).
GRACE: Final = timedelta(minutes=15)

_ACTOR = re.compile(r"[A-Za-z0-9_.:@-]{1,64}")
# An event id: <stream id time>-<sequence>-<bucket>, as a cursor takes it.
EVENT_ID: Final = re.compile(r"([0-9]{1,15})-([0-9]{1,19})-([0-9a-z]{2})")


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
    """Events in the order asked for (oldest first, or newest first), and where the next page
    starts, further that way: pass it as ``after`` (oldest first) or ``before`` (newest first).
    None when nothing more is stored that way now. A page may hold fewer events than its limit
    (even none) and still a cursor, when its budget ran out on entries its filter passed over;
    the next page goes on from there."""

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
# Below every position a page can reach, either way (a stream id's time has at most 15 digits).
_NOWHERE: Final[_Order] = (-(10**16), 0, "")

ORDERS: Final = ("asc", "desc")


@dataclass(frozen=True, slots=True)
class _Direction:
    """Which way a page reads, and where that puts each entry.

    A page works in *positions*: (time, sequence, bucket rank) tuples that grow the way it
    reads, so one algorithm (``read``, ``_plan``) reads both ways. Oldest first, a position
    is the entry's own (time, sequence, bucket). Newest first, each part is mirrored: the time
    and the sequence negated (the sequence from 10^19 - 1, so that a mirrored id keeps an
    event id's 19 digits), the bucket's base36 digits read backwards (``z`` for ``0``), so the
    merge's tie-break by bucket reverses too and a page is the exact reverse of the other way.
    """

    command: str  # XRANGE or XREVRANGE: each reads from its start argument to its end
    whole_start: str  # the start argument that means "from the first entry this way"
    whole_end: str
    descending: bool

    def rank(self, bucket: str) -> str:
        return bucket.translate(_MIRROR) if self.descending else bucket

    def position(self, order: _Order) -> _Order:
        """Where an entry at ``order`` (time, sequence, bucket) sits in this reading."""
        if not self.descending:
            return order
        ms, sequence, bucket = order
        return -ms, _SEQUENCE_MIRROR - sequence, bucket.translate(_MIRROR)

    def order(self, position: _Order) -> _Order:
        """The (time, sequence, bucket) of a position: the inverse of ``position``."""
        return self.position(position)  # mirroring twice is the identity

    def stream_id(self, position: _Order) -> str:
        ms, sequence, _ = self.order(position)
        return f"{ms}-{sequence}"

    def lower(self, rank: str, frontier: _Order | None) -> str:
        """The read's start for a bucket: just past the frontier, in this reading."""
        if frontier is None:
            return self.whole_start
        text = self.stream_id(frontier)
        return text if rank > frontier[2] else "(" + text

    def upper(self, rank: str, bound: _Order) -> str:
        """The read's end for a bucket: up to the bound, inclusive, in this reading."""
        text = self.stream_id(bound)
        return text if rank <= bound[2] else "(" + text


_MIRROR: Final = str.maketrans(BASE36, BASE36[::-1])
_SEQUENCE_MIRROR: Final = 10**19 - 1
_FORWARD: Final = _Direction("XRANGE", "-", "+", descending=False)
_BACKWARD: Final = _Direction("XREVRANGE", "+", "-", descending=True)


@dataclass(slots=True)
class _Stream:
    """One bucket's stream as a page reads it: all of it up to ``reached`` has been read."""

    bucket: str
    rank: str  # the bucket as the page's positions order it (_Direction.rank)
    start: str  # the read's start for the next read: just past ``reached``
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
    """An events request, its inputs checked: each filter as the stream writes it."""

    tenant: str
    cursor: _Order | None  # the event to read on from, after it or before it
    limit: int
    letters: frozenset[bytes] | None  # the event types wanted
    owner: bytes | None  # the user wanted
    descending: bool = False  # newest first (a ``before`` cursor)
    address: bytes | None = None  # the IP address wanted, packed
    session: tuple[str, bytes] | None = None  # the session wanted: (bucket, random part)

    def wants(self, fields: dict[bytes, bytes]) -> bool:
        """Whether an entry passes every filter."""
        return (
            (self.letters is None or fields[b"t"] in self.letters)
            and (self.owner is None or fields[b"u"] == self.owner)
            and (self.address is None or fields[b"ip"] == self.address)
            and (self.session is None or fields[b"s"] == self.session[1])
        )

    def buckets(self, keys: KeySpace) -> list[str]:
        """The buckets that can hold a wanted event: a user's or a session's one, else all."""
        chosen = list(keys.all_buckets())
        if self.owner is not None:
            chosen = [keys.bucket_of(self.tenant, int(self.owner))]
        if self.session is not None:
            chosen = [bucket for bucket in chosen if bucket == self.session[0]]
        return chosen


def query(
    tenant: str,
    after: str | None,
    limit: int,
    kinds: Sequence[str] | None,
    user_id: int | None,
    *,
    before: str | None = None,
    order: str = "asc",
    ip_address: str | None = None,
    session: str | None = None,
) -> Query:
    """Check an events request's inputs before anything is read.

    ``order`` is ``asc`` (oldest first, on from ``after``) or ``desc`` (newest first, back
    from ``before``); each takes only its own cursor. ``ip_address`` is normalised as the
    sessions list's filter is (IPv4-mapped IPv6 is IPv4)."""
    tenant = inputs.tenant(tenant)
    limit = inputs.limit(limit)
    if order not in ORDERS:
        raise InvalidArgument("order must be asc (oldest first) or desc (newest first)")
    descending = order == "desc"
    if descending and after is not None:
        raise InvalidArgument("a newest-first page reads back from before=, not after=")
    if not descending and before is not None:
        raise InvalidArgument("before= pages newest first: give order=desc with it")
    cursor = before if descending else after
    wanted = types(kinds)
    user = None if user_id is None else inputs.user_id(user_id)
    address = None if ip_address is None else packed_ip(inputs.ip_address(ip_address))
    if session is not None:
        session = inputs.session_id(session)
    return Query(
        tenant,
        None if cursor is None else _order(cursor),
        limit,
        None if wanted is None else EventType.codes_of(wanted),
        None if user is None else str(user).encode(),
        descending,
        address,
        None if session is None else (session[BUCKET], session[RANDOM].encode()),
    )


def read(keys: KeySpace, wanted: Query) -> Flow[EventPage]:
    """Up to ``limit`` events past the cursor (after it oldest first, before it newest
    first), reading at most PAGE_BUDGET stream entries in at most MAX_ROUNDS rounds (each of
    one round trip per BATCH buckets). Newest first reads each bucket with XREVRANGE, in
    mirrored positions (_Direction): the same rounds, budget and cursors, the other way.

    The first round asks every bucket for a little over its share of the page. An event is
    final once every bucket that may hold more has been read up to it: up to the lowest
    point the buckets have been read to (the frontier). So each later round asks only the
    buckets that hold the frontier back and can still contribute (read less far than the
    ``limit + 1``-th match found so far), and only up to a common level: the furthest one
    whose estimated cost (from how dense each bucket proved) fits the budget left, or that
    match. A read bounded so stops there, and what it does not read is not spent, so the
    budget goes to moving the frontier, not to entries a later page must read again. The last
    round keeps nothing back: what is left goes to the buckets short of that match.

    When the page is full, the cursor is its last event; when the budget or the rounds run
    out first, the page holds the matches up to the frontier (maybe none) and the cursor is
    the frontier, so the next page goes on from there: no event is skipped or repeated.
    No cursor: nothing more is stored now.
    """
    way = _BACKWARD if wanted.descending else _FORWARD
    tenant, limit = wanted.tenant, wanted.limit
    cursor = None if wanted.cursor is None else way.position(wanted.cursor)
    streams = [
        _Stream(b, way.rank(b), way.lower(way.rank(b), cursor)) for b in wanted.buckets(keys)
    ]
    if not streams:  # a session of a bucket the user's is not: nothing can match
        return EventPage([], None)
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
                        way.command,
                        keys.events(tenant, r.stream.bucket),
                        r.stream.start,
                        way.whole_end if r.end is None else way.upper(r.stream.rank, r.end),
                        "COUNT",
                        r.count,
                    )
                )
                for r in batch
            ]
            for r, entries in zip(batch, replies, strict=True):
                budget -= len(entries)
                found += _take(way, wanted, r, entries)
                if entries and round_ == 0 and cursor is None:
                    first_ms = _position(way, entries[0][0], r.stream)[0]
                    origin = first_ms if origin is None else min(origin, first_ms)
        if origin is None:
            origin = 0  # nothing read: no bucket is left behind to plan for
        # A bucket read past the want-th match found has nothing more for this page.
        bar = heapq.nsmallest(want, found, key=_first)[-1][0] if len(found) >= want else None
        behind = [s for s in streams if s.more and (bar is None or _reached(s, cursor) < bar)]
        if not behind or budget <= 0 or round_ == MAX_ROUNDS - 1:
            break
        if round_ == MAX_ROUNDS - 2:
            reads = _last_round(behind, bar, budget, cursor)
        else:
            reads, level = _plan(behind, bar, budget, origin, cursor, level)
        if not reads:
            break
    frontier = min((_reached(s, cursor) for s in streams if s.more), default=None)
    final = sorted((item for item in found if frontier is None or item[0] <= frontier), key=_first)
    page = [_event(tenant, way.order(at), fields) for at, fields in final[:limit]]
    if len(final) > limit:
        return EventPage(page, page[-1].id)
    return EventPage(page, None if frontier is None else _id_of(way.order(frontier)))


def _take(
    way: _Direction, wanted: Query, r: _Read, entries: list[Any]
) -> list[tuple[_Order, dict[bytes, bytes]]]:
    """The matching entries of one read's reply, at their positions; and its stream moved on
    to where the read got to."""
    stream = r.stream
    stream.read += len(entries)
    matches = []
    for stream_id, reply in entries:
        fields = _fields(reply)
        if wanted.wants(fields):
            matches.append((_position(way, stream_id, stream), fields))
    if len(entries) == r.count:  # full: there may be more past its last entry
        last = entries[-1][0]
        stream.reached = _position(way, last, stream)
        stream.start = "(" + (last.decode() if isinstance(last, bytes) else last)
    elif r.end is None:
        stream.more = False  # read to its end
    else:
        stream.reached = r.end  # read up to its bound: all of it up to there
        stream.start = way.lower(stream.rank, r.end)
    return matches


def _plan(
    behind: list[_Stream],
    bar: _Order | None,
    budget: int,
    origin: int,
    cursor: _Order | None,
    level: _Order | None,
) -> tuple[list[_Read], _Order | None]:
    """The next round's reads, asking ``budget`` entries at most in all, and the level they
    fill to (positions and times as the page reads: _Direction).

    Buckets left short of the last round's level (their estimate was low) are filled up to
    it first, alone. Else the target is the furthest point a bucket still in play has been
    read to, or the bar if that comes first, and the buckets short of it are filled towards
    it, no further: as far as the budget goes by their estimated need (each bucket's entries
    per millisecond so far, times the milliseconds to go, with a margin; exactly, from the
    sequence numbers, within the target's millisecond). When every bucket is at the target,
    each gets an equal share, unbounded. A round that cannot give the buckets it would ask
    MIN_SHARE entries each on average is not worth its calls: no reads.
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

    # Within one millisecond a stream's sequence numbers count its entries one by one (XADD
    # numbers them so), so a bucket in the target's millisecond needs exactly the difference:
    # a burst (a bulk revocation writes hundreds of events in one millisecond) is read in one
    # round, either way, instead of by estimates that grow a quarter a round.
    needs = [
        target[1] - at[1] + _SLACK if at[0] == target[0] else need
        for (_, at), need in zip(short, counts(target[0] + 1), strict=True)
    ]
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


def _last_round(
    behind: list[_Stream], bar: _Order | None, budget: int, cursor: _Order | None
) -> list[_Read]:
    """The last round's reads: no round comes after it to keep budget for, so all of it goes
    to the buckets that hold the frontier back, in equal shares, each read bounded at the bar
    (with no bar yet, at the furthest bucket), so none reads past what the page can use; the
    least read first when there is too little for all. With every bucket as far as the
    furthest, each gets its share unbounded, as in ``_plan``."""
    reach = [_reached(s, cursor) for s in behind]
    end = bar if bar is not None else max(reach)
    short = sorted(
        ((s, at) for s, at in zip(behind, reach, strict=True) if at < end),
        key=lambda item: item[1],
    )[: max(1, budget // _MIN_SHARE)]
    if short:
        return [_Read(s, end, budget // len(short)) for s, _ in short]
    if budget < len(behind):
        return []
    return [_Read(s, bar, budget // len(behind)) for s in behind]


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
    return cursor if cursor is not None else _NOWHERE


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


def _position(way: _Direction, stream_id: bytes | str, stream: _Stream) -> _Order:
    """Where a stream's entry sits in the page's reading."""
    return way.position(_stream_order(stream_id, stream.bucket))


def _stream_order(stream_id: bytes | str, bucket: str) -> _Order:
    text = stream_id.decode() if isinstance(stream_id, bytes) else stream_id
    ms, _, sequence = text.partition("-")
    return int(ms), int(sequence), bucket


def _id_of(order: _Order) -> str:
    return f"{order[0]}-{order[1]}-{order[2]}"


def _order(cursor: object) -> _Order:
    match = EVENT_ID.fullmatch(cursor) if isinstance(cursor, str) else None
    if match is None:
        raise InvalidCursor("not an event id of this store")
    return int(match[1]), int(match[2]), match[3]
