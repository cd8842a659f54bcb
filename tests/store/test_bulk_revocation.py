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
    OperationIncomplete,
    SessionStore,
    StoreConfig,
)
from sessionstore._core import operations, scripts
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
        monkeypatch.setattr(operations, "REVOKE_BATCH", 2)

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

    @pytest.mark.parametrize("filter_", ["ip_address", "all_sessions"])
    def test_sessions_whose_user_index_is_gone_end_and_the_call_returns(
        self, store: SessionStore, client: Any, monkeypatch: pytest.MonkeyPatch, filter_: str
    ) -> None:
        # More orphans than a batch in each bucket: their user indexes deleted by hand.
        [login(store, user, ATTACKER_IP) for user in range(12)]
        office = [login(store, user, OFFICE_IP) for user in range(100, 104)]
        for user in range(12):
            client.delete(store._core.keys.user_index(TENANT, user))
        calls = script_calls(store, monkeypatch)
        monkeypatch.setattr(operations, "MAX_REVOKE_ROUNDS", 50, raising=False)
        run = store._run

        def bounded(batch: list[Any]) -> list[Any]:
            assert len(calls) < 60, "bulk revocation is spinning"
            return run(batch)

        monkeypatch.setattr(store, "_run", bounded)
        if filter_ == "ip_address":
            assert store.revoke_sessions(TENANT, ip_address=ATTACKER_IP) == 0  # none was live
            assert live(store, office) == 4
        else:
            assert store.revoke_sessions(TENANT, all_sessions=True) == 4
        assert store.list_sessions(TENANT, ip_address=ATTACKER_IP).total_count == 0
        assert len(calls) <= 12  # every call took a batch out

    def test_a_bucket_that_makes_no_progress_raises_instead_of_spinning(
        self, store: SessionStore, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        login(store, 1, ATTACKER_IP)
        run = store._run

        def stuck(batch: list[Any]) -> list[Any]:
            replies = run(batch)
            return [
                [0, 1, 0] if getattr(call, "script", None) is scripts.REVOKE_WHERE else reply
                for call, reply in zip(batch, replies, strict=True)
            ]

        monkeypatch.setattr(store, "_run", stuck)
        with pytest.raises(OperationIncomplete, match="cannot end"):
            store.revoke_sessions(TENANT, ip_address=ATTACKER_IP)

    def test_the_rounds_are_bounded(
        self, store: SessionStore, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        [login(store, user, ATTACKER_IP) for user in range(12)]
        monkeypatch.setattr(operations, "MAX_REVOKE_ROUNDS", 2)
        with pytest.raises(OperationIncomplete, match="2 rounds") as raised:
            store.revoke_sessions(TENANT, ip_address=ATTACKER_IP)
        done = raised.value.done
        assert 0 < done < 12  # two rounds of two users a bucket: what they ended stays ended
        assert store.revoke_sessions(TENANT, ip_address=ATTACKER_IP) == 12 - done


def script_calls(store: SessionStore, monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The number of bulk-revocation script calls in each round trip the store makes."""
    rounds: list[int] = []
    run = store._run

    def counted(batch: list[Any]) -> list[Any]:
        rounds.append(sum(getattr(call, "script", None) is scripts.REVOKE_WHERE for call in batch))
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
