"""Every index entry lives and dies with its session: the admin views never lie or stall.

Each test is one way the indexes of layout 1 drifted from the truth (cap eviction and idle
expiry left entries behind, flooding an IP hid earlier sessions, a filter cost a round trip
per entry, a lost key re-routed users, users shared an index, a lone best-effort command
raised), run on every backend.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from redis.exceptions import ResponseError

from sessionstore import AsyncSessionStore, SessionStore, StoreConfig
from sessionstore._core import listing
from sessionstore._core.flows import Command
from sessionstore._core.listing import MAX_ROUNDS
from tests import backends

TENANT = "acme-corp"
ATTACKER = 666
VICTIM = 7
SHARED_IP = "203.0.113.99"


class RoundTrips:
    """Counts the batches (one round trip each) a warmed-up store sends to Redis."""

    def __init__(self, store: SessionStore, monkeypatch: pytest.MonkeyPatch) -> None:
        store._run_flow(store._core.check_layout())  # once per store, not per operation
        self.count = 0
        run = store._run

        def counted(batch: list[Any]) -> list[Any]:
            self.count += 1
            return run(batch)

        monkeypatch.setattr(store, "_run", counted)

    def __enter__(self) -> RoundTrips:
        self.count = 0
        return self

    def __exit__(self, *exc_info: object) -> None:
        pass


def login(store: SessionStore, user_id: int, ip_address: str = SHARED_IP) -> str:
    return store.create(TENANT, user_id, ip_address=ip_address, user_agent="pytest")[1]


def whole_listing(store: SessionStore, **filters: Any) -> list[str]:
    ids, cursor = [], None
    while True:
        page = store.list_sessions(TENANT, cursor=cursor, **filters)
        ids += [session.id for session in page.data]
        if page.next_cursor is None:
            return ids
        cursor = page.next_cursor


class TestEvictionAndExpiryLeaveNothingBehind:
    @pytest.fixture
    def config(self, prefix: str) -> StoreConfig:
        return StoreConfig(
            prefix=prefix, max_sessions_per_user=3, idle_timeout=timedelta(minutes=30)
        )

    def test_the_cap_unindexes_what_it_evicts(
        self, store: SessionStore, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        for _ in range(51):
            login(store, ATTACKER)
        store.revoke_all(TENANT, ATTACKER)
        trips = RoundTrips(store, monkeypatch)
        for filters in ({}, {"ip_address": SHARED_IP}):
            with trips:
                page = store.list_sessions(TENANT, limit=1, **filters)
            assert (page.data, page.next_cursor, page.total_count) == ([], None, 0)
            assert trips.count == 1  # one pipelined round: nothing dead left to walk

    def test_idle_expiry_is_swept_within_the_page_budget(
        self, store: SessionStore, clock: backends.Clock, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        for user in range(40):
            login(store, user)
        clock.advance(31 * 60)
        fresh = login(store, 1000)
        trips = RoundTrips(store, monkeypatch)
        with trips:
            page = store.list_sessions(TENANT, ip_address=SHARED_IP)
        assert [s.id for s in page.data] == [store.validate(TENANT, fresh).id]
        assert page.total_count == 1 and page.next_cursor is None
        assert trips.count <= MAX_ROUNDS

    def test_a_flood_then_sign_out_everywhere_leaves_a_fast_first_page(
        self, store: SessionStore, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        kept = [store.validate(TENANT, login(store, user)) for user in range(5)]
        for _ in range(300):
            login(store, ATTACKER)
        store.revoke_all(TENANT, ATTACKER)
        trips = RoundTrips(store, monkeypatch)
        with trips:
            page = store.list_sessions(TENANT, limit=100)
        assert {s.id for s in page.data} == {s.id for s in kept if s is not None}
        assert trips.count == 2  # the positions of the page, then its sessions

    def test_a_page_that_spends_its_budget_says_where_to_go_on(
        self, store: SessionStore, clock: backends.Clock, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        bucket_of = store._core.keys.bucket_of
        crowd = [u for u in range(20_000) if bucket_of(TENANT, u) == bucket_of(TENANT, 0)][:150]
        older = login(store, 10**6)  # live, and older than everything below
        for user in crowd:
            for _ in range(3):
                login(store, user)  # 450 sessions in one bucket, to end unseen (idle)
        clock.advance(20 * 60)
        store.validate(TENANT, older)
        clock.advance(20 * 60)
        newer = login(store, 10**6 + 1)
        trips = RoundTrips(store, monkeypatch)
        listed, pages, cursor = [], 0, None
        while True:
            with trips:
                page = store.list_sessions(TENANT, limit=10, cursor=cursor)
            assert trips.count <= MAX_ROUNDS
            pages += 1
            listed += [session.id for session in page.data]
            if page.next_cursor is None:
                break
            cursor = page.next_cursor
        expected = [store.validate(TENANT, token) for token in (newer, older)]
        assert listed == [session.id for session in expected if session is not None]
        assert pages > 1  # the ended sessions take more than one page's budget to step over


def test_flooding_an_ip_hides_no_earlier_session(store: SessionStore) -> None:
    victim = store.validate(TENANT, login(store, VICTIM))
    for _ in range(300):
        login(store, ATTACKER)
    listed = whole_listing(store, ip_address=SHARED_IP, limit=1000)
    assert victim is not None and victim.id in listed
    cap = store.config.max_sessions_per_user
    assert len(listed) == cap + 1  # the attacker's live sessions and the victim's


def test_a_filter_that_matches_nothing_costs_one_round_trip(
    store: SessionStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    for user in range(300):
        login(store, user)
    trips = RoundTrips(store, monkeypatch)
    with trips:
        page = store.list_sessions(TENANT, user_id=10_000, ip_address=SHARED_IP)
    assert (page.data, page.total_count) == ([], 0)
    assert trips.count == 1  # the user's own index, never a walk of the IP's sessions


def test_a_fresh_process_finds_every_session_even_after_keys_vanish(
    store: SessionStore, client: Any, config: StoreConfig
) -> None:
    tokens = [login(store, VICTIM) for _ in range(3)]
    # What eviction, an operator or a restore did to layout 1's routing secret.
    client.delete(f"{config.prefix}:tag-secret")
    fresh = SessionStore(client, config=config)
    assert len(fresh.list_user_sessions(TENANT, VICTIM)) == 3
    assert fresh.revoke_all(TENANT, VICTIM) == 3
    assert [token for token in tokens if store.validate(TENANT, token)] == []


def test_users_who_share_a_bucket_never_share_an_index(client: Any, prefix: str) -> None:
    config = StoreConfig(prefix=prefix, max_sessions_per_user=2)
    store = SessionStore(client, config=config)
    bucket_of = store._core.keys.bucket_of
    first = 1
    second = next(u for u in range(2, 10_000) if bucket_of(TENANT, u) == bucket_of(TENANT, first))
    mine = [login(store, first) for _ in range(2)]
    theirs = [login(store, second) for _ in range(2)]
    # Neither user's cap evicted the other's sessions, and revoke_all ends only one user's.
    assert all(store.validate(TENANT, token) for token in mine + theirs)
    assert {s.user_id for s in store.list_user_sessions(TENANT, first)} == {first}
    assert store.revoke_all(TENANT, first) == 2
    assert all(store.validate(TENANT, token) for token in theirs)
    assert store.list_sessions(TENANT, user_id=second).total_count == 2


def test_a_best_effort_command_alone_in_a_batch_hands_back_its_error(
    store: SessionStore, client: Any, prefix: str
) -> None:
    client.set(f"{prefix}:text", "not a number")
    (reply,) = store._run([Command(("INCR", f"{prefix}:text"), best_effort=True)])
    assert isinstance(reply, ResponseError)
    with pytest.raises(ResponseError):
        store._run([Command(("INCR", f"{prefix}:text"))])


async def test_the_async_store_settles_a_lone_best_effort_command_too(
    astore: AsyncSessionStore, client: Any, prefix: str
) -> None:
    client.set(f"{prefix}:text", "not a number")
    (reply,) = await astore._run([Command(("INCR", f"{prefix}:text"), best_effort=True)])
    assert isinstance(reply, ResponseError)


def test_the_count_leaves_out_sessions_that_ended_out_of_order(
    client: Any, prefix: str, clock: backends.Clock
) -> None:
    """An older live session in every bucket stops the sweep; the sessions behind it that
    ended (a shorter lifetime set by another process, a hash deleted by hand), more in each
    bucket than a page examines, are counted out all the same."""
    buckets = 8
    store = SessionStore(
        client, config=StoreConfig(prefix=prefix, tenant_buckets=buckets), clock=clock
    )
    brief = SessionStore(
        client,
        config=StoreConfig(prefix=prefix, tenant_buckets=buckets, lifetime=timedelta(hours=1)),
        clock=clock,
    )
    office = "198.51.100.1"
    for user in range(32):  # older than what follows, live, in every bucket
        store.create(TENANT, user, ip_address=office, user_agent="pytest")
    clock.advance(1)
    for user in range(1000, 1000 + 3 * listing.COUNT_CHECKED // 4 * buckets):
        brief.create(TENANT, user, ip_address=SHARED_IP, user_agent="pytest")
    deleted, _ = store.create(TENANT, 2000, ip_address=SHARED_IP, user_agent="pytest")
    client.delete(store._core.keys.session(TENANT, deleted.id))
    clock.advance(2 * 3600)
    survivor, _ = store.create(TENANT, 3000, ip_address=SHARED_IP, user_agent="pytest")

    page = store.list_sessions(TENANT, ip_address=SHARED_IP, limit=1)
    assert (page.total_count, page.next_cursor, [s.id for s in page.data]) == (
        1,
        None,
        [survivor.id],
    )
    assert store.list_sessions(TENANT, limit=1).total_count == 33
