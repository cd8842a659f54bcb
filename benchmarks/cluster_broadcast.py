"""Messages a change sends over the Redis Cluster bus: what invalidating near caches costs.

    python -m benchmarks.cluster_broadcast [--cluster-url URL] [--changes N] [--visibility N]

A classic PUBLISH reaches every node: the node that runs it sends one cluster-bus message to
each other node (``cluster_stats_messages_publish_sent`` in CLUSTER INFO), so its cost grows with
the cluster. Sharded messages (SPUBLISH) stay in their shard: the primary sends one to each of
its own replicas (``cluster_stats_messages_publishshard_sent``), whatever the cluster's size.
This logs N users in and out (create, then a touch, then revoke) and reads both counters,
summed over every node, before and after: the messages per change. Every key written is
deleted at the end.

The scripts publish sharded since issue 22: measured here on 3 primaries with one replica each,
5.00 classic messages per login+touch+revoke before (the revoke's PUBLISH to the 5 other
nodes), 0 after, and 1 sharded message (to the shard's replica).

With ``--visibility N``, also the near cache's revocation visibility on the cluster over N
sessions (``benchmarks/near_cache.py``, section 2): process B validates from its cache while
process A revokes, B's first refusal minus A's return.
"""

from __future__ import annotations

import argparse
import secrets
from datetime import timedelta
from typing import Any

from sessionstore import SessionStore, StoreConfig

from .bulk import delete_matching
from .workload import TENANT

COUNTERS = ("publish", "publishshard")


def bus_messages(client: Any) -> dict[str, int]:
    """Cluster-bus messages of each kind sent so far, summed over every node."""
    totals = dict.fromkeys(COUNTERS, 0)
    for node in client.get_nodes():
        info = node.redis_connection.execute_command("CLUSTER INFO")
        if isinstance(info, bytes | str):  # raw text, where no callback parsed it
            text = info.decode() if isinstance(info, bytes) else info
            info = dict(line.split(":", 1) for line in text.splitlines() if ":" in line)
        for kind in COUNTERS:
            totals[kind] += int(info.get(f"cluster_stats_messages_{kind}_sent", 0))
    return totals


def measure(url: str, changes: int) -> dict[str, Any]:
    prefix = f"bench-bus-{secrets.token_hex(4)}"
    config = StoreConfig(prefix=prefix, touch_interval=timedelta(0))
    with SessionStore.from_url(url, config=config) as store:
        try:
            store.validate(TENANT, "sst_" + "a" * 2 + "B" * 54)  # the layout check, not counted
            before = bus_messages(store.client)
            for user in range(changes):
                session, token = store.create(
                    TENANT, user, ip_address="203.0.113.9", user_agent="x"
                )
                store.validate(TENANT, token)  # a touch (touch_interval 0)
                store.revoke(TENANT, user, session.id)
            after = bus_messages(store.client)
            nodes = len(store.client.get_nodes())  # while the client is open
        finally:
            delete_matching(store.client, f"{prefix}:*")
    sent = {kind: after[kind] - before[kind] for kind in COUNTERS}
    return {
        "nodes": nodes,
        "changes": changes,
        "per_login_touch_revoke": {kind: count / changes for kind, count in sent.items()},
    }


def visibility(url: str, trials: int) -> dict[str, Any]:
    from . import near_cache

    prefix = f"bench-busvis-{secrets.token_hex(4)}"
    try:
        return near_cache.visibility(url, prefix, trials)
    finally:
        near_cache.cleanup(url, prefix)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cluster-url", default="redis+cluster://127.0.0.1:7000")
    parser.add_argument("--changes", type=int, default=200)
    parser.add_argument("--visibility", type=int, default=0, metavar="N")
    options = parser.parse_args()
    result = measure(options.cluster_url, options.changes)
    print(f"{result['nodes']} nodes, {result['changes']} logins, each touched then revoked:")
    for kind, per in result["per_login_touch_revoke"].items():
        print(f"  cluster-bus {kind} messages sent per login+touch+revoke: {per:.2f}")
    if options.visibility:
        seen = visibility(options.cluster_url, options.visibility)
        print(
            f"near-cache revocation visibility on the cluster, {seen['seen']}/{seen['trials']} "
            f"seen: p50 {seen['p50 ms']:.2f} ms, p99 {seen['p99 ms']:.2f} ms, "
            f"max {seen['max ms']:.2f} ms (B validating {seen['B validations/s']:.0f}/s)"
        )


if __name__ == "__main__":
    main()
