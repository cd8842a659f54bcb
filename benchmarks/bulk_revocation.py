"""Bulk revocation: every session from one IP, and how long any one script held Redis.

    python benchmarks/bulk_revocation.py [--sessions 10000] [--background 10000] [--runs 5]

Starts a private ``redis-server`` on a free loopback port (so SLOWLOG can record every command
without touching a shared server), loads ``sessions`` sessions from one IP (one per user, the
users spread over every bucket of the tenant) beside ``background`` sessions from other IPs,
then times ``store.revoke_sessions(tenant, ip_address=...)``. SLOWLOG (threshold 0) gives the
longest single command of the revocation, which for a script is its whole run: the time Redis
was held by one call. Each run loads afresh; the figures are the median and the worst run.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.bulk import create_many
from benchmarks.workload import NewSession
from sessionstore import SessionStore, StoreConfig
from tests.reliability.servers import NO_PERSISTENCE, start_server

TENANT = "bench"
ATTACKER_IP = "198.51.100.66"
UA = "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 Chrome/120.0 Safari/537.36"


def _new(user_id: int, ip: str) -> NewSession:
    return NewSession(TENANT, user_id, ip, UA, "password", False)


def one_run(url: str, sessions: int, background: int, run: int) -> dict[str, float]:
    store = SessionStore.from_url(url, config=StoreConfig(prefix=f"bulk{run}"))
    client = store.client
    create_many(store, (_new(user, ATTACKER_IP) for user in range(sessions)))
    create_many(
        store,
        (_new(sessions + n, f"10.{n % 250}.{n // 250 % 250}.1") for n in range(background)),
    )
    client.slowlog_reset()
    client.config_resetstat()
    started = time.perf_counter()
    revoked = store.revoke_sessions(TENANT, ip_address=ATTACKER_IP)
    elapsed = time.perf_counter() - started
    if revoked != sessions:
        raise SystemExit(f"revoked {revoked}, expected {sessions}")
    scripts = [
        entry for entry in client.slowlog_get(100_000) if entry["command"].startswith(b"EVALSHA")
    ]
    stats = client.info("commandstats").get("cmdstat_evalsha", {})
    left = store.list_sessions(TENANT, ip_address=ATTACKER_IP).total_count
    store.close()
    return {
        "seconds": elapsed,
        "script_calls": len(scripts),
        "longest_script_ms": max(entry["duration"] for entry in scripts) / 1000,
        "mean_script_ms": stats.get("usec_per_call", 0) / 1000,
        "left": left,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sessions", type=int, default=10_000)
    parser.add_argument("--background", type=int, default=10_000)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as directory:
        server = start_server(Path(directory), *NO_PERSISTENCE)
        try:
            server.client().config_set("slowlog-log-slower-than", 0)
            server.client().config_set("slowlog-max-len", 100_000)
            runs = [
                one_run(server.url, args.sessions, args.background, run) for run in range(args.runs)
            ]
        finally:
            server.stop()
    seconds = [r["seconds"] * 1000 for r in runs]
    longest = [r["longest_script_ms"] for r in runs]
    print(
        f"revoke_sessions(ip_address=...) of {args.sessions:,} sessions from one IP, beside "
        f"{args.background:,} from other IPs; {args.runs} runs on a private redis-server"
    )
    print(f"  total: median {statistics.median(seconds):.1f} ms, worst {max(seconds):.1f} ms")
    print(
        f"  script calls per revocation: {runs[0]['script_calls']:.0f}; mean script "
        f"{statistics.median(r['mean_script_ms'] for r in runs):.2f} ms"
    )
    print(
        f"  longest single script (SLOWLOG): median {statistics.median(longest):.2f} ms, "
        f"worst {max(longest):.2f} ms"
    )
    print(f"  sessions from that IP left afterwards: {max(r['left'] for r in runs):.0f}")


if __name__ == "__main__":
    main()
