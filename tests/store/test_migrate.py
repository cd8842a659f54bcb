"""Layout 2 kept each bucket's `t` and `i` index in one key; layout 3 keeps them in chunks
(lua/index.lua). A store refuses a layout 2 prefix and names the fix; ``migrate`` rewrites it
in place, in steps that other processes run between, and can stop and start again anywhere.
A layout 2 prefix is made here the only way it differs: every index's chunks joined in one
key, the directory and count gone, the marker saying 2."""

from __future__ import annotations

from typing import Any

import pytest

from sessionstore import IncompatibleLayout, SessionStore, StoreConfig
from sessionstore._core import operations
from tests import backends
from tests.store.test_chunked_indexes import HOT_IP, index_keys, whole_listing

TENANT = "acme-corp"
SESSIONS = 400


@pytest.fixture
def config(prefix: str) -> StoreConfig:
    return StoreConfig(prefix=prefix, tenant_buckets=1)


def as_layout_2(client: Any, prefix: str) -> None:
    """Join every index's chunks into its first key, as layout 2 wrote it."""
    for name in (b"t", b"i"):
        base = f"{prefix}:{{{TENANT}:00}}:{name.decode()}".encode()
        chunks = [key for key in index_keys(client, prefix) if key.startswith(base)]
        entries = [entry for key in chunks for entry in client.zrange(key, 0, -1)]
        until = client.pexpiretime(base)
        for key in [*chunks, base + b":d", base + b":n"]:
            client.delete(key)
        client.zadd(base, dict.fromkeys(entries, 0))
        client.pexpireat(base, until)
    client.set(f"{prefix}:layout", b"2:1")


@pytest.fixture
def sessions(store: SessionStore, client: Any, prefix: str, clock: backends.Clock) -> list[str]:
    ids = []
    for user in range(SESSIONS):
        clock.advance(0.01)
        ip = HOT_IP if user % 3 == 0 else f"198.51.100.{user % 250}"
        ids.append(store.create(TENANT, user, ip_address=ip, user_agent="pytest")[0].id)
    as_layout_2(client, prefix)
    return ids


def test_a_store_refuses_layout_2_and_names_the_migration(
    client: Any, config: StoreConfig, sessions: list[str]
) -> None:
    fresh = SessionStore(client, config=config)
    with pytest.raises(IncompatibleLayout, match="sessionstore migrate"):
        fresh.list_sessions(TENANT)
    with pytest.raises(IncompatibleLayout):
        fresh.get(TENANT, sessions[0])


def test_migrate_puts_every_index_in_chunks_and_loses_nothing(
    client: Any, prefix: str, backend: str, config: StoreConfig, sessions: list[str]
) -> None:
    assert max(index_keys(client, prefix).values()) == SESSIONS  # one key per index
    store = SessionStore(client, config=config)
    assert store.migrate() == 1
    assert client.get(f"{prefix}:layout") == b"3:1"
    chunks = index_keys(client, prefix)
    assert max(chunks.values()) <= 128 and sum(chunks.values()) == 2 * SESSIONS
    if backend != "fake":  # the embedded server reports no encodings
        assert {client.object("encoding", key) for key in chunks} == {b"listpack"}
    assert whole_listing(store) == (sessions[::-1], {SESSIONS})
    hot = sessions[::3]
    assert whole_listing(store, ip_address=HOT_IP) == (hot[::-1], {len(hot)})
    assert store.migrate() == 1  # again: nothing left to do, nothing changes
    assert index_keys(client, prefix) == chunks


def test_a_migration_stopped_halfway_leaves_a_working_store_and_resumes(
    client: Any,
    prefix: str,
    config: StoreConfig,
    sessions: list[str],
    clock: backends.Clock,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(operations, "RECHUNK_BUDGET", 64)  # a step moves one chunk's half
    store = SessionStore(client, config=config, clock=clock)
    store._drive("migrate", store._core.begin_migration())
    created_index = store._core.keys.created_index(TENANT, "00")
    assert store._drive("migrate", store._core.rechunk(created_index))  # one step: more to do
    # Meanwhile the new version serves: creates, revocations, listings stay exact.
    clock.advance(0.01)
    newest = store.create(TENANT, 9_999, ip_address=HOT_IP, user_agent="pytest")[0].id
    assert store.revoke(TENANT, 0, sessions[0])
    live = [*sessions[1:], newest]
    assert whole_listing(store) == (live[::-1], {len(live)})
    assert store.migrate() == 1
    assert max(index_keys(client, prefix).values()) <= 128
    assert whole_listing(store) == (live[::-1], {len(live)})
