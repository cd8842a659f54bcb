"""Slots move between nodes while sessions exist: no session is lost and no index breaks.

While a slot moves, its keys are split between two nodes. Scripts that declare all their keys
get TRYAGAIN or ASK, which redis-py follows. Scripts that read a user's session hashes through
the index (list_user, revoke_all) fail with "non local key" when a hash has moved before the
index; the store runs them again once the slot has settled (every script is idempotent).
"""

from __future__ import annotations

import random
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from redis.crc import key_slot

from sessionstore import SessionStore, StoreConfig, StoreUnavailable
from sessionstore._core.keys import KeySpace
from tests import backends
from tests.cluster.local import LocalCluster

pytestmark = [pytest.mark.cluster, pytest.mark.slow]

TENANT = "acme-corp"


@pytest.fixture(scope="module")
def cluster() -> Iterator[LocalCluster]:
    with LocalCluster(7100).running() as cluster:
        yield cluster


@pytest.fixture
def store(
    cluster: LocalCluster, config: StoreConfig, clock: backends.Clock
) -> Iterator[SessionStore]:
    with SessionStore.from_url(cluster.url, config=config, clock=clock) as store:
        yield store


def login(store: SessionStore, user: int, ip_address: str = "203.0.113.5") -> tuple[Any, str]:
    return store.create(TENANT, user, ip_address=ip_address, user_agent="x")


# -- one slot, caught half moved --------------------------------------------------------------


@pytest.mark.parametrize("operation", ["list_user_sessions", "revoke_all", "validate", "create"])
def test_operations_wait_out_a_half_moved_slot(
    cluster: LocalCluster,
    store: SessionStore,
    config: StoreConfig,
    monkeypatch: pytest.MonkeyPatch,
    operation: str,
    clock: backends.Clock,
) -> None:
    logins = [login(store, 7) for _ in range(12)]
    keys = KeySpace(config.prefix, config.tenant_buckets)
    slot = key_slot(keys.user_index(TENANT, 7).encode())
    target = next(node for node in cluster.primaries() if slot not in node.slots)
    # The newest sessions go first: revoke_all has revoked the older ones when it meets them.
    newest = [keys.session(TENANT, session.id) for session, _ in logins[-4:]]
    source = cluster.begin_moving(slot, target, newest)

    # Both the store and redis-py wait (time.sleep) before trying again; finishing the move
    # during the first wait makes the interleaving exact.
    real_sleep, waited = time.sleep, []

    def sleep_then_finish_the_move(seconds: float) -> None:
        if not waited:
            cluster.finish_moving(slot, source, target)
        waited.append(seconds)
        real_sleep(seconds)

    expected = {session.id for session, _ in logins}
    with monkeypatch.context() as patch:
        patch.setattr(time, "sleep", sleep_then_finish_the_move)
        if operation == "list_user_sessions":
            assert {s.id for s in store.list_user_sessions(TENANT, 7)} == expected
        elif operation == "revoke_all":
            # A first run cut short by the move may have revoked some already: 1..12 counted.
            assert 1 <= store.revoke_all(TENANT, 7) <= 12
            expected = set()
        elif operation == "validate":
            # Due a touch, so the script meets the slot (plain reads follow ASK on their own).
            clock.advance(config.touch_interval.total_seconds())
            moved, token = logins[-1]
            found = store.validate(TENANT, token)
            assert found is not None and found.id == moved.id
        else:
            fresh, fresh_token = login(store, 7)
            expected.add(fresh.id)
            logins.append((fresh, fresh_token))

    assert waited, "the operation never met the half-moved slot"
    assert cluster.owner(slot).id == target.id
    assert {s.id for s in store.list_user_sessions(TENANT, 7)} == expected
    for session, token in logins:
        found = store.validate(TENANT, token)
        assert (found and found.id) == (session.id if session.id in expected else None)


@pytest.mark.parametrize("reader", ["list_sessions", "list_sessions by IP", "revoke_sessions"])
def test_a_script_sent_to_the_importing_node_drops_no_session_it_cannot_see(
    cluster: LocalCluster,
    store: SessionStore,
    config: StoreConfig,
    monkeypatch: pytest.MonkeyPatch,
    reader: str,
) -> None:
    """Mid-migration, a script whose declared key already moved is sent to the new node with
    ASKING, where the hashes that have not moved yet read as missing. Taking them for ended
    sessions unindexed live ones (redis-cli's reshard under traffic left sessions unlisted):
    the script must refuse there, and the store run it again once the slot has moved."""
    mine, token = login(store, 7, "198.51.100.7")
    keys = KeySpace(config.prefix, config.tenant_buckets)
    bucket = mine.id[5:7]
    slot = key_slot(keys.created_index(TENANT, bucket).encode())
    target = next(node for node in cluster.primaries() if slot not in node.slots)
    indexes = [keys.created_index(TENANT, bucket), keys.ip_index(TENANT, bucket)]
    source = cluster.begin_moving(slot, target, indexes)  # the indexes moved, the hashes not

    real_sleep, waited = time.sleep, []

    def sleep_then_finish_the_move(seconds: float) -> None:
        if not waited:
            cluster.finish_moving(slot, source, target)
        waited.append(seconds)
        real_sleep(seconds)

    with monkeypatch.context() as patch:
        patch.setattr(time, "sleep", sleep_then_finish_the_move)
        if reader == "list_sessions":
            assert mine.id in {s.id for s in store.list_sessions(TENANT).data}
        elif reader == "list_sessions by IP":
            found = store.list_sessions(TENANT, ip_address="198.51.100.7").data
            assert [s.id for s in found] == [mine.id]
        else:
            assert store.revoke_sessions(TENANT, ip_address="198.51.100.7") == 1
    assert waited, "the call never met the half-moved slot"
    cluster.wait_until_stable()

    still = set() if reader == "revoke_sessions" else {mine.id}
    assert {session.id for session in all_pages(store)} & {mine.id} == still
    assert {s.id for s in all_pages(store, ip_address="198.51.100.7")} == still
    assert (store.validate(TENANT, token) is not None) == bool(still)


# -- redis-cli --cluster reshard under traffic -----------------------------------------------


class Traffic:
    """Reads of random users while the cluster reshards, and every 10th step a revoke_all.

    A call that meets an unsettled slot may raise StoreUnavailable; it is retried, which is
    safe because every operation is idempotent.
    """

    def __init__(self, store: SessionStore, logins: dict[int, list[tuple[Any, str]]]) -> None:
        self.store = store
        self.logins = logins
        self.revoked_users: set[int] = set()
        self.unavailable = 0
        self._to_revoke = [user for user in logins if user % 10 == 0]
        self._random = random.Random(7)
        self._steps = 0

    def step(self) -> None:
        revoke = self._steps % 10 == 0 and self._to_revoke
        action = "revoke" if revoke else self._random.choice(["list", "validate", "admin"])
        user = self._to_revoke.pop() if revoke else self._random.choice(list(self.logins))
        self._steps += 1
        deadline = time.monotonic() + 20
        while True:
            try:
                return self._act(action, user)
            except StoreUnavailable:
                if time.monotonic() > deadline:
                    raise
                self.unavailable += 1
                time.sleep(0.05)

    def _act(self, action: str, user: int) -> None:
        store = self.store
        if action == "revoke":
            store.revoke_all(TENANT, user)
            self.revoked_users.add(user)
        elif action == "list":
            store.list_user_sessions(TENANT, user)
        elif action == "validate":
            session, token = self.logins[user][0]
            found = store.validate(TENANT, token)
            assert (found is None) == (user in self.revoked_users), (user, found)
        else:
            store.list_sessions(TENANT, limit=50)


def all_pages(store: SessionStore, **filters: Any) -> list[Any]:
    sessions, cursor = [], None
    while True:
        page = store.list_sessions(TENANT, limit=200, cursor=cursor, **filters)
        sessions += page.data
        if page.next_cursor is None:
            return sessions
        cursor = page.next_cursor


def test_reshard_under_traffic_keeps_every_session(
    cluster: LocalCluster, store: SessionStore, config: StoreConfig
) -> None:
    # A few users with more sessions than one MIGRATE batch, so their slot is split a while.
    logins = {
        user: [login(store, user, f"198.51.100.{user % 4}") for _ in range(sessions)]
        for user in range(300)
        for sessions in [12 if user % 25 == 0 else 2]
    }
    keys = KeySpace(config.prefix, config.tenant_buckets)
    slot_of = {
        user: key_slot(keys.user_index(TENANT, user).encode()) for user, sessions in logins.items()
    }
    owners_before = cluster.slot_owners()
    source, target = cluster.primaries()[:2]

    traffic = Traffic(store, logins)
    with ThreadPoolExecutor(1) as pool:
        reshard = pool.submit(cluster.reshard, source, target, 1000, keys_per_move=1)
        while not reshard.done():
            traffic.step()
        reshard.result()
    cluster.wait_until_stable()

    owners_after = cluster.slot_owners()
    moved = [user for user, slot in slot_of.items() if owners_after[slot] != owners_before[slot]]
    assert len(moved) > 10, f"the reshard moved only {len(moved)} users"
    live = {u: sessions for u, sessions in logins.items() if u not in traffic.revoked_users}
    assert traffic.revoked_users
    for user, sessions in logins.items():
        expected = {s.id for s, _ in sessions} if user in live else set()
        assert {s.id for s in store.list_user_sessions(TENANT, user)} == expected, user
        for _session, token in sessions:
            assert (store.validate(TENANT, token) is not None) == (user in live)
    live_ids = {s.id for sessions in live.values() for s, _ in sessions}
    assert {s.id for s in all_pages(store)} == live_ids
    by_ip = {s.id for ip in range(4) for s in all_pages(store, ip_address=f"198.51.100.{ip}")}
    assert by_ip == live_ids
