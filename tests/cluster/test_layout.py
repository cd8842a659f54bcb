"""Where the keys land on a real cluster, asked of the nodes themselves (not of redis-py's map)."""

from __future__ import annotations

from collections import defaultdict
from typing import Any

import pytest

from sessionstore import SessionStore, StoreConfig
from sessionstore._core.keys import KeySpace, random_part
from sessionstore._core.tokens import BUCKET

pytestmark = pytest.mark.cluster

TENANT = "acme-corp"


def keys_by_node(client: Any, prefix: str) -> dict[str, set[bytes]]:
    """Each primary's own keys under ``prefix``, from a SCAN run on that node alone."""
    found = {}
    for node in client.get_primaries():
        direct = client.get_redis_connection(node)
        found[node.name] = set(direct.scan_iter(match=f"{prefix}:*", count=1000))
    return found


def node_of(located: dict[str, set[bytes]], key: str) -> str:
    (node,) = [name for name, keys in located.items() if key.encode() in keys]
    return node


def test_a_session_and_its_index_entries_sit_on_one_node_and_buckets_on_all(
    store: SessionStore, client: Any, prefix: str, config: StoreConfig
) -> None:
    created = [
        store.create(TENANT, user, ip_address="203.0.113.9", user_agent="curl/8")
        for user in range(48)
    ]
    keys = KeySpace(config.prefix, config.tenant_buckets)
    located = keys_by_node(client, prefix)

    for session, _ in created:
        bucket = session.id[BUCKET]
        node = node_of(located, keys.session(TENANT, session.id))
        assert node_of(located, keys.user_index(TENANT, session.user_id)) == node
        assert node_of(located, keys.created_index(TENANT, bucket)) == node
        assert node_of(located, keys.ip_index(TENANT, bucket)) == node
    nodes = {node_of(located, keys.session(TENANT, s.id)) for s, _ in created}
    assert nodes == set(located) and len(nodes) == 3

    # The admin listing merges buckets of every node, newest first, each session once.
    listed, cursor = [], None
    while True:
        page = store.list_sessions(TENANT, limit=7, cursor=cursor)
        assert page.total_count == len(created)
        listed += page.data
        if page.next_cursor is None:
            break
        cursor = page.next_cursor
    newest_first = sorted(
        (s for s, _ in created), key=lambda s: (s.created_at, random_part(s.id)), reverse=True
    )
    assert [s.id for s in listed] == [s.id for s in newest_first]


def test_ten_thousand_users_spread_evenly_over_the_primaries(
    store: SessionStore, client: Any, prefix: str
) -> None:
    """The issue's bar: within 1.2x of an even spread (128 buckets per tenant)."""
    for user in range(10_000):
        store.create(TENANT, user, ip_address="198.51.100.7", user_agent="curl/8")
    per_node: dict[str, int] = defaultdict(int)
    for node, keys in keys_by_node(client, prefix).items():
        per_node[node] = sum(b":s:" in key for key in keys)
    assert sum(per_node.values()) == 10_000
    assert max(per_node.values()) <= 1.2 * 10_000 / 3, per_node


def test_listing_by_ip_reads_sessions_on_other_nodes(store: SessionStore) -> None:
    # One IP index, sessions of users whose keys sit on every node.
    created = {
        store.create(TENANT, user, ip_address="192.0.2.1", user_agent="x")[0].id
        for user in range(30)
    }
    page = store.list_sessions(TENANT, ip_address="192.0.2.1", limit=1000)
    assert {session.id for session in page.data} == created
