"""The store against a model of its contract, driven by hypothesis through random histories.

The model is a dict of sessions and a few lines per operation. Every observable result is
compared: validate and get, both listings (ids, order, activity, count), revoke and revoke_all
returns, MFA updates. After every step the indexes themselves are read: each holds exactly
the same sessions, every live one and, of the rest, only some that expired and were not swept
yet (never a revoked or evicted one); a listing sweeps them, and then they hold exactly the
live set. Time moves by the injected clock only, so idle timeouts, absolute
lifetimes and touch intervals are all crossed; Redis keys themselves expire in real time,
far later, and each example runs in a prefix of its own that is deleted afterwards.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    Bundle,
    MultipleResults,
    RuleBasedStateMachine,
    invariant,
    multiple,
    rule,
    run_state_machine_as_test,
)

from sessionstore import Session, SessionStore, StoreConfig
from sessionstore._core.keys import CREATED_HEX, random_part
from sessionstore._core.tokens import BUCKET, RANDOM_LEN
from tests import backends

TENANTS = ("acme-corp", "globex")
USERS = (1, 2)
IPS = ("203.0.113.1", "2001:db8::1")
CAP = 3
LIFETIME = timedelta(hours=1)
# Over half the lifetime, so one touch can already be capped by the absolute expiry.
IDLE = timedelta(minutes=40)
TOUCH = timedelta(seconds=60)
LIFETIME_MS, IDLE_MS, TOUCH_MS = (d // timedelta(milliseconds=1) for d in (LIFETIME, IDLE, TOUCH))
# Steps that land before, on and after each limit (touch 60 s, idle 2400 s, lifetime 3600 s).
# All are exact binary fractions, so every run computes the same milliseconds.
TICK = 1 / 1024  # about a millisecond
CLOCK_STEPS = st.sampled_from([TICK, 1, 59, 60, 61, 1200, 2399, 2400, 2401, 3599, 3600])


def _ms(moment: datetime) -> int:
    return round(moment.timestamp() * 1000)


@dataclass
class Modelled:
    """What the model knows of one session (mutable: activity moves its expiry)."""

    tenant: str
    user_id: int
    id: str
    token: str
    ip: str
    created: int
    active: int
    expires: int
    absolute: int
    mfa: bool = False

    def matches(self, session: Session | None) -> bool:
        return session is not None and (
            session.id,
            session.user_id,
            session.ip_address,
            session.mfa_verified,
            _ms(session.created_at),
            _ms(session.last_active_at),
            _ms(session.expires_at),
        ) == (self.id, self.user_id, self.ip, self.mfa, self.created, self.active, self.expires)


class Model:
    """The contract: sessions live until revoked, evicted, idle or past their lifetime."""

    def __init__(self) -> None:
        self.sessions: dict[tuple[str, str], Modelled] = {}
        # Every change the contract makes, as (tenant, session id, event type), in order.
        self.history: list[tuple[str, str, str]] = []
        self.ended: dict[tuple[str, str], int] = {}  # when each ended session stopped living

    def live(self, tenant: str, session_id: str, now: int) -> Modelled | None:
        session = self.sessions.get((tenant, session_id))
        return session if session is not None and session.expires > now else None

    def of_user(self, tenant: str, user_id: int, now: int) -> list[Modelled]:
        return [
            s
            for s in self.sessions.values()
            if (s.tenant, s.user_id) == (tenant, user_id) and s.expires > now
        ]

    def add(self, session: Modelled, now: int) -> None:
        """Store it; over the cap, evict the others that would end first (ties: by random part)."""
        others = self.of_user(session.tenant, session.user_id, now)
        self.history.append((session.tenant, session.id, "session.created"))
        while len(others) + 1 > CAP:
            evicted = min(others, key=lambda s: (s.expires, random_part(s.id)))
            others.remove(evicted)
            self._end(evicted, "session.evicted", now)
        self.sessions[(session.tenant, session.id)] = session

    def _end(self, session: Modelled, kind: str, now: int) -> None:
        """Remove it; a live one's end is recorded as ``kind``, an expired one's may be found."""
        del self.sessions[(session.tenant, session.id)]
        self.ended[(session.tenant, session.id)] = min(session.expires, now)
        if session.expires > now:
            self.history.append((session.tenant, session.id, kind))

    def validate(self, tenant: str, session: Modelled, now: int) -> Modelled | None:
        live = self.live(tenant, session.id, now)
        if live is None or live.token != session.token:
            return None
        if now - live.active >= TOUCH_MS:
            live.active = now
            live.expires = min(live.absolute, now + IDLE_MS)
        return live

    def live_ids(self, now: int) -> set[tuple[str, str]]:
        return {key for key, s in self.sessions.items() if s.expires > now}

    def revoke(self, tenant: str, user_id: int, session_id: str, now: int) -> bool:
        session = self.sessions.get((tenant, session_id))
        if session is None or session.user_id != user_id:
            return False
        self._end(session, "session.revoked", now)
        return session.expires > now

    def revoke_all(self, tenant: str, user_id: int, keep: str | None, now: int) -> int:
        doomed = [
            s
            for s in self.sessions.values()
            if (s.tenant, s.user_id) == (tenant, user_id) and s.id != keep
        ]
        live = sum(session.expires > now for session in doomed)
        for session in doomed:
            self._end(session, "session.revoked", now)
        return live


class SessionMachine(RuleBasedStateMachine):
    sessions = Bundle("sessions")

    def __init__(self, client: Any) -> None:
        super().__init__()
        self.client = client
        self.prefix = backends.new_prefix()
        self.clock = backends.Clock()
        self.clock.now = float(int(self.clock.now))  # a whole second: see CLOCK_STEPS
        config = StoreConfig(
            prefix=self.prefix,
            lifetime=LIFETIME,
            idle_timeout=IDLE,
            touch_interval=TOUCH,
            max_sessions_per_user=CAP,
            events=True,
        )
        self.store = SessionStore(client, config=config, clock=self.clock)
        self.model = Model()

    def teardown(self) -> None:
        try:
            self.events_match_the_history()
        finally:
            backends.delete_prefix(self.client, self.prefix)

    @property
    def now(self) -> int:
        return self.store._core.now_ms()

    # -- rules ---------------------------------------------------------------------------------

    @rule(
        target=sessions,
        tenant=st.sampled_from(TENANTS),
        user_id=st.sampled_from(USERS),
        ip=st.sampled_from(IPS),
    )
    def create(self, tenant: str, user_id: int, ip: str) -> Modelled:
        self.clock.advance(TICK)  # one login after another: creation orders are total
        return self._create(tenant, user_id, ip)

    @rule(target=sessions, tenant=st.sampled_from(TENANTS), user_id=st.sampled_from(USERS))
    def overflow_cap(self, tenant: str, user_id: int) -> MultipleResults[Modelled]:
        """Simultaneous logins, one more than the cap: ties in every order, and an eviction."""
        return multiple(*(self._create(tenant, user_id, IPS[0]) for _ in range(CAP + 1)))

    @rule(target=sessions, session=sessions)
    def use_then_log_in_again(self, session: Modelled) -> Modelled:
        """An older session becomes the most recently active: the cap must evict another."""
        self.validate_after_a_gap(session, TOUCH)
        return self.create(session.tenant, session.user_id, session.ip)

    def _create(self, tenant: str, user_id: int, ip: str) -> Modelled:
        session, token = self.store.create(tenant, user_id, ip_address=ip, user_agent="pytest")
        now = self.now
        expected = Modelled(
            tenant=tenant,
            user_id=user_id,
            id=session.id,
            token=token,
            ip=ip,
            created=now,
            active=now,
            expires=now + IDLE_MS,
            absolute=now + LIFETIME_MS,
        )
        assert expected.matches(session)
        self.model.add(expected, now)
        return expected

    @rule(session=sessions, elsewhere=st.booleans())
    def validate(self, session: Modelled, elsewhere: bool) -> None:
        tenant = _other(session.tenant) if elsewhere else session.tenant
        expected = self.model.validate(tenant, session, self.now)
        validated = self.store.validate(tenant, session.token)
        assert validated is None if expected is None else expected.matches(validated)

    @rule(session=sessions, gap=st.sampled_from([TOUCH, IDLE / 2, IDLE - TOUCH / 60]))
    def validate_after_a_gap(self, session: Modelled, gap: timedelta) -> None:
        """Past the touch interval: activity is recorded, up to the absolute expiry."""
        self.clock.advance(gap.total_seconds())
        self.validate(session, elsewhere=False)

    @rule(session=sessions)
    def get(self, session: Modelled) -> None:
        expected = self.model.live(session.tenant, session.id, self.now)
        found = self.store.get(session.tenant, session.id)
        assert found is None if expected is None else expected.matches(found)

    @rule(seconds=CLOCK_STEPS)
    def advance_clock(self, seconds: float) -> None:
        self.clock.advance(seconds)

    @rule(session=sessions, as_owner=st.booleans(), elsewhere=st.booleans())
    def revoke(self, session: Modelled, as_owner: bool, elsewhere: bool) -> None:
        tenant = _other(session.tenant) if elsewhere else session.tenant
        user_id = session.user_id if as_owner else _other(session.user_id)
        expected = self.model.revoke(tenant, user_id, session.id, self.now)
        assert self.store.revoke(tenant, user_id, session.id) is expected

    @rule(tenant=st.sampled_from(TENANTS), user_id=st.sampled_from(USERS))
    def revoke_all(self, tenant: str, user_id: int) -> None:
        expected = self.model.revoke_all(tenant, user_id, None, self.now)
        assert self.store.revoke_all(tenant, user_id) == expected

    @rule(keep=sessions)
    def revoke_all_but_one(self, keep: Modelled) -> None:
        tenant, user_id = keep.tenant, keep.user_id
        expected = self.model.revoke_all(tenant, user_id, keep.id, self.now)
        assert self.store.revoke_all(tenant, user_id, except_session_id=keep.id) == expected

    @rule(session=sessions)
    def mark_mfa_verified(self, session: Modelled) -> None:
        live = self.model.live(session.tenant, session.id, self.now)
        if live is not None and not live.mfa:
            self.model.history.append((session.tenant, session.id, "session.mfa_verified"))
        if live is not None:
            live.mfa = True
        assert self.store.mark_mfa_verified(session.tenant, session.id) is (live is not None)

    @rule(tenant=st.sampled_from(TENANTS), user_id=st.sampled_from(USERS))
    def list_user_sessions(self, tenant: str, user_id: int) -> None:
        expected = sorted(
            self.model.of_user(tenant, user_id, self.now),
            key=lambda s: (s.active, s.id),
            reverse=True,
        )
        listed = self.store.list_user_sessions(tenant, user_id)
        assert [s.id for s in listed] == [s.id for s in expected]
        assert all(e.matches(s) for e, s in zip(expected, listed, strict=True))

    @rule(
        tenant=st.sampled_from(TENANTS),
        user_id=st.none() | st.sampled_from(USERS),
        ip=st.none() | st.sampled_from(IPS),
        limit=st.integers(1, 4),
    )
    def list_sessions(self, tenant: str, user_id: int | None, ip: str | None, limit: int) -> None:
        now = self.now
        expected = sorted(
            (
                s
                for s in self.model.sessions.values()
                if s.tenant == tenant
                and s.expires > now
                and user_id in (None, s.user_id)
                and ip in (None, s.ip)
            ),
            key=lambda s: (s.created, random_part(s.id)),
            reverse=True,
        )
        listed: list[Session] = []
        cursor = None
        while True:
            page = self.store.list_sessions(
                tenant, user_id=user_id, ip_address=ip, limit=limit, cursor=cursor
            )
            assert len(page.data) <= limit
            assert page.total_count == len(expected)
            listed += page.data
            cursor = page.next_cursor
            if cursor is None:
                break
        assert [s.id for s in listed] == [s.id for s in expected]
        assert all(e.matches(s) for e, s in zip(expected, listed, strict=True))
        # The listing swept what it read (the tenant; by user, the user's bucket): there the
        # indexes now hold exactly the live sessions.
        keys = self.store._core.keys
        buckets = {keys.bucket_of(tenant, user) for user in USERS if user_id in (None, user)}

        def swept(found: set[tuple[str, str]]) -> set[tuple[str, str]]:
            return {(t, sid) for t, sid in found if t == tenant and sid[BUCKET] in buckets}

        assert swept(self.indexed()) == swept(self.model.live_ids(now))

    # -- invariants ----------------------------------------------------------------------------

    def indexed(self) -> set[tuple[str, str]]:
        """(tenant, session id) of every session in the indexes, which must all agree."""
        keys = self.store._core.keys
        reads: list[tuple[str, str, str, str]] = []  # tenant, bucket, kind, key
        for tenant in TENANTS:
            for user in USERS:
                bucket = keys.bucket_of(tenant, user)
                reads.append((tenant, bucket, "u", keys.user_index(tenant, user)))
            for bucket in {keys.bucket_of(tenant, user) for user in USERS}:
                reads.append((tenant, bucket, "t", keys.created_index(tenant, bucket)))
                reads.append((tenant, bucket, "i", keys.ip_index(tenant, bucket)))
        pipe = self.client.pipeline()
        for *_, key in reads:
            pipe.zrange(key, 0, -1)
        found: dict[str, set[tuple[str, str]]] = {"u": set(), "t": set(), "i": set()}
        for (tenant, bucket, kind, _), members in zip(reads, pipe.execute(), strict=True):
            for member in members:
                random = {
                    "u": member,
                    "t": member[CREATED_HEX : CREATED_HEX + RANDOM_LEN],
                    "i": member[-RANDOM_LEN:],
                }[kind]
                found[kind].add((tenant, f"sess_{bucket}{random.decode()}"))
        assert found["u"] == found["t"] == found["i"], found
        return found["t"]

    def events_match_the_history(self) -> None:
        """Each session's events are the model's, in order; an expiry is recorded at most once,
        only after the session's end, and only for one that ended by time.

        Checked once, at the end of each history (teardown): the log only grows, so the end
        sees every event the steps recorded. Reading the whole log after every step made this
        test's time grow with the square of a history's length; a tenant's log cannot be read
        a step at a time instead, since its buckets' events in one millisecond merge in bucket
        order, not in the order they were written."""
        recorded: dict[tuple[str, str], list[Any]] = {}
        for tenant in TENANTS:
            cursor = None
            while True:
                page = self.store.events(tenant, after=cursor, limit=1000)
                for event in page.data:
                    recorded.setdefault((tenant, event.session_id), []).append(event)
                if not page.has_more:
                    break
                cursor = page.next_cursor
        expected: dict[tuple[str, str], list[str]] = {}
        for tenant, session_id, kind in self.model.history:
            expected.setdefault((tenant, session_id), []).append(kind)
        for key in set(recorded) | set(expected):
            events = recorded.get(key, [])
            changes = [e.type for e in events if e.type != "session.expired"]
            assert changes == expected.get(key, []), (key, events)
            expired = [e for e in events if e.type == "session.expired"]
            assert len(expired) <= 1, events
            if expired:
                assert "session.revoked" not in changes and "session.evicted" not in changes
                ended = self.model.ended.get(key)
                live = self.model.sessions.get(key)
                end = ended if ended is not None else live.expires if live else None
                assert end is not None and _ms(expired[0].at) >= end, (key, events)

    @invariant()
    def indexes_hold_every_live_session_and_nothing_revoked(self) -> None:
        now = self.now
        indexed = self.indexed()
        assert self.model.live_ids(now) <= indexed
        # The rest expired and waits for a sweep: nothing revoked or evicted stays indexed.
        assert indexed <= set(self.model.sessions)


def _other(value: Any) -> Any:
    choices = TENANTS if isinstance(value, str) else USERS
    return next(choice for choice in choices if choice != value)


# Histories per backend in the default run: a few dozen on real Redis, under ten where the
# Lua is emulated (fakeredis: seconds a history) or every step crosses slots (the cluster).
# The fuzzing profile (SESSIONSTORE_DEEP=1) tries its full budget: backends.examples(_, 150),
# 1,500 histories on every backend.
QUICK_EXAMPLES = {"redis": 40, "cluster": 8, "fake": 6}


def test_the_store_follows_the_model(backend: str) -> None:
    client = backends.sync_client(backend)
    examples = backends.examples(backend, 150) if backends.DEEP else QUICK_EXAMPLES[backend]
    try:
        run_state_machine_as_test(
            lambda: SessionMachine(client),
            settings=settings(max_examples=examples, stateful_step_count=50, deadline=None),
        )
    finally:
        client.close()
