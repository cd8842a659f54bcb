"""What recording events costs: create and revoke with events on and off, and bytes per event.

    python benchmarks/events_cost.py [--ops 3000] [--rounds 5]

Two stores on one private ``redis-server`` on a free loopback port (a shared server's other
clients would blur a 10% difference), one with ``StoreConfig(events=True)``, take turns: each round
times ``ops`` creates (and then ``ops`` revokes of those sessions) on one store, then on the
other, so both see the same machine; the figures are the medians over the rounds and the
ratio on/off, for throughput and for the Redis CPU of the scripts (``INFO commandstats``: what
a busy machine's noise does not blur). Memory per event is ``MEMORY USAGE`` of every event
stream over the events in them, after the rounds. Validate is not measured here: a touch
writes no event (tests). The server is stopped at the end.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sessionstore import SessionStore, StoreConfig
from tests.reliability.servers import NO_PERSISTENCE, start_server

TENANT = "bench"
UA = "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 Chrome/120.0 Safari/537.36"


def _script_usec(store: SessionStore) -> tuple[float, float]:
    stats = store.client.info("commandstats").get("cmdstat_evalsha", {})
    return stats.get("usec", 0), stats.get("calls", 0)


def rates(store: SessionStore, ops: int, first_user: int) -> list[float]:
    """create ops/s, revoke ops/s, and Redis CPU µs per create and per revoke script."""
    before = _script_usec(store)
    started = time.perf_counter()
    made = [
        store.create(TENANT, first_user + n, ip_address=f"10.1.{n % 250}.9", user_agent=UA)[0]
        for n in range(ops)
    ]
    created = time.perf_counter() - started
    middle = _script_usec(store)
    started = time.perf_counter()
    for session in made:
        store.revoke(TENANT, session.user_id, session.id)
    revoked = time.perf_counter() - started
    after = _script_usec(store)
    return [
        ops / created,
        ops / revoked,
        (middle[0] - before[0]) / (middle[1] - before[1]),
        (after[0] - middle[0]) / (after[1] - middle[1]),
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ops", type=int, default=3000)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    results: dict[bool, list[list[float]]] = {False: [], True: []}
    with tempfile.TemporaryDirectory() as directory:
        server = start_server(Path(directory), *NO_PERSISTENCE)
        try:
            stores = {
                on: SessionStore.from_url(
                    server.url, config=StoreConfig(prefix=f"ev{on:d}", events=on)
                )
                for on in (False, True)
            }
            for round_ in range(args.rounds):
                for on in (False, True) if round_ % 2 == 0 else (True, False):
                    results[on].append(rates(stores[on], args.ops, round_ * args.ops))
            client = stores[True].client
            streams = list(client.scan_iter(match="ev1:*:e", count=1000))
            events = sum(client.xlen(key) for key in streams)
            used = sum(client.memory_usage(key, samples=0) or 0 for key in streams)
            for store in stores.values():
                store.close()
        finally:
            server.stop()
    print(f"{args.rounds} rounds of {args.ops:,} creates then revokes per store, alternating")
    for index, name in ((0, "create ops/s"), (1, "revoke ops/s"), (2, "create script µs"),
                        (3, "revoke script µs")):  # fmt: skip
        off = statistics.median(rate[index] for rate in results[False])
        on = statistics.median(rate[index] for rate in results[True])
        print(f"  {name}: {off:,.1f} off, {on:,.1f} on: {on / off:.2f}x")
    print(
        f"  memory: {used / max(events, 1):.0f} bytes per event ({events:,} events, "
        f"{len(streams)} streams, MEMORY USAGE)"
    )


if __name__ == "__main__":
    main()
