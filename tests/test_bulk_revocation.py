"""Bulk revocation: every session from an IP (or of a user, or of a tenant) ends in one call.

Incident response: an attacker's IP shows up, and every session it holds must go, whoever's
they are, without any one script holding Redis for long. Run on every backend.
"""

from __future__ import annotations

from typing import Any

import pytest

from sessionstore import (
    AsyncSessionStore,
    InvalidArgument,
    InvalidIPAddress,
    SessionStore,
    StoreConfig,
    _core,
)
from tests import backends

TENANT = "acme-corp"
OTHER_TENANT = "globex"
ATTACKER_IP = "198.51.100.66"
OFFICE_IP = "203.0.113.10"


def login(store: SessionStore, user_id: int, ip: str, tenant: str = TENANT) -> str:
    return store.create(tenant, user_id, ip_address=ip, user_agent="pytest")[1]


def live(store: SessionStore, tokens: list[str], tenant: str = TENANT) -> int:
    return sum(store.validate(tenant, token) is not None for token in tokens)


class TestByIP:
    def test_ends_every_session_from_the_ip_and_no_other(self, store: SessionStore) -> None:
        hijacked = [login(store, user, ATTACKER_IP) for user in range(40)]
        innocent = [login(store, user, OFFICE_IP) for user in range(40)]

        assert store.revoke_sessions(TENANT, ip_address=ATTACKER_IP) == 40

        assert live(store, hijacked) == 0
        assert live(store, innocent) == 40
        assert store.list_sessions(TENANT, ip_address=ATTACKER_IP).data == []
        assert store.list_sessions(TENANT, ip_address=OFFICE_IP).total_count == 40
        assert all(
            [s.ip_address for s in store.list_user_sessions(TENANT, user)] == [OFFICE_IP]
            for user in range(40)
        )

    def test_a_second_call_finds_nothing(self, store: SessionStore) -> None:
        login(store, 1, ATTACKER_IP)
        assert store.revoke_sessions(TENANT, ip_address=ATTACKER_IP) == 1
        assert store.revoke_sessions(TENANT, ip_address=ATTACKER_IP) == 0

    def test_other_tenants_keep_their_sessions(self, store: SessionStore) -> None:
        theirs = login(store, 1, ATTACKER_IP, tenant=OTHER_TENANT)
        login(store, 1, ATTACKER_IP)
        assert store.revoke_sessions(TENANT, ip_address=ATTACKER_IP) == 1
        assert live(store, [theirs], tenant=OTHER_TENANT) == 1

    def test_an_ipv4_mapped_address_is_the_same_ip(self, store: SessionStore) -> None:
        mapped = login(store, 1, "::ffff:c633:6442")  # 198.51.100.66, as IPv6 sockets see it
        other_v6 = login(store, 2, "2001:db8::66")
        assert store.revoke_sessions(TENANT, ip_address=ATTACKER_IP) == 1
        assert live(store, [mapped, other_v6]) == 1
        assert store.revoke_sessions(TENANT, ip_address="2001:DB8:0::66") == 1

    def test_an_ended_session_is_not_counted(
        self, store: SessionStore, clock: backends.Clock
    ) -> None:
        login(store, 1, ATTACKER_IP)
        clock.advance(2 * 86400)
        fresh = login(store, 2, ATTACKER_IP)
        assert store.revoke_sessions(TENANT, ip_address=ATTACKER_IP) == 1
        assert live(store, [fresh]) == 0

    def test_a_malformed_ip_is_refused_before_redis(self, store: SessionStore) -> None:
        with pytest.raises(InvalidIPAddress):
            store.revoke_sessions(TENANT, ip_address="198.51.100.300")


class TestFilters:
    def test_ip_and_user_together_end_only_that_users_sessions_from_it(
        self, store: SessionStore
    ) -> None:
        mine = [login(store, 7, ATTACKER_IP) for _ in range(3)]
        my_office = login(store, 7, OFFICE_IP)
        someone_else = login(store, 8, ATTACKER_IP)

        assert store.revoke_sessions(TENANT, ip_address=ATTACKER_IP, user_id=7) == 3
        assert live(store, mine) == 0
        assert live(store, [my_office, someone_else]) == 2

    def test_user_alone_ends_all_of_the_users_sessions(self, store: SessionStore) -> None:
        mine = [login(store, 7, ip) for ip in (ATTACKER_IP, OFFICE_IP)]
        theirs = login(store, 8, ATTACKER_IP)
        assert store.revoke_sessions(TENANT, user_id=7) == 2
        assert live(store, mine) == 0
        assert live(store, [theirs]) == 1

    def test_no_filter_is_refused_without_all_sessions(self, store: SessionStore) -> None:
        token = login(store, 1, OFFICE_IP)
        with pytest.raises(InvalidArgument, match="all_sessions"):
            store.revoke_sessions(TENANT)
        assert live(store, [token]) == 1

    def test_all_sessions_ends_the_whole_tenant(self, store: SessionStore) -> None:
        ours = [login(store, user, OFFICE_IP) for user in range(30)]
        theirs = login(store, 1, OFFICE_IP, tenant=OTHER_TENANT)
        assert store.revoke_sessions(TENANT, all_sessions=True) == 30
        assert live(store, ours) == 0
        assert store.list_sessions(TENANT).total_count == 0
        assert live(store, [theirs], tenant=OTHER_TENANT) == 1


class TestBatches:
    """A large match is worked through in batches; each user's matches end in one step."""

    @pytest.fixture
    def config(self, prefix: str) -> StoreConfig:
        return StoreConfig(prefix=prefix, tenant_buckets=2)

    @pytest.fixture(autouse=True)
    def small_batches(self, monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.setattr(_core, "REVOKE_BATCH", 2)

    def test_every_match_ends_however_many_batches_it_takes(self, store: SessionStore) -> None:
        hijacked = [login(store, user, ATTACKER_IP) for user in range(25)]
        assert store.revoke_sessions(TENANT, ip_address=ATTACKER_IP) == 25
        assert live(store, hijacked) == 0

    def test_a_users_matching_sessions_end_in_the_same_script_call(
        self, store: SessionStore, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        tokens = [login(store, 7, ATTACKER_IP) for _ in range(6)]
        calls = script_calls(store, monkeypatch)
        assert store.revoke_sessions(TENANT, ip_address=ATTACKER_IP) == 6
        # One round of both buckets ends all six (its batch of two picked user 7); a second
        # round asks the bucket that filled its batch, and finds nothing left.
        assert calls == [2, 1]
        assert live(store, tokens) == 0


def script_calls(store: SessionStore, monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The number of bulk-revocation script calls in each round trip the store makes."""
    rounds: list[int] = []
    run = store._run

    def counted(batch: list[Any]) -> list[Any]:
        rounds.append(
            sum(getattr(call, "script", None) is _core.scripts.REVOKE_WHERE for call in batch)
        )
        return run(batch)

    monkeypatch.setattr(store, "_run", counted)
    return rounds


async def test_the_async_store_revokes_the_same_way(astore: AsyncSessionStore) -> None:
    tokens = [
        (await astore.create(TENANT, user, ip_address=ATTACKER_IP, user_agent="pytest"))[1]
        for user in range(5)
    ]
    assert await astore.revoke_sessions(TENANT, ip_address=ATTACKER_IP) == 5
    assert [await astore.validate(TENANT, token) for token in tokens] == [None] * 5
