"""The near cache, measured: hits against Flask-Session, revocation visibility, a mixed load.

    python benchmarks/near_cache.py [--redis-url redis://127.0.0.1:6379]
                                    [--cluster-url redis://127.0.0.1:7000] [--trials 300]

1. Hits: a warmed store with ``near_cache_size`` validates 1,000 sessions round-robin, in runs
   interleaved with Flask-Session's load by id (its RedisSessionInterface, as ``open_session``
   does) of 1,000 sessions on the same Redis; medians of the runs, and their ratio.
2. Revocation visibility: process B validates one token about every 0.25 ms (a few thousand
   validations a second, as a busy web process would, all from its cache, sleeping between
   them as a server waits for its next request); process A revokes it and notes when the
   revoke returned; B notes the first validation that refuses it. (A loop that never lets go
   of the GIL delays the subscriber thread by Python's switch interval, 5 ms.) Reported:
   p50, p99 and max of (B's refusal - A's return) over ``trials`` sessions, on Redis and on the
   cluster. Negative values mean B refused before A's reply arrived.
3. Mixed: 10,000 users with one session each, requests drawn from a Zipf distribution
   (s = 1.1), 1% of requests revoke the requested session and log the user in again; the same
   request sequence runs with and without the near cache: throughput and hit rate.
4. max_age: the same Zipf requests (no revocations) for 15 s with the default
   ``near_cache_max_age`` (5 s) and with 1 hour: the hit rate the bound on changes made
   outside the scripts costs.

Everything runs under throwaway prefixes, deleted at the end.
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import random
import secrets
import statistics
import sys
import time
import uuid
from datetime import timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sessionstore import SessionStore, StoreConfig, _connection

TENANT = "bench"
PACE = 0.00025  # seconds B waits between validations
UA = "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 Chrome/120.0 Safari/537.36"


def _store(url: str, prefix: str, near: int, max_age: float = 5.0) -> SessionStore:
    config = StoreConfig(
        prefix=prefix, near_cache_size=near, near_cache_max_age=timedelta(seconds=max_age)
    )
    return SessionStore.from_url(url, config=config)


def _trusted(store: SessionStore) -> None:
    deadline = time.monotonic() + 5
    while not store.near_cache_stats().trusted:
        if time.monotonic() > deadline:
            raise SystemExit("near cache subscriber did not come up")
        time.sleep(0.01)


def cleanup(url: str, prefix: str) -> None:
    client = _connection.sync_client(url)
    keys = list(client.scan_iter(match=f"{prefix}:*", count=1000))
    for first in range(0, len(keys), 500):
        for key in keys[first : first + 500]:
            client.delete(key)  # one by one: a cluster refuses a DEL across slots
    client.close()


# -- 1. hits against Flask-Session -------------------------------------------------------------


def hits(
    url: str, prefix: str, sessions: int = 1000, ops: int = 20_000, runs: int = 5
) -> dict[str, float]:
    from flask import Flask
    from flask_session.redis import RedisSessionInterface

    store = _store(url, prefix, near=sessions * 2)
    _trusted(store)
    tokens = [
        store.create(TENANT, n, ip_address="10.0.0.1", user_agent=UA)[1] for n in range(sessions)
    ]
    for token in tokens:
        store.validate(TENANT, token)
    raw = _connection.sync_client(url)
    interface = RedisSessionInterface(Flask("bench"), client=raw, key_prefix=f"{prefix}:flask:")
    ids = []
    for n in range(sessions):
        sid = secrets.token_urlsafe(32)
        session = interface.session_class({"userId": n, "ipAddress": "10.0.0.1"}, sid=sid)
        interface._upsert_session(store.config.lifetime, session, interface._get_store_id(sid))
        ids.append(sid)

    def ours() -> float:
        started = time.perf_counter()
        for n in range(ops):
            store.validate(TENANT, tokens[n % sessions])
        return ops / (time.perf_counter() - started)

    def flask() -> float:
        started = time.perf_counter()
        for n in range(ops // 10):
            sid = ids[n % sessions]
            data = interface._retrieve_session_data(interface._get_store_id(sid))
            interface.session_class(data, sid=sid)
        return (ops // 10) / (time.perf_counter() - started)

    ours_runs, flask_runs = [], []
    for _ in range(runs):
        ours_runs.append(ours())
        flask_runs.append(flask())
    stats = store.near_cache_stats()
    store.close()
    raw.close()
    return {
        "near cache validate ops/s": statistics.median(ours_runs),
        "Flask-Session load ops/s": statistics.median(flask_runs),
        "hit share": stats.hits / max(stats.hits + stats.misses, 1),
    }


# -- 2. revocation visibility ------------------------------------------------------------------


def _validator(
    url: str, prefix: str, tokens: list[str], current: Any, refused: Any, rate: Any
) -> None:
    store = _store(url, prefix, near=len(tokens) * 2)
    _trusted(store)
    for token in tokens:
        store.validate(TENANT, token)
    rate.value = -1.0  # ready
    done, calls, started = set(), 0, time.perf_counter()
    while len(done) < len(tokens):
        index = current.value
        if index < 0:
            break
        if store.validate(TENANT, tokens[index]) is None and index not in done:
            refused[index] = time.time()
            done.add(index)
        calls += 1
        time.sleep(PACE)
    rate.value = calls / (time.perf_counter() - started)
    store.close()


def visibility(url: str, prefix: str, trials: int) -> dict:
    store = _store(url, prefix, near=0)
    made = [store.create(TENANT, n, ip_address="10.0.0.2", user_agent=UA) for n in range(trials)]
    tokens = [token for _, token in made]
    context = mp.get_context("spawn")
    current = context.Value("i", 0)
    refused = context.Array("d", trials)
    rate = context.Value("d", 0.0)
    process = context.Process(
        target=_validator, args=(url, prefix, tokens, current, refused, rate), daemon=True
    )
    process.start()
    while rate.value != -1.0:
        time.sleep(0.01)
    returned = []
    for index, (session, _) in enumerate(made):
        current.value = index
        time.sleep(0.005)  # B is hitting this token from its cache
        store.revoke(TENANT, session.user_id, session.id)
        returned.append(time.time())
        deadline = time.monotonic() + 2
        while refused[index] == 0 and time.monotonic() < deadline:
            time.sleep(0.0005)
    current.value = -1
    process.join(timeout=10)
    store.close()
    delays = sorted((refused[i] - returned[i]) * 1000 for i in range(trials) if refused[i])
    return {
        "trials": trials,
        "seen": len(delays),
        "p50 ms": statistics.median(delays),
        "p99 ms": delays[min(len(delays) - 1, int(len(delays) * 0.99))],
        "max ms": delays[-1],
        "B validations/s": rate.value,
    }


# -- 3. mixed Zipf workload --------------------------------------------------------------------


def mixed(url: str, prefix: str, users: int = 10_000, requests: int = 50_000) -> dict:
    rng = random.Random(7)
    weights = [1 / (rank**1.1) for rank in range(1, users + 1)]
    sequence = rng.choices(range(users), weights=weights, k=requests)
    revoke = [rng.random() < 0.01 for _ in range(requests)]
    results = {}
    for near in (0, users):
        store = _store(url, f"{prefix}-{near}", near=near)
        if near:
            _trusted(store)
        tokens = {
            user: store.create(TENANT, user, ip_address="10.0.0.3", user_agent=UA)
            for user in range(users)
        }
        started = time.perf_counter()
        for user, ends in zip(sequence, revoke, strict=True):
            session, token = tokens[user]
            if ends:
                store.revoke(TENANT, user, session.id)
                tokens[user] = store.create(TENANT, user, ip_address="10.0.0.3", user_agent=UA)
            elif store.validate(TENANT, token) is None:
                raise SystemExit(f"a live session was refused (user {user})")
        elapsed = time.perf_counter() - started
        stats = store.near_cache_stats()
        results["with" if near else "without"] = {
            "requests/s": requests / elapsed,
            "hit rate": stats.hits / max(stats.hits + stats.misses, 1) if near else 0.0,
        }
        store.close()
        cleanup(url, f"{prefix}-{near}")
    return results


def max_age_hits(url: str, prefix: str, users: int = 10_000, seconds: float = 15.0) -> dict:
    """The Zipf workload of ``mixed`` (no revocations) for ``seconds``, with the default
    ``near_cache_max_age`` (5 s) and with 1 hour, side by side: the hit rate the bound costs."""
    rng = random.Random(11)
    weights = [1 / (rank**1.1) for rank in range(1, users + 1)]
    sequence = rng.choices(range(users), weights=weights, k=100_000)
    results = {}
    for max_age in (5.0, 3600.0):
        store = _store(url, f"{prefix}-{int(max_age)}", near=users, max_age=max_age)
        _trusted(store)
        tokens = [
            store.create(TENANT, user, ip_address="10.0.0.3", user_agent=UA)[1]
            for user in range(users)
        ]
        before = store.near_cache_stats()
        deadline, served = time.perf_counter() + seconds, 0
        while time.perf_counter() < deadline:
            for user in sequence[served % len(sequence) : served % len(sequence) + 1000]:
                store.validate(TENANT, tokens[user])
            served += 1000
        stats = store.near_cache_stats()
        hits, misses = stats.hits - before.hits, stats.misses - before.misses
        results[f"max_age {max_age:g} s"] = {
            "requests": served,
            "hit rate": hits / max(hits + misses, 1),
        }
        store.close()
        cleanup(url, f"{prefix}-{int(max_age)}")
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379")
    parser.add_argument("--cluster-url", default=None, help="redis://host:port of a cluster")
    parser.add_argument("--trials", type=int, default=300)
    args = parser.parse_args()
    prefix = f"bench-nc-{uuid.uuid4().hex[:8]}"
    try:
        print("1. hits:", hits(args.redis_url, f"{prefix}-hits"))
        print("2. visibility, Redis:", visibility(args.redis_url, f"{prefix}-vis", args.trials))
        if args.cluster_url:
            cluster = "redis+cluster://" + args.cluster_url.split("://", 1)[-1]
            print("2. visibility, cluster:", visibility(cluster, f"{prefix}-cvis", args.trials))
        print("3. mixed:", mixed(args.redis_url, f"{prefix}-mix"))
        print("4. max_age:", max_age_hits(args.redis_url, f"{prefix}-age"))
    finally:
        for part in ("hits", "vis"):
            cleanup(args.redis_url, f"{prefix}-{part}")
        if args.cluster_url:
            cleanup("redis+cluster://" + args.cluster_url.split("://", 1)[-1], f"{prefix}-cvis")


if __name__ == "__main__":
    main()
