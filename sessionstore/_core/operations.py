"""Every decision of the store, with no I/O: the sync and async stores only run what this yields.

An operation is a generator (a *flow*) that yields batches of calls and receives their
results, as httpx's auth flows do. A batch goes to Redis in one round trip where the topology
allows it. Flows take the time from the core's clock and pass it to the scripts, so Lua never
reads the server's clock and tests can move time.
"""

from __future__ import annotations

import enum
import logging
import time
from collections.abc import Callable, Sequence
from typing import Any, Literal

from ..config import StoreConfig
from ..errors import (
    IncompatibleLayout,
    IndexInconsistent,
    InvalidArgument,
    OperationIncomplete,
    RevocationNotDurable,
    SessionConflict,
)
from ..geo import LocationResolver, no_location
from ..model import Page, Session, from_ms, to_ms
from . import events, inputs, listing, scripts
from .codec import (
    MOVING,
    VIEW,
    complete,
    cut_short,
    decode_view,
    moved,
    packed_ip,
    session_fields,
    view_of,
)
from .device import parse_device
from .fixed import Fixed, FixedParts
from .flows import Batch, Call, Command, Flow, ScriptCall, T
from .keys import LAYOUT, KeySpace, ip_key, random_part
from .nearcache import NearCache
from .scripts import Script
from .sweeping import READ_CHUNK, Registered, Sweep, horizon, recount_due, step
from .tokens import (
    BUCKET,
    ParsedToken,
    new_session,
    owned,
    parse_token,
    secret_matches,
    session_id,
)

__all__ = ["Batch", "Call", "Command", "Core", "Flow", "ScriptCall", "T"]

log = logging.getLogger("sessionstore")


_SECRET = VIEW.index("h")
_UNREAD = object()  # a user index entry not read yet
_GRACE_MS = int(events.GRACE.total_seconds() * 1000)  # an ended hash kept for its event
# What validate.lua's refusal codes mean, as metrics count them.
_REFUSED = {0: "unknown", 1: "unknown", 2: "expired", 3: "revoked"}


def _ignore(outcome: str) -> None:
    pass


def _ignore_answer(hit: bool) -> None:
    pass


class _Ended(enum.Enum):
    STORED = "a known session that ended and is still stored: the script drops it"


FIXED_PARTS = 10_000  # sessions whose fixed parts a store remembers (about 1 KB each)
# Sessions that pick the users one bulk-revocation call ends (each with all its matches).
REVOKE_BATCH = 200
# Seconds a store's reading of the deployment's settings (events on or off) may be old.
SETTINGS_REFRESH = 10.0
# Rounds one bulk revocation may take: every round takes at least REVOKE_BATCH entries out of
# each bucket it calls, so this ends 2,000,000 sessions a bucket before it stops.
MAX_REVOKE_ROUNDS = 10_000
# Ended sessions one background sweep drops per bucket (more wait for the next sweep).
SWEEP_BUDGET = 100
RECHUNK_BUDGET = 2048  # index entries one migration step moves at most (about a millisecond)


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
        self.layout_checked = False
        self.fixed = FixedParts(FIXED_PARTS)
        self.registered = Registered(step(config.lifetime_ms))
        self.sweeps = 0  # background sweeps so far: whose turn it is to be counted again
        self.near = (
            NearCache(config.near_cache_size, max_age=config.near_cache_max_age.total_seconds())
            if config.near_cache_size
            else None
        )
        # Told how each validate ended (metrics.VALIDATE_OUTCOMES), when a store counts them.
        self.validated: Callable[[str], None] = _ignore
        self.near_cache_answered: Callable[[bool], None] = _ignore_answer
        # Whether the deployment records events (keys.settings): read at the first check and
        # again at most every SETTINGS_REFRESH, so turning them on or off reaches every
        # store under the prefix within that bound.
        self.events_on = config.events
        self.settings_due = 0.0  # on the monotonic clock below: elapsed time, not session time
        self.monotonic: Callable[[], float] = time.monotonic

    def __repr__(self) -> str:
        return f"Core(prefix={self.config.prefix!r})"

    @property
    def events_system(self) -> str:
        """The events argument of a script call that changes sessions on its own behalf."""
        return events.script_argument(self._retention_ms, "system")

    @property
    def _retention_ms(self) -> int | None:
        """How long events are kept, while this store records them (None: it records none)."""
        return self.config.event_retention_ms if self.events_on else None

    @property
    def _grace_ms(self) -> int:
        """How long an ended session's hash is kept: the events' grace, while they are on."""
        return _GRACE_MS if self.events_on else 0

    def now_ms(self) -> int:
        return int(self.clock() * 1000)

    # -- the hot path ---------------------------------------------------------------------------

    def validate(self, tenant: str, token: object) -> Flow[Session | None]:
        """The token's live session, recording activity at most once per touch interval.

        Two plain reads in one round trip: the session's hash (whole the first time this
        process sees it, then only what can change) and its user index entry. The script runs
        only when a touch is due, and when the reads say it ended (the script then drops it).
        """
        known = self.recall(tenant, token)
        if not isinstance(known, ParsedToken):
            return known
        return (yield from self.validate_parsed(tenant, known))

    def recall(self, tenant: str, token: object) -> Session | ParsedToken | None:
        """What validate knows without Redis: the session when the near cache answers for it,
        None for a token of no issued shape, else the parsed token for ``validate_parsed``.
        A store calls this first, so a near-cache hit needs no flow at all."""
        tenant = inputs.tenant(tenant)
        parsed = parse_token(token)
        if parsed is None:
            self.validated("malformed")
            return None
        near = self.near
        if near is None:
            return parsed
        key = self.keys.session(tenant, parsed.session_id)
        cached = near.get(key, parsed.secret_hash, self.now_ms(), self.config.touch_interval_ms)
        self.near_cache_answered(cached is not None)
        if cached is None:
            return parsed
        self.validated("valid")
        return cached

    def validate_parsed(self, tenant: str, parsed: ParsedToken) -> Flow[Session | None]:
        """Validate in Redis a token ``recall`` could not answer (its tenant already checked);
        the answer goes into the near cache unless a change came in since the read began."""
        near = self.near
        if near is None:
            return (yield from self._validate(tenant, parsed))
        key = self.keys.session(tenant, parsed.session_id)
        read_from = near.generation()
        session = yield from self._validate(tenant, parsed)
        if session is None:
            near.discard(key)
        else:
            near.put(key, session, parsed.secret_hash, read_from)
        return session

    def _validate(self, tenant: str, parsed: ParsedToken) -> Flow[Session | None]:
        if not self.layout_checked:
            yield from self.check_layout()
        sid = parsed.session_id
        fixed = self.fixed.get(tenant, sid)
        if fixed is None:
            found = yield from self._first_sight(tenant, parsed)
            if found is not _Ended.STORED:
                return found
            return (yield from self._validate_script(tenant, parsed))
        if not secret_matches(parsed.secret_hash, fixed.secret_hash):
            self.validated("unknown")
            return None  # a session's secret never changes: no need to ask Redis
        now = self.now_ms()
        if now - fixed.last_active_ms < self.config.touch_interval_ms:
            session = yield from self._read_live(tenant, fixed, now)
            if session is not _Ended.STORED:
                return session
        return (yield from self._validate_script(tenant, parsed))

    def _first_sight(
        self, tenant: str, parsed: ParsedToken
    ) -> Flow[Session | None | Literal[_Ended.STORED]]:
        """A session this process has not seen: its whole hash and its user index entry, two
        plain reads in one round trip (the token names its owner). STORED asks the script: a touch
        is due, or the session ended."""
        sid, owner = parsed.session_id, parsed.owner
        hash_read = Command(("HGETALL", self.keys.session(tenant, sid)))
        if owner is None:  # a token from before tokens named their owner: read it first
            (whole,) = yield [hash_read]
            indexed: object = _UNREAD
        else:
            user_index = self.keys.user_index_in(tenant, sid, owner)
            whole, indexed = yield [hash_read, Command(("ZSCORE", user_index, random_part(sid)))]
        values = view_of(whole)
        stored = values[_SECRET]
        if not secret_matches(parsed.secret_hash, stored):
            self.validated("unknown")
            return None
        if not complete(values):
            self.validated("unknown")  # cut short outside the scripts: no session to decode
            return None
        session = decode_view(sid, values)
        if owner is not None and session.user_id != owner:
            self.validated("unknown")  # a token whose owner was changed: not one we issued
            return None
        now = self.now_ms()
        if to_ms(session.expires_at) <= now:
            return _Ended.STORED
        if now - to_ms(session.last_active_at) >= self.config.touch_interval_ms:
            return _Ended.STORED  # due a touch: only the script records activity
        if indexed is _UNREAD:
            user_index = self.keys.user_index_of(tenant, session)
            (indexed,) = yield [Command(("ZSCORE", user_index, random_part(sid)))]
        if indexed is None:
            return _Ended.STORED
        self.fixed.remember(tenant, session, parsed.secret_hash)
        self.validated("valid")
        return session

    def _validate_script(self, tenant: str, parsed: ParsedToken) -> Flow[Session | None]:
        """Run validate.lua: it records activity, or drops a session found ended."""
        sid = parsed.session_id
        yield from self.settings()  # the script may record an ending
        script_call, _ = self._validate_call(tenant, parsed)
        (reply,) = yield [script_call]
        if not isinstance(reply, list) or not complete(reply):
            self.fixed.forget(tenant, sid)
            self.validated(_REFUSED[int(reply)] if not isinstance(reply, list) else "unknown")
            return None
        session = decode_view(sid, reply)
        self.fixed.remember(tenant, session, parsed.secret_hash)
        self.validated("valid")
        return session

    def _read_live(
        self, tenant: str, fixed: Fixed, now: int
    ) -> Flow[Session | None | Literal[_Ended.STORED]]:
        """What can change of a known session; None when it is gone (revoked, evicted)."""
        session = fixed.session
        user_index = self.keys.user_index_of(tenant, session)
        moving, indexed = yield [
            Command(("HMGET", self.keys.session(tenant, session.id), *MOVING)),
            Command(("ZSCORE", user_index, random_part(session.id))),
        ]
        if moving == fixed.moving:  # as this process last read it: nothing to decode
            if indexed is None or fixed.expires_ms <= now:
                return _Ended.STORED
            self.validated("valid")
            return session
        expires = moving[0]
        if expires is None:
            self.fixed.forget(tenant, session.id)
            # Gone from Redis: at its end (Redis expired it), or before it (revoked, evicted).
            self.validated("expired" if to_ms(session.expires_at) <= now else "revoked")
            return None
        if cut_short(moving):
            self.fixed.forget(tenant, session.id)
            self.validated("unknown")  # cut short outside the scripts
            return None
        if indexed is None or int(expires) <= now:
            return _Ended.STORED
        fresh = moved(session, moving)  # the same object unless another process changed it
        self.fixed.remember(tenant, fresh, fixed.secret_hash, moving)
        self.validated("valid")
        return fresh

    def validate_call(self, tenant: str, token: object) -> tuple[ScriptCall, str] | None:
        """The validate script call and the session id it asks about; None for junk tokens."""
        tenant = inputs.tenant(tenant)
        parsed = parse_token(token)
        return None if parsed is None else self._validate_call(tenant, parsed)

    def _validate_call(self, tenant: str, parsed: ParsedToken) -> tuple[ScriptCall, str]:
        sid = parsed.session_id
        config = self.config
        call = ScriptCall(
            scripts.VALIDATE,
            (self.keys.session(tenant, sid), self.keys.created_index_of(tenant, sid)),
            (
                self.now_ms(),
                parsed.secret_hash,
                config.touch_interval_ms,
                config.idle_timeout_ms,
                self.events_system,
            ),
        )
        return call, sid

    # -- flows ------------------------------------------------------------------------------

    def check_layout(self) -> Flow[None]:
        """Once per store: refuse keys of another layout or bucket count under this prefix.
        Every call also reads the deployment's settings when they are due."""
        if self.layout_checked:
            yield from self.settings()
            return
        expected = f"{LAYOUT}:{self.config.tenant_buckets}".encode()
        layout, legacy = yield [
            Command(("GET", self.keys.layout())),
            Command(("EXISTS", self.keys.legacy_tag_secret())),
        ]
        if legacy:
            raise IncompatibleLayout(
                f"prefix {self.config.prefix!r} holds sessions of layout 1; this version reads "
                f"layout {LAYOUT}: use another prefix or remove the old keys"
            )
        if layout is None:  # a new prefix: every bucket in it will be registered by its creates
            _, layout, _ = yield [
                Command(("SET", self.keys.layout(), expected, "NX")),
                Command(("GET", self.keys.layout())),
                Command(("SET", self.keys.registry_seeded(), 1, "NX")),
            ]
        if bytes(layout) == _previous_layout(expected):
            raise IncompatibleLayout(
                f"prefix {self.config.prefix!r} holds layout 2, whose indexes this version "
                "keeps in chunks: run `sessionstore migrate` once (README: Upgrading)"
            )
        if bytes(layout) != expected:
            raise IncompatibleLayout(
                f"prefix {self.config.prefix!r} holds layout {bytes(layout).decode()!r} "
                f"(version:buckets); this store is configured for {expected.decode()!r}"
            )
        (policy,) = yield [
            Command(("CONFIG", "GET", "maxmemory-policy"), best_effort=True, keyless=True)
        ]
        _warn_if_evicting(policy)
        if self.config.events:  # a store configured to record turns events on for everyone
            yield from self._write_events(True)
        yield from self.settings()
        self.layout_checked = True

    def begin_migration(self) -> Flow[str]:
        """Mark a prefix of layout 2 as layout 3 (older processes then refuse it, and newer
        ones run on it); returns what the prefix held: ``"2"``, ``"3"`` or ``""`` (nothing)."""
        expected = f"{LAYOUT}:{self.config.tenant_buckets}".encode()
        (layout,) = yield [Command(("GET", self.keys.layout()))]
        if layout is None:
            return ""
        if bytes(layout) == _previous_layout(expected):
            yield [Command(("SET", self.keys.layout(), expected))]
            return "2"
        if bytes(layout) != expected:
            raise IncompatibleLayout(
                f"prefix {self.config.prefix!r} holds layout {bytes(layout).decode()!r} "
                f"(version:buckets); migrate is configured for {expected.decode()!r}"
            )
        return "3"

    def rechunk(self, created_index: str) -> Flow[bool]:
        """Put one bucket's indexes, as layout 2 wrote them, into chunks: a bounded step.
        Returns whether the bucket needs another."""
        indexes = (created_index, self.keys.ip_index_beside(created_index))
        replies = yield [ScriptCall(scripts.RECHUNK, (key,), (RECHUNK_BUDGET,)) for key in indexes]
        return any(replies)

    def settings(self) -> Flow[None]:
        """Read the deployment's settings, when the last reading is SETTINGS_REFRESH old."""
        now = self.monotonic()
        if now < self.settings_due:
            return
        (recording,) = yield [Command(("HGET", self.keys.settings(), "events"))]
        self.events_on = recording == b"1"
        self.settings_due = now + SETTINGS_REFRESH

    def set_events(self, on: bool) -> Flow[None]:
        """Turn events on or off for every store under the prefix (each follows within
        SETTINGS_REFRESH; this one at once)."""
        if not self.layout_checked:
            yield from self.check_layout()
        yield from self._write_events(on)

    def _write_events(self, on: bool) -> Flow[None]:
        yield [Command(("HSET", self.keys.settings(), "events", "1" if on else "0"))]
        self.events_on = on
        self.settings_due = self.monotonic() + SETTINGS_REFRESH

    def events_enabled(self) -> Flow[bool]:
        """Whether the deployment records events, as Redis says now."""
        yield from self.check_layout()
        self.settings_due = 0.0
        yield from self.settings()
        return self.events_on

    def create(
        self,
        tenant: str,
        user_id: int,
        *,
        ip_address: str,
        user_agent: str,
        auth_method: str,
        mfa_verified: bool,
        actor: str = "user",
    ) -> Flow[tuple[Session, str]]:
        tenant = inputs.tenant(tenant)
        who = events.actor(actor)
        user_id = inputs.user_id(user_id)
        ip_address = inputs.ip_address(ip_address)
        user_agent = inputs.user_agent(user_agent)
        auth_method = inputs.auth_method(auth_method)
        if not isinstance(mfa_verified, bool):
            raise inputs.InvalidArgument("mfa_verified must be a bool")
        yield from self.check_layout()
        recorded = events.script_argument(self._retention_ms, who)
        config, keys = self.config, self.keys
        bucket = keys.bucket_of(tenant, user_id)
        for _attempt in range(3):
            session_id, ownerless, secret_hash = new_session(bucket)
            token = owned(ownerless, user_id)
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
                (
                    keys.session(tenant, session_id),
                    keys.user_index(tenant, user_id),
                    keys.created_index(tenant, bucket),
                    keys.ip_index(tenant, bucket),
                    keys.idle_index(tenant, bucket),
                ),
                (
                    now,
                    expires,
                    absolute,
                    config.max_sessions_per_user,
                    secret_hash,
                    1 if config.idle_timeout else 0,
                    recorded,
                    *session_fields(session, absolute),
                ),
            )
            index = keys.created_index(tenant, bucket)
            register = self.registered.due(index, absolute + self._grace_ms)
            if register is None:
                (reply,) = yield [create]
            else:  # in the same round trip: a sweep sees the bucket from its next run on
                reply, *_ = yield [create, *self._register({index: register})]
                self.registered.registered(index, register)
            if reply[0] != -1:
                return session, token
        raise SessionConflict("could not draw an unused session id")

    def get(self, tenant: str, session_id: str) -> Flow[Session | None]:
        tenant = inputs.tenant(tenant)
        session_id = inputs.session_id(session_id)
        yield from self.check_layout()
        (reply,) = yield [self._one_session(scripts.READ, tenant, session_id)]
        return None if reply is None else decode_view(session_id, reply)

    def list_user_sessions(self, tenant: str, user_id: int) -> Flow[list[Session]]:
        """The user's live sessions, most recently active first."""
        sessions = yield from self.user_sessions(tenant, user_id)
        sessions.sort(key=lambda s: (s.last_active_at, s.id), reverse=True)
        return sessions

    def user_sessions(self, tenant: str, user_id: int) -> Flow[list[Session]]:
        tenant = inputs.tenant(tenant)
        user_id = inputs.user_id(user_id)
        yield from self.check_layout()
        bucket = self.keys.bucket_of(tenant, user_id)
        (reply,) = yield [
            ScriptCall(
                scripts.LIST_USER,
                (self.keys.user_index(tenant, user_id), self.keys.created_index(tenant, bucket)),
                (self.now_ms(), self.events_system),
            )
        ]
        return [
            decode_view(session_id(bucket, random.decode()), view)
            for random, view in zip(reply[::2], reply[1::2], strict=True)
        ]

    def revoke(
        self, tenant: str, user_id: int, session_id: str, *, actor: str = "system"
    ) -> Flow[bool]:
        tenant = inputs.tenant(tenant)
        user_id = inputs.user_id(user_id)
        session_id = inputs.session_id(session_id)
        who = events.actor(actor)
        yield from self.check_layout()
        recorded = events.script_argument(self._retention_ms, who)
        call = self._one_session(scripts.REVOKE, tenant, session_id, user_id, recorded)
        reply = yield from self._durably(call)
        return bool(reply)

    def revoke_all(
        self,
        tenant: str,
        user_id: int,
        *,
        except_session_id: str | None = None,
        actor: str = "system",
    ) -> Flow[int]:
        tenant = inputs.tenant(tenant)
        user_id = inputs.user_id(user_id)
        keep = "" if except_session_id is None else inputs.session_id(except_session_id)
        who = events.actor(actor)
        yield from self.check_layout()
        recorded = events.script_argument(self._retention_ms, who)
        bucket = self.keys.bucket_of(tenant, user_id)
        call = ScriptCall(
            scripts.REVOKE_ALL,
            (self.keys.user_index(tenant, user_id), self.keys.created_index(tenant, bucket)),
            (self.now_ms(), random_part(keep) if keep[BUCKET] == bucket else "", user_id, recorded),
        )
        revoked, unindexed = yield from self._durably(call)
        if unindexed:
            raise IndexInconsistent(
                f"the index of user {user_id} was missing; {unindexed} of their sessions were "
                "found through their bucket and ended"
            )
        return int(revoked)

    def revoke_sessions(
        self,
        tenant: str,
        *,
        ip_address: str | None = None,
        user_id: int | None = None,
        all_sessions: bool = False,
        actor: str = "system",
    ) -> Flow[int]:
        """End every live session that matches, a user's matching sessions in one step each.

        Every bucket of the tenant is worked through in rounds, one pipelined round trip each;
        a script call ends the matching sessions of the users of at most ``REVOKE_BATCH``
        sessions, so no call holds Redis for long, and the flow returns when all are done.
        """
        tenant = inputs.tenant(tenant)
        if ip_address is None and user_id is None and not all_sessions:
            raise InvalidArgument(
                "give ip_address or user_id, or all_sessions=True to end every session"
            )
        ip = b"" if ip_address is None else ip_key(packed_ip(inputs.ip_address(ip_address)))
        who = events.actor(actor)
        # Each bucket still to work through, and the keys its calls declare.
        pending: dict[str, tuple[str, ...]]
        if user_id is None:
            pending = {
                bucket: (self.keys.created_index(tenant, bucket),)
                for bucket in self.keys.all_buckets()
            }
        else:
            user_id = inputs.user_id(user_id)
            bucket = self.keys.bucket_of(tenant, user_id)
            pending = {
                bucket: (
                    self.keys.created_index(tenant, bucket),
                    self.keys.user_index(tenant, user_id),
                )
            }
        yield from self.check_layout()
        recorded = events.script_argument(self._retention_ms, who)
        revoked = 0
        for _round in range(MAX_REVOKE_ROUNDS):
            calls: Batch = [
                ScriptCall(scripts.REVOKE_WHERE, keys, (self.now_ms(), ip, REVOKE_BATCH, recorded))
                for keys in pending.values()
            ]
            replies = yield from self._durably_all(calls)
            revoked += sum(int(count) for count, _, _ in replies)
            if any(more and not taken for _, more, taken in replies):
                raise OperationIncomplete(
                    "bulk revocation stopped: a bucket reports matches it cannot end",
                    done=revoked,
                )
            pending = {
                bucket: keys
                for (bucket, keys), (_, more, _) in zip(pending.items(), replies, strict=True)
                if more
            }
            if not pending:
                return revoked
        raise OperationIncomplete(
            f"bulk revocation stopped after {MAX_REVOKE_ROUNDS} rounds with matches left; "
            "call it again to go on",
            done=revoked,
        )

    def update(
        self, tenant: str, session_id: str, *, mfa_verified: bool, actor: str = "user"
    ) -> Flow[bool]:
        tenant = inputs.tenant(tenant)
        session_id = inputs.session_id(session_id)
        who = events.actor(actor)
        yield from self.check_layout()
        recorded = events.script_argument(self._retention_ms, who)
        call = self._one_session(
            scripts.UPDATE, tenant, session_id, recorded, "m", int(mfa_verified)
        )
        (reply,) = yield [call]
        return bool(reply)

    def list_sessions(
        self,
        tenant: str,
        *,
        user_id: int | None = None,
        ip_address: str | None = None,
        limit: int = inputs.DEFAULT_LIMIT,
        cursor: str | None = None,
    ) -> Flow[Page]:
        wanted = listing.query(tenant, user_id, ip_address, limit, cursor)
        if wanted.user_id is not None:  # the user's own index is the narrowest there is
            sessions = yield from self.user_sessions(wanted.tenant, wanted.user_id)
            return listing.user_page(wanted, sessions)
        yield from self.check_layout()
        return (
            yield from listing.tenant_page(self.keys, self.now_ms(), self.events_system, wanted)
        )

    def events(
        self,
        tenant: str,
        *,
        after: str | None = None,
        before: str | None = None,
        order: str = "asc",
        limit: int = inputs.DEFAULT_LIMIT,
        types: Sequence[str] | None = None,
        user_id: int | None = None,
        ip_address: str | None = None,
        session_id: str | None = None,
    ) -> Flow[events.EventPage]:
        """A page of events (events.query checks the request, events.read reads it)."""
        wanted = events.query(
            tenant,
            after,
            limit,
            types,
            user_id,
            before=before,
            order=order,
            ip_address=ip_address,
            session=session_id,
        )
        yield from self.check_layout()
        return (yield from events.read(self.keys, wanted))

    def registry_seeded(self) -> Flow[bool]:
        """Whether the bucket registry has been seeded from the keyspace (sweeping.py)."""
        yield from self.check_layout()
        (seeded,) = yield [Command(("EXISTS", self.keys.registry_seeded()))]
        return bool(seeded)

    def seed_registry(self, created_indexes: Sequence[bytes | str], *, done: bool) -> Flow[None]:
        """Register buckets a SCAN found, for as long as any session of theirs could last;
        never shortens a registration. ``done`` marks the registry seeded."""
        until = horizon(
            self.now_ms() + self.config.lifetime_ms + _GRACE_MS, self.registered.step_ms
        )
        calls = self._register(dict.fromkeys(created_indexes, until), only_new=True)
        if done:
            calls.append(Command(("SET", self.keys.registry_seeded(), 1)))
        if calls:
            yield calls

    def _register(self, until: dict[bytes | str, int], *, only_new: bool = False) -> list[Call]:
        """Register buckets until the given times; the registry lives as long as its latest."""
        if not until:
            return []
        registry, latest = self.keys.registry(), max(until.values())
        entries = [part for index, ends in until.items() for part in (ends, index)]
        return [
            Command(("ZADD", registry, "NX" if only_new else "GT", *entries)),
            Command(("PEXPIREAT", registry, latest, "NX")),
            Command(("PEXPIREAT", registry, latest, "GT")),
        ]

    def sweep_registered(self) -> Flow[int]:
        """Sweep every registered bucket; drop the registrations whose time had passed when
        they were read (a create since has moved its bucket's time on). Returns the buckets."""
        registry, now = self.keys.registry(), self.now_ms()
        sweep, offset = Sweep(), 0
        self.sweeps += 1
        while True:
            (names,) = yield [
                Command(
                    ("ZRANGE", registry, "-inf", "+inf", "BYSCORE", "LIMIT", offset, READ_CHUNK)
                )
            ]
            for name in names:
                if chunk := sweep.found(name):
                    yield from self.sweep_buckets(chunk)
            if len(names) < READ_CHUNK:
                break
            offset += READ_CHUNK
        if chunk := sweep.rest():
            yield from self.sweep_buckets(chunk)
        yield [Command(("ZREMRANGEBYSCORE", registry, "-inf", f"({now}"))]
        return sweep.swept

    def sweep_buckets(self, created_indexes: Sequence[str]) -> Flow[None]:
        """Drop, and record as expired, what ended in these buckets (``t`` index keys): up to
        SWEEP_BUDGET oldest of each, for sessions nobody asks about. The buckets whose turn it
        is (``recount_due``) also have their count of sessions made again from their chunks: a
        chunk lost outside the scripts leaves it too high until then."""
        yield from self.check_layout()
        yield [
            ScriptCall(
                scripts.PAGE,
                (index,),
                (
                    self.now_ms(),
                    "",
                    "",
                    1,
                    SWEEP_BUDGET,
                    0,
                    self.events_system,
                    int(recount_due(index, self.sweeps)),
                ),
            )
            for index in created_indexes
        ]

    def newest_event(self, tenant: str) -> Flow[str | None]:
        tenant = inputs.tenant(tenant)
        yield from self.check_layout()
        return (yield from events.newest(self.keys, tenant))

    # -- shared steps -----------------------------------------------------------------------

    def _one_session(self, script: Script, tenant: str, session_id: str, *args: Any) -> ScriptCall:
        """A call of a script that takes one session: its hash and its bucket."""
        return ScriptCall(
            script,
            (self.keys.session(tenant, session_id), self.keys.created_index_of(tenant, session_id)),
            (self.now_ms(), *args),
        )

    def _durably_all(self, revocations: Batch) -> Flow[list[Any]]:
        """A batch of revocations; with ``revoke_replicas``, WAIT once after them."""
        replicas = self.config.revoke_replicas
        if not replicas:
            return (yield revocations)
        timeout = int(self.config.revoke_replica_timeout.total_seconds() * 1000)
        *replies, acknowledged = yield [*revocations, Command(("WAIT", replicas, timeout))]
        if int(acknowledged) < replicas:
            raise RevocationNotDurable(
                f"revocation reached {acknowledged} of {replicas} replicas in {timeout} ms"
            )
        return replies

    def _durably(self, revocation: ScriptCall) -> Flow[Any]:
        (reply,) = yield from self._durably_all([revocation])
        return reply


def _warn_if_evicting(reply: Any) -> None:
    """Warn when Redis may evict keys: live sessions and index entries could vanish."""
    policies = {value for value in _texts(reply) if value.startswith(("allkeys-", "volatile-"))}
    if policies:
        log.warning(
            "Redis runs maxmemory-policy %s: it may delete live sessions and their index "
            "entries; sessionstore needs noeviction",
            ", ".join(sorted(policies)),
        )


def _texts(reply: Any) -> list[str]:
    """Every string in a CONFIG GET reply (a dict, a list, or one per cluster node)."""
    if isinstance(reply, bytes | str):
        return [reply.decode() if isinstance(reply, bytes) else reply]
    if isinstance(reply, dict):
        return [text for pair in reply.items() for part in pair for text in _texts(part)]
    if isinstance(reply, list | tuple):
        return [text for part in reply for text in _texts(part)]
    return []  # an error (CONFIG is often disabled on managed Redis) or nothing


def _previous_layout(expected: bytes) -> bytes:
    """The marker layout 2 wrote for the same bucket count."""
    return b"2:" + expected.split(b":", 1)[1]
