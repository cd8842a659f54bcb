"""A bucket's `t` and `i` indexes stay in chunks of at most 128 entries (lua/index.lua), so
every key stays a listpack however many sessions a bucket holds, and every listing, count,
revocation and sweep stays exact across the chunks. One bucket per tenant here, so a few
hundred sessions split it many times; every backend."""

from __future__ import annotations

import random
from typing import Any

import pytest

from sessionstore import IndexInconsistent, SessionStore, StoreConfig
from sessionstore._core.sweeping import RECOUNT_EVERY
from tests import backends

TENANT = "acme-corp"
HOT_IP = "203.0.113.7"  # an office behind one address
SESSIONS = 420
FROM_HOT_IP = 170
CHUNK = 128


@pytest.fixture
def config(prefix: str) -> StoreConfig:
    return StoreConfig(prefix=prefix, tenant_buckets=1)


@pytest.fixture
def sessions(store: SessionStore, clock: backends.Clock) -> list[str]:
    """Ids, oldest first: every user one session; the first FROM_HOT_IP users share an IP."""
    ids = []
    for user in range(SESSIONS):
        clock.advance(0.01)  # distinct creation times (ms): the expected order is unambiguous
        ip = HOT_IP if user < FROM_HOT_IP else f"198.51.{user // 250}.{user % 250}"
        ids.append(store.create(TENANT, user, ip_address=ip, user_agent="pytest")[0].id)
    return ids


def index_keys(client: Any, prefix: str) -> dict[bytes, int]:
    """Every chunk of every `t` and `i` index, with its entry count."""
    chunks = {}
    for key in backends.keys_of(client, prefix):
        name = key.rsplit(b"}:", 1)[-1]
        if name in (b"t", b"i") or (name[:2] in (b"t:", b"i:") and name[2:] not in (b"d", b"n")):
            chunks[key] = client.zcard(key)
    return chunks


def whole_listing(store: SessionStore, **filters: Any) -> tuple[list[str], set[int | None]]:
    ids: list[str] = []
    totals: set[int | None] = set()
    cursor = None
    while True:
        page = store.list_sessions(TENANT, cursor=cursor, limit=50, **filters)
        ids += [session.id for session in page.data]
        totals.add(page.total_count)
        if page.next_cursor is None:
            return ids, totals
        cursor = page.next_cursor


def test_every_chunk_stays_a_listpack_as_a_bucket_grows(
    store: SessionStore, client: Any, prefix: str, backend: str, sessions: list[str]
) -> None:
    chunks = index_keys(client, prefix)
    assert len(chunks) >= 2 * (SESSIONS // CHUNK)  # both indexes split, more than once
    assert max(chunks.values()) <= CHUNK
    assert sum(chunks.values()) == 2 * SESSIONS
    if backend != "fake":  # the embedded server reports no encodings
        assert {client.object("encoding", key) for key in chunks} == {b"listpack"}


def test_listings_and_counts_stay_exact_across_chunks(
    store: SessionStore, sessions: list[str]
) -> None:
    assert whole_listing(store) == (sessions[::-1], {SESSIONS})
    hot = sessions[:FROM_HOT_IP]
    assert whole_listing(store, ip_address=HOT_IP) == (hot[::-1], {FROM_HOT_IP})


def test_revocations_join_chunks_and_every_view_stays_exact(
    store: SessionStore, client: Any, prefix: str, sessions: list[str]
) -> None:
    split = len(index_keys(client, prefix))
    chosen = random.Random(7).sample(range(SESSIONS), k=SESSIONS * 3 // 4)
    for user in chosen:
        assert store.revoke(TENANT, user, sessions[user])
    left = [sid for user, sid in enumerate(sessions) if user not in set(chosen)]
    assert whole_listing(store) == (left[::-1], {len(left)})
    hot_left = [sid for sid in left if sessions.index(sid) < FROM_HOT_IP]
    assert whole_listing(store, ip_address=HOT_IP) == (hot_left[::-1], {len(hot_left)})
    chunks = index_keys(client, prefix)
    assert sum(chunks.values()) == 2 * len(left)
    assert len(chunks) < split  # the chunks that emptied or shrank were joined


def test_a_bulk_revocation_by_ip_reaches_every_chunk(
    store: SessionStore, client: Any, prefix: str, sessions: list[str]
) -> None:
    assert store.revoke_sessions(TENANT, ip_address=HOT_IP) == FROM_HOT_IP
    rest = sessions[FROM_HOT_IP:]
    assert whole_listing(store) == (rest[::-1], {len(rest)})
    assert whole_listing(store, ip_address=HOT_IP) == ([], {0})
    assert sum(index_keys(client, prefix).values()) == 2 * len(rest)


def test_revoke_all_without_its_user_index_finds_sessions_in_every_chunk(
    store: SessionStore, client: Any, prefix: str, config: StoreConfig, sessions: list[str]
) -> None:
    user = SESSIONS - 1  # newest: in the last chunk
    client.delete(store._core.keys.user_index(TENANT, user))  # lost outside the scripts
    with pytest.raises(IndexInconsistent, match="1 of their sessions were found"):
        store.revoke_all(TENANT, user)
    assert sessions[-1] not in whole_listing(store)[0]
    assert store.get(TENANT, sessions[-1]) is None


def test_the_sweep_leaves_no_index_key_behind(
    store: SessionStore,
    client: Any,
    prefix: str,
    config: StoreConfig,
    clock: backends.Clock,
    sessions: list[str],
) -> None:
    clock.advance(config.lifetime.total_seconds() + 1)
    for _ in range(SESSIONS):  # each sweep drops a budget's worth of each bucket
        if not index_keys(client, prefix):
            break
        store.sweep_expired()
    assert index_keys(client, prefix) == {}
    leftovers = [key for key in backends.keys_of(client, prefix) if b"}:t" in key or b"}:i" in key]
    assert leftovers == []


def test_a_chunk_deleted_outside_the_scripts_costs_only_its_entries(
    store: SessionStore, client: Any, prefix: str, sessions: list[str]
) -> None:
    chunks = sorted(key for key in index_keys(client, prefix) if b"}:t:" in key)
    client.delete(chunks[0])
    listed, _ = whole_listing(store)
    assert set(listed) < set(sessions)  # what that chunk indexed is no longer listed
    assert listed == [sid for sid in sessions[::-1] if sid in set(listed)]  # the rest, in order
    user = sessions.index(next(sid for sid in sessions if sid not in set(listed)))
    assert store.get(TENANT, sessions[user]) is not None  # the sessions themselves are intact
    assert store.revoke(TENANT, user, sessions[user])
    assert store.create(TENANT, 10_000, ip_address=HOT_IP, user_agent="pytest")


def test_a_count_a_lost_chunk_left_too_high_is_set_right_by_the_next_sweep(
    store: SessionStore, client: Any, prefix: str, sessions: list[str]
) -> None:
    """The tenant-wide count adds the base chunk's size to a kept count of the other chunks'
    entries, which a chunk lost outside the scripts (deleted, evicted, or expired before the
    sweep dropped its entries) leaves too high. The background sweep counts a bucket's chunks
    again in its turn, once in RECOUNT_EVERY sweeps."""
    chunks = sorted(key for key in index_keys(client, prefix) if b"}:t:" in key)
    lost = client.zcard(chunks[0])
    client.delete(chunks[0])
    listed, _ = whole_listing(store)
    assert len(listed) == SESSIONS - lost
    for _ in range(RECOUNT_EVERY):
        store.sweep_expired()
    assert whole_listing(store) == (listed, {SESSIONS - lost})
    (count_key,) = [key for key in backends.keys_of(client, prefix) if key.endswith(b"}:t:n")]
    assert client.pttl(count_key) > 0  # made again, it still ends with its chunks


class TestOneUserAcrossChunks:
    @pytest.fixture
    def config(self, prefix: str) -> StoreConfig:
        return StoreConfig(prefix=prefix, tenant_buckets=1, max_sessions_per_user=1_000)

    def test_revoke_all_ends_sessions_in_every_chunk_at_once(
        self, store: SessionStore, client: Any, prefix: str, clock: backends.Clock
    ) -> None:
        others = []
        for n in range(300):
            clock.advance(0.01)
            store.create(TENANT, 1, ip_address=f"198.51.100.{n % 200}", user_agent="pytest")
            if n % 3 == 0:  # other users' sessions between the user's, in the same chunks
                others.append(store.create(TENANT, 2 + n, ip_address=HOT_IP, user_agent="x")[0].id)
        assert len(index_keys(client, prefix)) > 4
        assert store.revoke_all(TENANT, 1) == 300
        assert whole_listing(store) == (others[::-1], {len(others)})
        assert sum(index_keys(client, prefix).values()) == 2 * len(others)
        assert not [key for key in backends.keys_of(client, prefix) if key.endswith(b":sort")]
