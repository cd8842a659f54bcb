"""Per-endpoint latency of the admin API: a real server process on a real Redis, over loopback.

    python benchmarks/api_latency.py [--redis-url redis://127.0.0.1:6379] [--requests 400]
                                     [--concurrency 8] [--users 400]

Starts `sessionstore serve` on a free port with a throwaway key prefix, seeds a tenant with
``users`` users of 5 sessions each, then sends ``requests`` requests per endpoint from
``concurrency`` workers (httpx, keep-alive) and prints p50/p99 per endpoint. The rate limits are
raised out of the way; everything the benchmark wrote is deleted at the end.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import re
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import httpx
import redis

from sessionstore import AsyncSessionStore, SessionStore, StoreConfig
from sessionstore.admin.apikeys import ApiKeys

TENANT = "bench"
SESSIONS_PER_USER = 5
UA = "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 Chrome/120.0 Safari/537.36"


def start_server(redis_url: str, prefix: str, log: Path) -> tuple[subprocess.Popen[bytes], str]:
    command = [sys.executable, "-m", "sessionstore.cli", "serve", "--port", "0"]
    command += ["--redis-url", redis_url, "--prefix", prefix]
    command += ["--rate-per-key", "1000000/1", "--rate-per-tenant", "1000000/1"]
    with log.open("wb") as err:
        server = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=err)
    for _ in range(300):
        match = re.search(r"Uvicorn running on (http://\S+)", log.read_text())
        if match:
            return server, match[1]
        time.sleep(0.05)
    server.kill()
    raise SystemExit(f"server did not start:\n{log.read_text()}")


def seed(store: SessionStore, users: int) -> dict[int, list[str]]:
    sessions: dict[int, list[str]] = {}
    for user_id in range(1, users + 1):
        sessions[user_id] = []
        for n in range(SESSIONS_PER_USER):
            ip = f"10.0.{user_id % 50}.{n}"
            session, _ = store.create(TENANT, user_id, ip_address=ip, user_agent=UA)
            sessions[user_id].append(session.id)
    return sessions


Request = tuple[str, str, dict[str, str]]  # method, path, headers


async def measure(
    http: httpx.AsyncClient, requests: list[tuple[str, Request]], concurrency: int
) -> dict[str, list[float]]:
    """Send the named requests in order from ``concurrency`` workers; timings by name."""
    queue = list(reversed(requests))
    timings: dict[str, list[float]] = {}

    async def worker() -> None:
        while queue:
            name, (method, path, headers) = queue.pop()
            started = time.perf_counter()
            response = await http.request(method, path, headers=headers)
            timings.setdefault(name, []).append((time.perf_counter() - started) * 1000)
            if response.status_code != (200 if headers else 401):
                raise SystemExit(f"{method} {path}: {response.status_code} {response.text}")

    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return timings


def workloads(
    sessions: dict[int, list[str]], key: str, count: int
) -> dict[str, Callable[[], list[Request]]]:
    base = f"/t/{TENANT}/api/v1/admin"
    auth = {"Authorization": f"Bearer {key}"}
    users = list(sessions)
    rng = random.Random(7)
    # Revocations consume what they revoke: users are split so no two workloads share one.
    revoke_one_users, revoke_all_users = users[: len(users) // 2], users[len(users) // 2 :]
    one = [(u, sid) for u in revoke_one_users for sid in sessions[u]][:count]
    return {
        # No key: answered 401 without touching Redis, so this is HTTP and framework cost only.
        "baseline: no key, 401": lambda: [("GET", f"{base}/sessions", {})] * count,
        "GET users/{id}/sessions": lambda: [
            ("GET", f"{base}/users/{rng.choice(users)}/sessions", auth) for _ in range(count)
        ],
        "GET sessions?limit=100": lambda: [("GET", f"{base}/sessions?limit=100", auth)] * count,
        "GET sessions?userId=": lambda: [
            ("GET", f"{base}/sessions?userId={rng.choice(users)}", auth) for _ in range(count)
        ],
        "GET sessions?ipAddress=&limit=20": lambda: [
            ("GET", f"{base}/sessions?ipAddress=10.0.{rng.randrange(50)}.0&limit=20", auth)
            for _ in range(count)
        ],
        "DELETE users/{id}/sessions/{sid}": lambda: [
            ("DELETE", f"{base}/users/{u}/sessions/{sid}", auth) for u, sid in one
        ],
        "DELETE users/{id}/sessions": lambda: [
            ("DELETE", f"{base}/users/{u}/sessions", auth) for u in revoke_all_users[:count]
        ],
    }


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


async def run(args: argparse.Namespace, url: str, key: str, sessions: dict) -> None:
    # All endpoints interleaved in one shuffled stream: background load on a shared machine
    # then weighs on every endpoint alike instead of on whichever ran during a busy spell.
    requests = [
        (name, request)
        for name, build in workloads(sessions, key, args.requests).items()
        for request in build()
    ]
    random.Random(11).shuffle(requests)
    limits = httpx.Limits(max_connections=args.concurrency)
    async with httpx.AsyncClient(base_url=url, limits=limits) as http:
        reads = [request for request in requests if request[1][0] == "GET"]
        await measure(http, reads[:50], 4)  # warm up: connections, script cache, imports
        started = time.perf_counter()
        timings = await measure(http, requests, args.concurrency)
        elapsed = time.perf_counter() - started
    print(f"{len(requests) / elapsed:.0f} requests/s overall")
    print(f"{'endpoint':34} {'n':>5} {'p50 ms':>8} {'p99 ms':>8} {'mean':>7}")
    for name in workloads(sessions, key, 0):
        values = timings[name]
        print(
            f"{name:34} {len(values):5d} {percentile(values, 0.5):8.2f} "
            f"{percentile(values, 0.99):8.2f} {statistics.fmean(values):7.2f}"
        )


async def mint(redis_url: str, prefix: str) -> str:
    async with AsyncSessionStore.from_url(redis_url) as store:
        return (await ApiKeys(store.client, prefix).create(TENANT))[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379")
    parser.add_argument("--requests", type=int, default=400)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--users", type=int, default=400)
    args = parser.parse_args()
    args.users = max(args.users, 2 * args.requests)  # each revocation workload needs its own

    prefix = "bench-" + uuid.uuid4().hex[:10]
    store = SessionStore.from_url(args.redis_url, config=StoreConfig(prefix=prefix))
    with tempfile.TemporaryDirectory() as tmp:
        server, url = start_server(args.redis_url, prefix, Path(tmp) / "server.log")
        try:
            sessions = seed(store, args.users)
            info = redis.Redis.from_url(args.redis_url).info("server")
            print(
                f"sessionstore admin API on Redis {info['redis_version']}, {args.users} users x "
                f"{SESSIONS_PER_USER} sessions, concurrency {args.concurrency}, loopback"
            )
            asyncio.run(run(args, url, asyncio.run(mint(args.redis_url, prefix)), sessions))
        finally:
            server.send_signal(signal.SIGTERM)
            server.wait(timeout=15)
            for key in store.client.scan_iter(match=f"{prefix}:*", count=1000):
                store.client.delete(key)
            store.close()


if __name__ == "__main__":
    main()
