"""Session events: every change of a session leaves one event, written in the same script.

Run on every backend with ``StoreConfig(events=True)``; the store's clock is the test's, so
expiry is reached by moving it, never by waiting.
"""

from __future__ import annotations

import threading
from datetime import timedelta
from typing import Any

import pytest

from sessionstore import (
    AsyncSessionStore,
    InvalidArgument,
    InvalidCursor,
    SessionStore,
    StoreConfig,
)
from sessionstore.errors import InvalidActor
from sessionstore.events import GRACE, Event
from tests import backends

TENANT = "acme-corp"
IP = "203.0.113.7"
DAY = 86400


@pytest.fixture
def config(prefix: str) -> StoreConfig:
    return StoreConfig(prefix=prefix, events=True, max_sessions_per_user=3)


def login(store: SessionStore, user_id: int = 7, ip: str = IP, **options: Any) -> tuple[Any, str]:
    return store.create(TENANT, user_id, ip_address=ip, user_agent="pytest", **options)


def every_event(store: SessionStore, **filters: Any) -> list[Event]:
    events, cursor = [], None
    while True:
        page = store.events(TENANT, after=cursor, limit=7, **filters)
        events += page.data
        if not page.has_more:
            return events
        cursor = page.next_cursor


def summary(events: list[Event]) -> list[tuple[str, str, str | None]]:
    return [(event.type, event.actor, event.reason) for event in events]


class TestWhatIsRecorded:
    def test_create_is_recorded_with_the_session_and_its_actor(
        self, store: SessionStore, clock: backends.Clock
    ) -> None:
        session, _ = login(store)
        clock.advance(0.01)  # a tenant's events are in time order (ties: by bucket)
        login(store, 8, actor="signup-service")
        first, second = every_event(store)
        assert first.to_dict() | {"id": "", "at": ""} == {
            "id": "",
            "type": "session.created",
            "sessionId": session.id,
            "userId": 7,
            "ipAddress": IP,
            "actor": "user",
            "reason": None,
            "at": "",
        }
        assert first.at == session.created_at
        assert (second.user_id, second.actor) == (8, "signup-service")

    def test_revoke_names_its_actor_and_an_idle_revoke_records_nothing(
        self, store: SessionStore
    ) -> None:
        session, _ = login(store)
        assert store.revoke(TENANT, 7, session.id, actor="admin:k3y1d")
        assert not store.revoke(TENANT, 7, session.id, actor="admin:k3y1d")
        assert summary(every_event(store)) == [
            ("session.created", "user", None),
            ("session.revoked", "admin:k3y1d", None),
        ]

    def test_revoke_all_records_each_session_with_its_reason(self, store: SessionStore) -> None:
        kept, _ = login(store)
        ended = {login(store)[0].id for _ in range(2)}
        assert store.revoke_all(TENANT, 7, except_session_id=kept.id, actor="user") == 2
        revoked = every_event(store, types=["session.revoked"])
        assert {event.session_id for event in revoked} == ended
        assert {(event.actor, event.reason) for event in revoked} == {("user", "revoke_all")}

    def test_bulk_revocation_records_each_session_with_the_admin_as_actor(
        self, store: SessionStore
    ) -> None:
        for user in (1, 2, 3):
            login(store, user, ip="198.51.100.66")
        store.revoke_sessions(TENANT, ip_address="198.51.100.66", actor="admin:k3y1d")
        revoked = every_event(store, types=["session.revoked"])
        assert sorted(event.user_id for event in revoked) == [1, 2, 3]  # type: ignore[type-var]
        assert {(event.actor, event.reason) for event in revoked} == {("admin:k3y1d", "bulk")}

    def test_the_cap_records_what_it_evicts(
        self, store: SessionStore, clock: backends.Clock
    ) -> None:
        oldest, _ = login(store)
        for _ in range(3):
            clock.advance(1)  # the cap evicts the session that would end first
            login(store)
        (evicted,) = every_event(store, types=["session.evicted"])
        assert (evicted.session_id, evicted.actor, evicted.reason) == (oldest.id, "system", "cap")

    def test_mfa_is_recorded_once(self, store: SessionStore) -> None:
        session, _ = login(store)
        assert store.mark_mfa_verified(TENANT, session.id)
        assert store.mark_mfa_verified(TENANT, session.id)  # already verified: no new event
        assert summary(every_event(store, types=["session.mfa_verified"])) == [
            ("session.mfa_verified", "user", None)
        ]

    def test_a_touch_is_not_an_event(self, store: SessionStore, clock: backends.Clock) -> None:
        _, token = login(store)
        for _ in range(3):
            clock.advance(120)  # past the touch interval: each validate records activity
            assert store.validate(TENANT, token) is not None
        assert summary(every_event(store)) == [("session.created", "user", None)]

    def test_a_bad_actor_is_refused_before_redis(self, store: SessionStore) -> None:
        for actor in ("", "has space", "x" * 65, "emoji-🙂", None):
            with pytest.raises(InvalidActor):
                login(store, actor=actor)
        assert every_event(store) == []


class TestExpiry:
    """session.expired comes once, when the store first learns of the end."""

    @pytest.mark.parametrize("learns", ["validate", "list_user_sessions", "list_sessions"])
    def test_the_first_reader_after_the_end_records_it_once(
        self, store: SessionStore, clock: backends.Clock, learns: str
    ) -> None:
        session, token = login(store)
        clock.advance(2 * DAY)
        for _ in range(2):
            if learns == "validate":
                assert store.validate(TENANT, token) is None
            elif learns == "list_user_sessions":
                assert store.list_user_sessions(TENANT, 7) == []
            else:
                assert store.list_sessions(TENANT).data == []
        (expired,) = every_event(store, types=["session.expired"])
        assert (expired.session_id, expired.user_id, expired.actor) == (session.id, 7, "system")

    def test_the_ended_hash_outlives_its_end_by_the_grace_only_with_events(
        self, client: Any, prefix: str, clock: backends.Clock
    ) -> None:
        for events, extra in ((True, GRACE), (False, timedelta(0))):
            store = SessionStore(
                client, config=StoreConfig(prefix=prefix, events=events), clock=clock
            )
            session, _ = login(store)
            ttl_ms = client.pttl(store._core.keys.session(TENANT, session.id))
            expected = (session.expires_at.timestamp() - clock.now) * 1000 + extra / timedelta(
                milliseconds=1
            )
            # Redis counts down from its own clock: allow a second of it.
            assert expected - 1000 < ttl_ms <= expected + 1

    def test_the_background_sweep_records_what_nobody_asked_about(
        self, store: SessionStore, clock: backends.Clock
    ) -> None:
        ended = [login(store, user)[0] for user in range(5)]
        other_tenant, _ = store.create("globex", 1, ip_address=IP, user_agent="pytest")
        clock.advance(2 * DAY)  # every one ends; no call touches their buckets afterwards
        assert store.sweep_expired() >= 5
        expired = every_event(store, types=["session.expired"])
        assert sorted(e.session_id for e in expired) == sorted(s.id for s in ended)
        assert {(e.user_id, e.actor) for e in expired} == {(s.user_id, "system") for s in ended}
        assert store.events("globex", types=["session.expired"]).data[0].session_id == (
            other_tenant.id
        )
        # Every index emptied with its sessions: a second sweep finds no bucket, records nothing.
        assert store.sweep_expired() == 0
        assert len(every_event(store, types=["session.expired"])) == 5


class TestReading:
    def test_a_users_events_are_in_order_and_pages_miss_nothing(
        self, store: SessionStore, clock: backends.Clock
    ) -> None:
        made = []
        for n in range(12):
            session, _ = login(store, user_id=n % 4)
            made.append(session.id)
            clock.advance(0.01)
        events = every_event(store)
        assert [event.session_id for event in events] == made
        assert len({event.id for event in events}) == 12
        mine = every_event(store, user_id=1)
        assert [event.session_id for event in mine] == made[1::4]

    def test_events_of_other_tenants_are_never_seen(self, store: SessionStore) -> None:
        store.create("globex", 7, ip_address=IP, user_agent="pytest")
        assert every_event(store) == []

    def test_bad_filters_and_cursors_are_refused(self, store: SessionStore) -> None:
        with pytest.raises(InvalidArgument):
            store.events(TENANT, types=["session.deleted"])
        for cursor in ("", "abc", "1-2", "1-2-XYZ"):
            with pytest.raises(InvalidCursor):
                store.events(TENANT, after=cursor)

    def test_tail_yields_only_what_comes_next(self, store: SessionStore) -> None:
        login(store, 1)
        stream = store.tail(TENANT, poll=0.05)
        later = threading.Timer(0.3, lambda: login(store, 2))
        later.start()
        event = next(stream)
        later.join()
        assert (event.type, event.user_id) == ("session.created", 2)


def test_events_are_off_unless_asked_for(client: Any, prefix: str) -> None:
    store = SessionStore(client, config=StoreConfig(prefix=prefix))
    session, _ = login(store)
    store.revoke(TENANT, 7, session.id)
    assert store.events(TENANT).data == []
    assert not [key for key in backends.keys_of(client, prefix) if key.endswith(b":e")]


async def test_the_async_store_sweeps_too(
    backend: str, fake_server: Any, config: StoreConfig, clock: backends.Clock
) -> None:
    store = AsyncSessionStore(
        backends.async_client(backend, fake_server), config=config, clock=clock
    )
    session, _ = await store.create(TENANT, 7, ip_address=IP, user_agent="pytest")
    clock.advance(2 * DAY)
    assert await store.sweep_expired() >= 1
    page = await store.events(TENANT, types=["session.expired"])
    assert [event.session_id for event in page.data] == [session.id]
    await store.aclose()


async def test_the_async_store_reads_and_tails_the_same_events(
    backend: str, fake_server: Any, config: StoreConfig
) -> None:
    store = AsyncSessionStore(backends.async_client(backend, fake_server), config=config)
    first, _ = await store.create(TENANT, 7, ip_address=IP, user_agent="pytest")
    page = await store.events(TENANT)
    assert [event.session_id for event in page.data] == [first.id]
    stream = store.tail(TENANT, after=page.data[0].id, poll=0.05)
    second, _ = await store.create(TENANT, 8, ip_address=IP, user_agent="pytest")
    assert (await anext(stream)).session_id == second.id
    await stream.aclose()
    await store.aclose()
