"""Redis Cluster beside a single Redis, in one run: validate and revoke_all latency, key spread.

    python -m benchmarks.cluster_compare [--redis-url URL] [--cluster-url URL] [--users N]

Both backends are timed with their runs interleaved (timing.compare), so a busy moment of
the machine hits both alike. Then N users log in on the cluster and each primary's share of
the keys is counted on the node itself. Every key written is deleted at the end.
"""

from __future__ import annotations

import argparse
import asyncio
import secrets
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from sessionstore import AsyncSessionStore, SessionStore, StoreConfig

from .bulk import delete_matching
from .timing import Effort, Stats, compare, compare_prepared
from .workload import TENANT, ip_address, user_agent

SESSIONS_PER_REVOKE_ALL = 10
PROBE_USERS = 200
CONCURRENT_LOGINS = 50  # within the async store's 64 connections: no login waits


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.cluster_compare")
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/0")
    parser.add_argument("--cluster-url", default="redis+cluster://127.0.0.1:7000")
    parser.add_argument("--users", type=int, default=10_000, help="users for the key spread")
    parser.add_argument("--seconds", type=float, default=1.0, help="length of one timed run")
    parser.add_argument("--runs", type=int, default=5)
    return parser.parse_args(argv)


@contextmanager
def store_at(url: str) -> Iterator[SessionStore]:
    """A store in a prefix of its own; every key under it is deleted on the way out."""
    prefix = f"ssclu-{secrets.token_hex(4)}"
    config = StoreConfig(prefix=prefix)
    store = SessionStore.from_url(url, config=config)
    try:
        yield store
    finally:
        delete_matching(store.client, f"{config.prefix}:*")
        store.close()


def login(store: SessionStore, user: int) -> tuple[Any, str]:
    address = ip_address(user % 1000)
    return store.create(TENANT, user, ip_address=address, user_agent=user_agent(user % 48))


def validate_call(store: SessionStore) -> Callable[[], object]:
    tokens = [login(store, user)[1] for user in range(PROBE_USERS)]
    position = iter(range(10**12))
    return lambda: store.validate(TENANT, tokens[next(position) % len(tokens)])


def revoke_all_call(store: SessionStore) -> Callable[[], Callable[[], object]]:
    users = iter(range(10**6, 10**12))

    def prepare() -> Callable[[], object]:
        user = next(users)
        for _ in range(SESSIONS_PER_REVOKE_ALL):
            login(store, user)
        return lambda: store.revoke_all(TENANT, user)

    return prepare


def latencies(single: SessionStore, cluster: SessionStore, effort: Effort) -> dict[str, Stats]:
    validates = compare(
        {"validate: single": validate_call(single), "validate: cluster": validate_call(cluster)},
        effort,
    )
    revokes = compare_prepared(
        {
            f"revoke_all ({SESSIONS_PER_REVOKE_ALL} sessions): single": revoke_all_call(single),
            f"revoke_all ({SESSIONS_PER_REVOKE_ALL} sessions): cluster": revoke_all_call(cluster),
        },
        effort,
    )
    return {**validates, **revokes}


async def log_in_many(url: str, config: StoreConfig, users: int) -> None:
    async with AsyncSessionStore.from_url(url, config=config) as store:
        for first in range(0, users, CONCURRENT_LOGINS):
            await asyncio.gather(
                *(
                    store.create(TENANT, user, ip_address=ip_address(user % 1000), user_agent="x")
                    for user in range(first, min(first + CONCURRENT_LOGINS, users))
                )
            )


def key_spread(url: str, users: int) -> dict[str, Counter[str]]:
    """Per primary, how many keys of each kind ``users`` logins leave (SCAN on the node)."""
    with store_at(url) as store:
        asyncio.run(log_in_many(url, store.config, users))
        pattern = f"{store.config.prefix}:*"
        spread: dict[str, Counter[str]] = {}
        for node in sorted(store.client.get_primaries(), key=lambda node: node.port):
            direct = store.client.get_redis_connection(node)
            spread[node.name] = Counter(map(kind, direct.scan_iter(match=pattern, count=1000)))
        return spread


KINDS = {
    b"s": "session",
    b"u": "user index",
    b"t": "created index",
    b"i": "ip index",
    b"x": "idle index",
}


def kind(key: bytes) -> str:
    """The kind of a key (the table in keys.py): the part after the hash tag names it."""
    if b"}:" not in key:
        return "layout" if key.endswith(b":layout") else "other"
    return KINDS.get(key.rsplit(b"}:", 1)[1].split(b":", 1)[0], "other")


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    effort = Effort(runs=args.runs, seconds=args.seconds, min_calls=20)
    with store_at(args.redis_url) as single, store_at(args.cluster_url) as cluster:
        print(f"{'operation':<44}{'p50 ms':>9}{'p99 ms':>9}{'ops/s':>10}")
        for name, stats in latencies(single, cluster, effort).items():
            print(f"{name:<44}{stats.p50_ms:>9.3f}{stats.p99_ms:>9.3f}{stats.ops_per_s:>10,.0f}")
    spread = key_spread(args.cluster_url, args.users)
    total = sum(sum(kinds.values()) for kinds in spread.values())
    print(f"\nkeys of {args.users:,} users (1 session each, 1000 IPs) per primary:")
    for node, kinds in spread.items():
        share = sum(kinds.values()) / total
        detail = ", ".join(f"{what} {count:,}" for what, count in sorted(kinds.items()))
        print(f"  {node}: {sum(kinds.values()):>6,} keys ({share:.1%})  {detail}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
