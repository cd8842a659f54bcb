"""Every decision of the store, with no I/O: the sync and async stores only run what this yields.

An operation is a generator (a *flow*) that yields batches of calls and receives their
results, as httpx's auth flows do. A batch goes to Redis in one round trip where the topology
allows it. Flows take the time from the core's clock and pass it to the scripts, so Lua never
reads the server's clock and tests can move time.
"""

from __future__ import annotations

import base64
import binascii
import re
import time
from collections.abc import Callable, Generator, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from . import inputs, scripts
from .codec import VIEW, decode_view, session_fields
from .config import StoreConfig
from .device import parse_device
from .errors import InvalidCursor, RevocationNotDurable, SessionConflict
from .geo import LocationResolver, no_location
from .keys import (
    KeySpace,
    from_tenant_member,
    from_user_member,
    tenant_member,
    user_member,
)
from .model import Page, Session, from_ms
from .scripts import Script
from .tokens import new_session, new_tag_secret, parse_token, user_tag

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class ScriptCall:
    script: Script
    keys: tuple[str, ...]
    args: tuple[Any, ...]


@dataclass(frozen=True, slots=True)
class Command:
    args: tuple[Any, ...]
    # A best-effort command (a cross-slot index hint) that Redis refuses does not fail its
    # batch: the driver hands back the error as its reply.
    best_effort: bool = False


Call = ScriptCall | Command
Batch = list[Call]
Flow = Generator[Batch, list[Any], T]


@dataclass(frozen=True, slots=True, order=True)
class Position:
    """Where a listing stands: newest first by (created ms, session id)."""

    score: int
    member: str


_CURSOR = re.compile(r"(\d{1,15}):(" + inputs.SESSION_ID.pattern + r")")


def encode_cursor(position: Position) -> str:
    raw = f"{position.score}:{position.member}".encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: object) -> Position:
    if not isinstance(cursor, str) or not 0 < len(cursor) <= 128:
        raise InvalidCursor("malformed cursor")
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode("ascii")
    except (binascii.Error, UnicodeDecodeError, ValueError):
        raise InvalidCursor("malformed cursor") from None
    match = _CURSOR.fullmatch(raw)
    if match is None:
        raise InvalidCursor("malformed cursor")
    return Position(int(match[1]), match[2])


class Core:
    """Builds the calls of every store operation and interprets their replies."""

    def __init__(
        self,
        config: StoreConfig,
        *,
        location_resolver: LocationResolver | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.config = config
        self.keys = KeySpace(config.prefix, config.tenant_buckets)
        self.resolve_location = location_resolver or no_location
        self.clock = clock
        self.tag_secret = config.tag_secret

    def __repr__(self) -> str:
        return f"Core(prefix={self.config.prefix!r})"

    def now_ms(self) -> int:
        return int(self.clock() * 1000)

    # -- the hot path: one script call, no flow machinery ---------------------------------

    def validate_call(self, tenant: str, token: object) -> tuple[ScriptCall, str] | None:
        """The validate script call and the session id it asks about; None for junk tokens."""
        tenant = inputs.tenant(tenant)
        parsed = parse_token(token)
        if parsed is None:
            return None
        sid = parsed.session_id
        config = self.config
        call = ScriptCall(
            scripts.VALIDATE,
            (self.keys.session(tenant, sid), self.keys.user_index_of(tenant, sid)),
            (
                self.now_ms(),
                user_member(sid),
                parsed.secret_hash,
                config.touch_interval_ms,
                config.idle_timeout_ms,
            ),
        )
        return call, sid

    @staticmethod
    def validated(session_id: str, reply: list[bytes] | None) -> Session | None:
        return None if reply is None else decode_view(session_id, reply)

    # -- flows ------------------------------------------------------------------------------

    def create(
        self,
        tenant: str,
        user_id: int,
        *,
        ip_address: str,
        user_agent: str,
        auth_method: str,
        mfa_verified: bool,
    ) -> Flow[tuple[Session, str]]:
        tenant = inputs.tenant(tenant)
        user_id = inputs.user_id(user_id)
        ip_address = inputs.ip_address(ip_address)
        user_agent = inputs.user_agent(user_agent)
        auth_method = inputs.auth_method(auth_method)
        if not isinstance(mfa_verified, bool):
            raise inputs.InvalidArgument("mfa_verified must be a bool")
        secret = yield from self._tag_secret()
        tag = user_tag(secret, tenant, user_id)
        config = self.config
        for _attempt in range(3):
            session_id, token, secret_hash = new_session(tag)
            now = self.now_ms()
            absolute = now + config.lifetime_ms
            expires = (
                absolute if not config.idle_timeout else min(absolute, now + config.idle_timeout_ms)
            )
            session = Session(
                id=session_id,
                user_id=user_id,
                ip_address=ip_address,
                user_agent=user_agent,
                device=parse_device(user_agent),
                location=self.resolve_location(ip_address),
                auth_method=auth_method,  # type: ignore[arg-type]
                mfa_verified=mfa_verified,
                created_at=from_ms(now),
                last_active_at=from_ms(now),
                expires_at=from_ms(expires),
            )
            create = ScriptCall(
                scripts.CREATE,
                (self.keys.session(tenant, session_id), self.keys.user_index(tenant, tag)),
                (
                    now,
                    expires,
                    user_member(session_id),
                    config.max_sessions_per_user,
                    secret_hash,
                    *session_fields(session, absolute),
                ),
            )
            replies = yield [create, *self._index_calls(tenant, session, now, absolute)]
            if replies[0][0] != -1:
                return session, token
        raise SessionConflict("could not draw an unused session id")

    def _index_calls(self, tenant: str, session: Session, now: int, absolute: int) -> Batch:
        """Cross-slot indexes: written beside the script, best effort, idempotent."""
        oldest = now - self.config.lifetime_ms
        ip_key = self.keys.ip_index(tenant, session.ip_address)
        bucket = self.keys.tenant_bucket_of(tenant, session.id)
        cap = self.config.max_sessions_per_ip
        member = tenant_member(session.id)
        return [
            Command(("ZADD", ip_key, now, member), best_effort=True),
            Command(("ZREMRANGEBYSCORE", ip_key, "-inf", oldest), best_effort=True),
            Command(("ZREMRANGEBYRANK", ip_key, 0, -cap - 1), best_effort=True),
            Command(("PEXPIREAT", ip_key, absolute), best_effort=True),
            Command(("ZADD", bucket, now, member), best_effort=True),
            Command(("ZREMRANGEBYSCORE", bucket, "-inf", oldest), best_effort=True),
            Command(("PEXPIREAT", bucket, absolute), best_effort=True),
        ]

    def get(self, tenant: str, session_id: str) -> Flow[Session | None]:
        tenant = inputs.tenant(tenant)
        session_id = inputs.session_id(session_id)
        call = ScriptCall(
            scripts.READ,
            (self.keys.session(tenant, session_id), self.keys.user_index_of(tenant, session_id)),
            (self.now_ms(), user_member(session_id)),
        )
        (reply,) = yield [call]
        return None if reply is None else decode_view(session_id, reply)

    def list_user_sessions(self, tenant: str, user_id: int) -> Flow[list[Session]]:
        """The user's live sessions, most recently active first."""
        sessions = yield from self._user_sessions(tenant, user_id)
        sessions.sort(key=lambda s: (s.last_active_at, s.id), reverse=True)
        return sessions

    def _user_sessions(self, tenant: str, user_id: int) -> Flow[list[Session]]:
        tenant = inputs.tenant(tenant)
        user_id = inputs.user_id(user_id)
        secret = yield from self._tag_secret()
        tag = user_tag(secret, tenant, user_id)
        index = self.keys.user_index(tenant, tag)
        (reply,) = yield [ScriptCall(scripts.LIST_USER, (index,), (self.now_ms(),))]
        sessions = [
            decode_view(from_user_member(tag, member.decode()), flat)
            for member, flat in zip(reply[::2], reply[1::2], strict=True)
        ]
        # A tag is 52 bits of an HMAC: keep out the rare other user who shares it.
        return [session for session in sessions if session.user_id == user_id]

    def revoke(self, tenant: str, user_id: int, session_id: str) -> Flow[bool]:
        tenant = inputs.tenant(tenant)
        user_id = inputs.user_id(user_id)
        session_id = inputs.session_id(session_id)
        call = ScriptCall(
            scripts.REVOKE,
            (self.keys.session(tenant, session_id), self.keys.user_index_of(tenant, session_id)),
            (self.now_ms(), user_member(session_id), user_id),
        )
        reply = yield from self._durably(call)
        if reply[0] != 1:
            return False
        yield self._unindex_calls(tenant, [(session_id, reply[1].decode())])
        return True

    def revoke_all(
        self, tenant: str, user_id: int, *, except_session_id: str | None = None
    ) -> Flow[int]:
        tenant = inputs.tenant(tenant)
        user_id = inputs.user_id(user_id)
        keep = (
            "" if except_session_id is None else user_member(inputs.session_id(except_session_id))
        )
        secret = yield from self._tag_secret()
        tag = user_tag(secret, tenant, user_id)
        index = self.keys.user_index(tenant, tag)
        reply = yield from self._durably(
            ScriptCall(scripts.REVOKE_ALL, (index,), (self.now_ms(), keep))
        )
        revoked = [
            (from_user_member(tag, member.decode()), ip.decode())
            for member, ip in zip(reply[1::2], reply[2::2], strict=True)
        ]
        if revoked:
            yield self._unindex_calls(tenant, revoked)
        return int(reply[0])

    def _durably(self, revocation: ScriptCall) -> Flow[Any]:
        """Run a revocation; with ``revoke_replicas``, WAIT for replicas on the same connection."""
        replicas = self.config.revoke_replicas
        if not replicas:
            (reply,) = yield [revocation]
            return reply
        timeout = int(self.config.revoke_replica_timeout.total_seconds() * 1000)
        reply, acknowledged = yield [revocation, Command(("WAIT", replicas, timeout))]
        if int(acknowledged) < replicas:
            raise RevocationNotDurable(
                f"revocation reached {acknowledged} of {replicas} replicas in {timeout} ms"
            )
        return reply

    def _unindex_calls(self, tenant: str, revoked: Sequence[tuple[str, str]]) -> Batch:
        """Drop revoked sessions from the cross-slot indexes: one ZREM per index key."""
        members: dict[str, list[str]] = {}
        for session_id, ip_address in revoked:
            member = tenant_member(session_id)
            members.setdefault(self.keys.ip_index(tenant, ip_address), []).append(member)
            members.setdefault(self.keys.tenant_bucket_of(tenant, session_id), []).append(member)
        return [Command(("ZREM", key, *names), best_effort=True) for key, names in members.items()]

    def update(self, tenant: str, session_id: str, *, mfa_verified: bool) -> Flow[bool]:
        tenant = inputs.tenant(tenant)
        session_id = inputs.session_id(session_id)
        call = ScriptCall(
            scripts.UPDATE,
            (self.keys.session(tenant, session_id), self.keys.user_index_of(tenant, session_id)),
            (self.now_ms(), user_member(session_id), "m", 1 if mfa_verified else 0),
        )
        (reply,) = yield [call]
        return bool(reply)

    def list_sessions(
        self,
        tenant: str,
        *,
        user_id: int | None = None,
        ip_address: str | None = None,
        limit: int = 100,
        cursor: str | None = None,
    ) -> Flow[Page]:
        """Live sessions of a tenant, newest first, by keyset pagination on (created, id)."""
        tenant = inputs.tenant(tenant)
        limit = inputs.limit(limit)
        if user_id is not None:
            user_id = inputs.user_id(user_id)
        if ip_address is not None:
            ip_address = inputs.ip_address(ip_address)
        after = None if cursor is None else decode_cursor(cursor)
        if ip_address is None and user_id is not None:
            sessions = yield from self._user_sessions(tenant, user_id)
            ranked = sorted(
                ((Position(_ms(s.created_at), s.id), s) for s in sessions), reverse=True
            )
            found = [s for position, s in ranked if after is None or position < after]
        else:
            sources = (
                self.keys.tenant_buckets(tenant)
                if ip_address is None
                else [self.keys.ip_index(tenant, ip_address)]
            )
            found = yield from self._walk(tenant, sources, user_id, limit + 1, after)
        page = found[:limit]
        more = len(found) > limit
        next_cursor = (
            encode_cursor(Position(_ms(page[-1].created_at), page[-1].id)) if more else None
        )
        return Page(page, next_cursor)

    def _walk(
        self,
        tenant: str,
        sources: list[str],
        user_id: int | None,
        want: int,
        after: Position | None,
    ) -> Flow[list[Session]]:
        """Merge the sources newest first from ``after`` until ``want`` live sessions are found."""
        now = self.now_ms()
        oldest = now - self.config.lifetime_ms
        found: list[Session] = []
        while len(found) < want:
            need = want - len(found)
            candidates, exhausted = yield from self._candidates(sources, oldest, need, after)
            if not candidates:
                break
            live = yield from self._load(tenant, [member for _, member, _ in candidates], now)
            stale: Batch = []
            for (_, member, source), session in zip(candidates, live, strict=True):
                if session is None:
                    stale.append(Command(("ZREM", source, tenant_member(member)), best_effort=True))
                elif user_id is None or session.user_id == user_id:
                    found.append(session)
            if stale:
                yield stale
            after = candidates[-1][0]
            if exhausted:
                break
        return found

    def _candidates(
        self, sources: list[str], oldest: int, need: int, after: Position | None
    ) -> Flow[tuple[list[tuple[Position, str, str]], bool]]:
        """The next ``need`` index entries after ``after``, newest first, merged over sources.

        Buckets hold a random share of the sessions, so each is asked for a little more than
        its share; entries newer than every unfinished bucket's last one are complete.
        """
        share = need if len(sources) == 1 else 2 * need // len(sources) + 4
        calls: Batch = []
        for source in sources:
            if after is None:
                calls.append(Command(("ZREMRANGEBYSCORE", source, "-inf", oldest)))
                top = "+inf"
            else:
                # Same millisecond, smaller id: read them all (a handful at most).
                calls.append(Command(("ZRANGE", source, after.score, after.score, "BYSCORE")))
                top = f"({after.score}"
            calls.append(
                Command(("ZRANGE", source, top, "-inf", "BYSCORE", "REV", "LIMIT", 0, share,
                         "WITHSCORES"))
            )  # fmt: skip
        replies = iter((yield calls))
        merged: list[tuple[Position, str, str]] = []
        frontier: Position | None = None
        for source in sources:
            first = next(replies)
            if after is not None:
                for raw in first:
                    member = from_tenant_member(raw.decode())
                    if member < after.member:
                        merged.append((Position(after.score, member), member, source))
            page = [
                (Position(int(score), member), member, source)
                for member, score in (
                    (from_tenant_member(raw.decode()), score)
                    for raw, score in _pairs(next(replies))
                )
            ]
            merged += page
            if len(page) == share and (frontier is None or page[-1][0] > frontier):
                frontier = page[-1][0]  # this bucket may hold more, all older than this
        merged.sort(reverse=True)
        if frontier is not None:
            merged = [entry for entry in merged if entry[0] >= frontier]
        exhausted = frontier is None and len(merged) <= need
        return merged[:need], exhausted

    def _load(self, tenant: str, members: list[str], now: int) -> Flow[list[Session | None]]:
        """Read sessions named by cross-slot indexes; a hint is trusted only if still live."""
        calls: Batch = []
        valid = [inputs.SESSION_ID.fullmatch(member) is not None for member in members]
        for member, ok in zip(members, valid, strict=True):
            if ok:
                calls.append(Command(("HMGET", self.keys.session(tenant, member), *VIEW)))
                index = self.keys.user_index_of(tenant, member)
                calls.append(Command(("ZSCORE", index, user_member(member))))
        replies = iter((yield calls) if calls else [])
        sessions: list[Session | None] = []
        for member, ok in zip(members, valid, strict=True):
            if not ok:
                sessions.append(None)
                continue
            view, score = next(replies), next(replies)
            if view[0] is None or score is None or int(float(score)) <= now:
                sessions.append(None)
            else:
                sessions.append(decode_view(member, view))
        return sessions

    # -- shared steps -----------------------------------------------------------------------

    def _tag_secret(self) -> Flow[bytes]:
        """The HMAC key for user tags: configured, or shared by every store through Redis."""
        if self.tag_secret is None:
            key = self.keys.tag_secret()
            # Read first: a Redis at maxmemory refuses SET even when the key exists.
            (secret,) = yield [Command(("GET", key))]
            if secret is None:
                _, secret = yield [
                    Command(("SET", key, new_tag_secret(), "NX")),
                    Command(("GET", key)),
                ]
            self.tag_secret = bytes(secret)
        return self.tag_secret


def _ms(moment: Any) -> int:
    return round(moment.timestamp() * 1000)


def _pairs(reply: Any) -> list[tuple[bytes, Any]]:
    # WITHSCORES answers pairs or a flat list, depending on the client's response callbacks.
    if reply and isinstance(reply[0], list | tuple):
        return [(member, score) for member, score in reply]
    return list(zip(reply[::2], reply[1::2], strict=True))
