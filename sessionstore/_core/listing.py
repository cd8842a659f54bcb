"""Admin listings: a tenant's live sessions, newest first, within a fixed budget per page.

A tenant's sessions are spread over its buckets (keys.py). A page asks every bucket, in one
pipelined round, for the positions of a few of its newest live sessions below the cursor
(``page.lua``, which drops whatever has ended as it goes); a bucket that may hold more
reports how far down it looked. Sessions newer than every such bucket's *frontier* are
complete. Buckets that could still hold one of the page's sessions are asked again; then
one last round reads the sessions that make the page (plain HMGETs, nothing else is read
whole). If the rounds are not enough (a bucket full of sessions that ended unseen), the page
ends early with ``hasMore`` and a cursor at the frontier, so the next page continues from
there. A page therefore costs at most ``MAX_ROUNDS`` round trips and examines at most
``(MAX_ROUNDS - 1) x buckets x (wanted + SLACK)`` index entries, whatever state Redis is in.
Listing by user reads the user's own index, the narrowest there is (at most
``max_sessions_per_user``), in one script call.
"""

from __future__ import annotations

import base64
import binascii
import re
from dataclasses import dataclass

from ..errors import InvalidCursor
from ..model import Page, Session, to_ms
from . import inputs, scripts
from .codec import VIEW, decode_view, packed_ip
from .flows import Batch, Command, Flow, ScriptCall
from .keys import KeySpace, created_at, ip_key, position, random_part, session_id_at
from .tokens import RANDOM_LEN

MAX_ROUNDS = 4
SLACK = 16  # ended sessions a bucket may drop per call beyond the live ones it was asked for
# A bucket whose matching entries are at most this many checks each one for its count, so the
# count leaves out sessions that ended out of order (a hash deleted or evicted, a shorter
# lifetime set by another process), which the sweep does not reach; a larger range counts
# its entries, less what the sweep and the page drop.
COUNT_CHECKED = 32

_CURSOR = re.compile(r"(\d{1,15}):([0-9A-Za-z]{" + str(RANDOM_LEN) + "})")


def encode_cursor(at: bytes) -> str:
    raw = f"{created_at(at)}:{at[-RANDOM_LEN:].decode()}".encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: object) -> bytes:
    """A cursor is the position (created, random part) the next page starts below."""
    if not isinstance(cursor, str) or not 0 < len(cursor) <= 128:
        raise InvalidCursor("malformed cursor")
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode("ascii")
    except (binascii.Error, UnicodeDecodeError, ValueError):
        raise InvalidCursor("malformed cursor") from None
    match = _CURSOR.fullmatch(raw)
    if match is None:
        raise InvalidCursor("malformed cursor")
    return position(int(match[1]), match[2])


@dataclass(slots=True)
class _Bucket:
    name: str
    below: bytes  # the next call starts below this position (b"": from the newest)
    done: bool = False


@dataclass(frozen=True, slots=True)
class Query:
    """A listing request, its inputs checked: what page of whose sessions."""

    tenant: str
    user_id: int | None
    ip_address: str | None
    limit: int
    below: bytes  # the page starts below this position (b"": from the newest)


def query(
    tenant: str, user_id: int | None, ip_address: str | None, limit: int, cursor: str | None
) -> Query:
    """Check a listing's inputs before anything is read (a typed error for each bad one)."""
    return Query(
        inputs.tenant(tenant),
        None if user_id is None else inputs.user_id(user_id),
        None if ip_address is None else inputs.ip_address(ip_address),
        inputs.limit(limit),
        b"" if cursor is None else decode_cursor(cursor),
    )


def user_page(wanted: Query, sessions: list[Session]) -> Page:
    """The page of one user's sessions (all of them, read from the user's index)."""
    if wanted.ip_address is not None:
        sessions = [s for s in sessions if s.ip_address == wanted.ip_address]
    ranked = sorted(((_position_of(s), s) for s in sessions), key=lambda p: p[0], reverse=True)
    after = [(at, s) for at, s in ranked if not wanted.below or at < wanted.below]
    page = after[: wanted.limit]
    more = len(after) > wanted.limit
    return Page([s for _, s in page], encode_cursor(page[-1][0]) if more else None, len(ranked))


def tenant_page(keys: KeySpace, now_ms: int, events_system: str, wanted: Query) -> Flow[Page]:
    """The page of a tenant's sessions (optionally from one IP), walked over its buckets."""
    ip = b"" if wanted.ip_address is None else ip_key(packed_ip(wanted.ip_address))
    walk = _Walk(keys, now_ms, events_system, wanted.tenant, ip)
    found, frontier, total = yield from walk.newest(wanted.limit + 1, wanted.below)
    page = found[: wanted.limit]
    if len(found) > wanted.limit:
        next_cursor: str | None = encode_cursor(page[-1][0])
    elif frontier is not None:
        next_cursor = encode_cursor(frontier)  # the budget ran out: continue below the frontier
    else:
        next_cursor = None
    return Page([session for _, session in page], next_cursor, total)


@dataclass(frozen=True, slots=True)
class _Walk:
    keys: KeySpace
    now_ms: int
    events_system: str
    tenant: str
    ip: bytes

    def newest(
        self, want: int, below: bytes
    ) -> Flow[tuple[list[tuple[bytes, Session]], bytes | None, int]]:
        """The newest ``want`` live sessions below ``below``, the frontier if incomplete, the count.

        Rounds of page.lua find positions of live sessions (cheap: no session is read whole);
        the last round reads the views of the positions that make the page, as plain HMGETs.
        """
        buckets = [_Bucket(name, below) for name in self.keys.all_buckets()]
        found: list[tuple[bytes, _Bucket]] = []
        total = 0
        wanted = -(-want // len(buckets)) + 2  # a little over each bucket's share
        asking = buckets
        for round_ in range(MAX_ROUNDS - 1):
            calls: Batch = [self._page_call(bucket, wanted, count=round_ == 0) for bucket in asking]
            for bucket, reply in zip(asking, (yield calls), strict=True):
                done, last, count, *positions = reply
                total += max(int(count), 0)
                bucket.done = bool(done)
                bucket.below = bytes(last) or bucket.below
                found += [(bytes(at), bucket) for at in positions]
            found.sort(key=lambda item: item[0], reverse=True)
            # A bucket still matters if it may hold a session newer than the want-th found.
            bar = found[want - 1][0] if len(found) >= want else b""
            asking = [bucket for bucket in buckets if not bucket.done and bucket.below > bar]
            if not asking:
                break
            wanted = want if round_ else 4 * wanted
        frontier = max((bucket.below for bucket in buckets if not bucket.done), default=None)
        if frontier is not None:
            found = [item for item in found if item[0] >= frontier]
        page = found[:want]
        ids = [session_id_at(bucket.name, at) for at, bucket in page]
        reads: Batch = [
            Command(("HMGET", self.keys.session(self.tenant, sid), *VIEW[1:])) for sid in ids
        ]
        views = (yield reads) if reads else []
        # A session that ended since its position was read is left out of the page.
        sessions = [
            (at, decode_view(sid, [b"", *view]))
            for (at, _), sid, view in zip(page, ids, views, strict=True)
            if view[0] is not None
        ]
        return sessions, frontier if len(found) < want else None, total

    def _page_call(self, bucket: _Bucket, wanted: int, *, count: bool) -> ScriptCall:
        return ScriptCall(
            scripts.PAGE,
            (self.keys.created_index(self.tenant, bucket.name),),
            (
                self.now_ms,
                self.ip,
                bucket.below,
                wanted,
                wanted + SLACK,
                COUNT_CHECKED if count else 0,
                self.events_system,
            ),
        )


def _position_of(session: Session) -> bytes:
    return position(to_ms(session.created_at), random_part(session.id))
