"""What the worst events page costs Redis, and what it does to another tenant's calls.

    python benchmarks/events_page.py [--events 140000] [--pages 7] [--seconds 15]
                                     [--phases 2] [--a-workers 8] [--unlimited]

One private ``redis-server`` on a free loopback port (nothing else's commands in its counters).
Tenant A holds ``events`` session.created events (as many sessions, created through the
store's own flows, benchmarks/bulk.py); tenant B a few hundred sessions.

1. **The worst page**, oldest first and newest first (``order="desc"``):
   ``store.events(A, limit=1000, types=["session.revoked"])``, a filter matching none of A's
   events, from the start (the oldest, or the newest), ``pages`` times. Per page: Redis CPU
   from ``INFO commandstats`` (``usec`` of every command but INFO) and from ``INFO cpu`` (the
   process's user+sys, which includes reading requests and writing replies), stream entries
   read (the XRANGE and XREVRANGE replies, counted in the store's ``_run``), round trips, the
   items and whether a cursor came back; medians and maxima. Then the whole walk: every page
   of that filter until ``hasMore`` is false (how many pages, their Redis CPU in total), an
   unfiltered ``limit=1000`` first page (the common case), and a page by IP address (a filter
   checked on each entry read, within the same budget), each way.
2. **Fairness**: ``sessionstore serve --events`` on that Redis (default rate limits, or raised
   out of the way with ``--unlimited``). Tenant B sends ``GET users/{id}/sessions`` one at a
   time, 20 ms apart, and its latencies are kept; phases alternate quiet (B alone) and load
   (B while ``a-workers`` processes' tasks of tenant A ask for the worst page over and over,
   each waiting ``Retry-After`` when told 429). The figures: B's p50/p99 quiet and under load,
   the ratio of the p99s (also apart for the first BURST seconds of a load phase, when A's
   token buckets are full, and after), and what A got (pages answered, 429s, its median page
   time as A's client saw it).

Timings are printed, never asserted. The server and Redis are stopped at the end.
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import random
import re
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import httpx

from benchmarks.bulk import create_many
from benchmarks.workload import COMMON_USER_AGENTS, NewSession, background
from sessionstore import AsyncSessionStore, SessionStore, StoreConfig
from sessionstore._core.flows import Batch, Command
from sessionstore.admin.apikeys import ApiKeys
from tests.reliability.servers import NO_PERSISTENCE, start_server

PREFIX = "evpage"
TENANT_A = "tenant-a"
TENANT_B = "tenant-b"
B_USERS = 300
NOTHING = "session.revoked"  # nobody revokes here: a filter that matches none of A's events
RARE_IP = "192.0.2.99"  # no session of A comes from it: a page by IP that reads its budget
LIMIT = 1000
B_PACE = 0.02
BURST = 5.0  # seconds of a load phase reported apart: A spends its full token buckets


# -- 1. the worst page ----------------------------------------------------------------------------


READS = ("XRANGE", "XREVRANGE")  # a page's reads, oldest first and newest first
ORDERS = ("asc", "desc")
CURSOR = {"asc": "after", "desc": "before"}  # where each order's next page starts


class Counted:
    """The store's ``_run``, counting round trips and the stream entries its reads answered."""

    def __init__(self, store: SessionStore) -> None:
        self.store = store
        self.inner = store._run  # private on purpose: what the page sends is the measure
        self.round_trips = 0
        self.entries = 0
        store._run = self  # type: ignore[method-assign]

    def __call__(self, batch: Batch) -> list[Any]:
        replies = self.inner(batch)
        self.round_trips += 1
        for call, reply in zip(batch, replies, strict=True):
            if isinstance(call, Command) and call.args[0] in READS:
                self.entries += len(reply)
        return replies

    def reset(self) -> None:
        self.round_trips = self.entries = 0


def redis_cpu(client: Any) -> tuple[float, float]:
    """(µs of every command but INFO by INFO commandstats, µs of the process by INFO cpu)."""
    stats = client.info("commandstats")
    usec = sum(v["usec"] for k, v in stats.items() if k != "cmdstat_info")
    cpu = client.info("cpu")
    return usec, (cpu["used_cpu_user"] + cpu["used_cpu_sys"]) * 1e6


def one_page(
    store: SessionStore, counted: Counted, **query: Any
) -> tuple[dict[str, float], str | None]:
    counted.reset()
    before = redis_cpu(store.client)
    started = time.perf_counter()
    page = store.events(TENANT_A, limit=LIMIT, **query)
    wall = time.perf_counter() - started
    after = redis_cpu(store.client)
    return {
        "commandstats_ms": (after[0] - before[0]) / 1000,
        "process_cpu_ms": (after[1] - before[1]) / 1000,
        "wall_ms": wall * 1000,
        "entries": counted.entries,
        "round_trips": counted.round_trips,
        "items": len(page.data),
        "cursor": page.next_cursor is not None,
    }, page.next_cursor


def worst_page(store: SessionStore, pages: int) -> None:
    counted = Counted(store)
    store.events(TENANT_A, limit=1)  # the layout check, once per store, outside the measure
    for order in ORDERS:
        worst_page_one_way(store, counted, pages, order)
    store._run = counted.inner  # type: ignore[method-assign]


def worst_page_one_way(store: SessionStore, counted: Counted, pages: int, order: str) -> None:
    runs = [one_page(store, counted, types=[NOTHING], order=order)[0] for _ in range(pages)]
    print(
        f"worst page, order={order}: limit={LIMIT}, type={NOTHING} (matches none), from the "
        f"{'oldest' if order == 'asc' else 'newest'}, x{pages}"
    )
    for name in ("commandstats_ms", "process_cpu_ms", "wall_ms", "entries", "round_trips"):
        values = [run[name] for run in runs]
        print(
            f"  {name:16} median {statistics.median(values):10.2f}   max {max(values):10.2f}"
            f"   all {', '.join(f'{v:.1f}' for v in values)}"
        )
    print(f"  items {runs[0]['items']}, next cursor: {runs[0]['cursor']}")
    # The whole walk with that filter: every page until hasMore is false.
    walk: list[dict[str, float]] = []
    cursor = None
    while True:
        run, cursor = one_page(
            store, counted, types=[NOTHING], order=order, **{CURSOR[order]: cursor}
        )
        walk.append(run)
        if cursor is None:
            break
    print(
        f"  the whole walk: {len(walk)} pages, {sum(r['items'] for r in walk):.0f} items, "
        f"{sum(r['entries'] for r in walk):,.0f} entries (max {max(r['entries'] for r in walk):.0f}"
        f" a page), round trips max {max(r['round_trips'] for r in walk):.0f} a page, "
        f"{sum(r['commandstats_ms'] for r in walk):.1f} ms commandstats, "
        f"{sum(r['process_cpu_ms'] for r in walk):.1f} ms process CPU, "
        f"{sum(r['wall_ms'] for r in walk):.0f} ms wall, max page "
        f"{max(r['commandstats_ms'] for r in walk):.2f} ms commandstats"
    )
    for label, query in (
        ("unfiltered", {}),
        (f"ipAddress={RARE_IP} (matches none)", {"ip_address": RARE_IP}),
    ):
        plain = [one_page(store, counted, order=order, **query)[0] for _ in range(pages)]
        print(
            f"  {label} limit={LIMIT} first page: commandstats median "
            f"{statistics.median(r['commandstats_ms'] for r in plain):.2f} ms, entries "
            f"{statistics.median(r['entries'] for r in plain):.0f}, round trips "
            f"{statistics.median(r['round_trips'] for r in plain):.0f}, items "
            f"{plain[0]['items']:.0f}, cursor {plain[0]['cursor']}"
        )


# -- 2. fairness ----------------------------------------------------------------------------------


def start_admin(redis_url: str, log: Path, unlimited: bool) -> tuple[subprocess.Popen[bytes], str]:
    command = [sys.executable, "-m", "sessionstore.cli", "serve", "--port", "0", "--events"]
    command += ["--redis-url", redis_url, "--prefix", PREFIX, "--sweep-every", "3600"]
    if unlimited:
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


async def mint(redis_url: str) -> dict[str, str]:
    async with AsyncSessionStore.from_url(redis_url) as store:
        keys = ApiKeys(store.client, PREFIX)
        return {tenant: (await keys.create(tenant))[1] for tenant in (TENANT_A, TENANT_B)}


def tenant_a(url: str, key: str, workers: int, ready: Any, stop: Any, results: Any) -> None:
    """A separate process: ``workers`` tasks asking for the worst page until told to stop."""

    async def run() -> dict[str, Any]:
        path = f"/t/{TENANT_A}/api/v1/admin/events?limit={LIMIT}&type={NOTHING}"
        counts: dict[int, int] = {}
        times: list[float] = []
        limits = httpx.Limits(max_connections=workers)
        async with httpx.AsyncClient(base_url=url, limits=limits, timeout=120) as http:

            async def worker() -> None:
                while not stop.is_set():
                    started = time.perf_counter()
                    try:
                        response = await http.get(path, headers={"Authorization": f"Bearer {key}"})
                    except httpx.HTTPError:
                        counts[0] = counts.get(0, 0) + 1  # 0: no answer
                        await asyncio.sleep(1)
                        continue
                    counts[response.status_code] = counts.get(response.status_code, 0) + 1
                    if response.status_code == 429:
                        await asyncio.sleep(float(response.headers.get("retry-after", "1")))
                    else:
                        times.append((time.perf_counter() - started) * 1000)

            ready.set()
            await asyncio.gather(*(worker() for _ in range(workers)))
        return {"statuses": counts, "page_ms": statistics.median(times) if times else None}

    results.put(asyncio.run(run()))


async def tenant_b(
    url: str, key: str, seconds: float, statuses: dict[int, int] | None = None
) -> list[tuple[float, float]]:
    """B's calls, one at a time, B_PACE apart: (seconds into the run, latency in ms) of each,
    whatever the answer (a 503 when the server's Redis calls time out is counted in
    ``statuses`` too)."""
    rng = random.Random(5)
    latencies: list[tuple[float, float]] = []
    statuses = {} if statuses is None else statuses
    headers = {"Authorization": f"Bearer {key}"}
    async with httpx.AsyncClient(base_url=url, timeout=120) as http:
        begun = time.perf_counter()
        deadline = begun + seconds
        while time.perf_counter() < deadline:
            path = f"/t/{TENANT_B}/api/v1/admin/users/{rng.randrange(1, B_USERS + 1)}/sessions"
            started = time.perf_counter()
            response = await http.get(path, headers=headers)
            latencies.append((started - begun, (time.perf_counter() - started) * 1000))
            statuses[response.status_code] = statuses.get(response.status_code, 0) + 1
            await asyncio.sleep(B_PACE)
    return latencies


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


def fairness(redis_url: str, args: argparse.Namespace, directory: Path) -> None:
    server, url = start_admin(redis_url, directory / "server.log", args.unlimited)
    try:
        keys = asyncio.run(mint(redis_url))
        asyncio.run(tenant_b(url, keys[TENANT_B], 1.0))  # warm up: connections, scripts
        quiet: list[tuple[float, float]] = []
        loaded: list[tuple[float, float]] = []
        b_statuses: dict[str, dict[int, int]] = {"quiet": {}, "loaded": {}}
        a_results: list[dict[str, Any]] = []
        context = multiprocessing.get_context("spawn")
        for _ in range(args.phases):
            quiet += asyncio.run(tenant_b(url, keys[TENANT_B], args.seconds, b_statuses["quiet"]))
            ready, stop, results = context.Event(), context.Event(), context.Queue()
            load = context.Process(
                target=tenant_a,
                args=(url, keys[TENANT_A], args.a_workers, ready, stop, results),
            )
            load.start()
            ready.wait(30)
            time.sleep(0.5)  # A's first pages are in flight
            loaded += asyncio.run(tenant_b(url, keys[TENANT_B], args.seconds, b_statuses["loaded"]))
            stop.set()
            a_results.append(results.get(timeout=300))
            load.join(60)
        limits = "raised out of the way" if args.unlimited else "default"
        print(
            f"fairness: admin server (rate limits {limits}); B: GET users/{{id}}/sessions every "
            f"{B_PACE * 1000:.0f} ms; A: {args.a_workers} tasks of the worst page; "
            f"{args.phases} x ({args.seconds:.0f} s quiet, {args.seconds:.0f} s loaded)"
        )
        for name, timed in (("quiet", quiet), ("loaded", loaded)):
            values = [ms for _, ms in timed]
            print(
                f"  B {name:6}: n={len(values):5d} p50 {percentile(values, 0.5):8.2f} ms  "
                f"p99 {percentile(values, 0.99):9.2f} ms  max {max(values):9.2f} ms  "
                f"statuses {b_statuses[name]}"
            )
        quiet_p99 = percentile([ms for _, ms in quiet], 0.99)
        ratio = percentile([ms for _, ms in loaded], 0.99) / quiet_p99
        print(f"  B p99 loaded / quiet: {ratio:.2f}x (target <= 2x)")
        # A's token buckets are full when it starts (a burst of pages), then it runs at its rate.
        for label, chosen in (
            (f"first {BURST:.0f} s of each load phase", [ms for at, ms in loaded if at < BURST]),
            (f"after {BURST:.0f} s", [ms for at, ms in loaded if at >= BURST]),
        ):
            if chosen:
                print(
                    f"    B loaded, {label}: n={len(chosen)} p99 {percentile(chosen, 0.99):.2f} "
                    f"ms ({percentile(chosen, 0.99) / quiet_p99:.2f}x quiet)"
                )
        for phase, result in enumerate(a_results, 1):
            page_ms = result["page_ms"]
            shown = "n/a" if page_ms is None else f"{page_ms:.1f} ms"
            print(f"  A in phase {phase}: statuses {result['statuses']}, median page {shown}")
    finally:
        server.send_signal(signal.SIGTERM)
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()


def seed(store: SessionStore, events: int) -> None:
    started = time.perf_counter()
    create_many(store, background(0, events, tenant=TENANT_A))
    create_many(
        store,
        (
            NewSession(TENANT_B, user, f"10.9.{user % 250}.1", COMMON_USER_AGENTS[user % 48])
            for user in range(1, B_USERS + 1)
            for _ in range(2)
        ),
    )
    print(f"seeded {events:,} events of {TENANT_A} in {time.perf_counter() - started:.1f} s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=140_000)
    parser.add_argument("--pages", type=int, default=7)
    parser.add_argument("--seconds", type=float, default=15)
    parser.add_argument("--phases", type=int, default=2)
    parser.add_argument("--a-workers", type=int, default=8)
    parser.add_argument("--unlimited", action="store_true", help="raise the rate limits")
    parser.add_argument("--skip-fairness", action="store_true")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as name:
        directory = Path(name)
        server = start_server(directory / "redis", *NO_PERSISTENCE)
        try:
            store = SessionStore.from_url(
                server.url, config=StoreConfig(prefix=PREFIX, events=True)
            )
            seed(store, args.events)
            worst_page(store, args.pages)
            store.close()
            if not args.skip_fairness:
                fairness(server.url, args, directory)
        finally:
            server.stop()


if __name__ == "__main__":
    main()
