"""The near cache under faults: how long a cached answer outlives the change that ended it.

    python benchmarks/near_cache_faults.py [--redis-url redis://127.0.0.1:6379] [--trials 30]

Each trial warms a near-cached store on one session, ends the session behind its back, then
validates it in a tight loop and notes how long it still validated (0 when the first try after
the change already refused it). Faults:

1. reconnect: ``CLIENT KILL TYPE pubsub`` and the revoke in one ``MULTI`` on the shared Redis:
   the revocation is published while no subscriber is connected, and redis-py reconnects and
   re-subscribes on its own (sync and async stores).
2. DEL: an operator deletes the session's hash (nothing is published); once on a private
   redis-server with keyspace notifications off (bounded by ``near_cache_max_age``, 5 s), once
   with ``notify-keyspace-events Kgx`` (followed like a script's change).

Reported: median and worst stale window per fault, in milliseconds. Nothing is asserted.
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import redis

from benchmarks.near_cache import _trusted
from sessionstore import AsyncSessionStore, SessionStore, StoreConfig
from sessionstore._core.flows import ScriptCall

TENANT = "bench"
IP = "203.0.113.7"
GIVE_UP = 10.0  # seconds: a window this long is reported as such


def _kill_then(other: SessionStore) -> None:
    """Make ``other``'s next script run right after CLIENT KILL TYPE pubsub, in one MULTI."""
    run_alone = other._call

    def killing_first(call: Any) -> Any:
        if not isinstance(call, ScriptCall):
            return run_alone(call)
        pipe = other.client.pipeline(transaction=True)
        pipe.execute_command("CLIENT", "KILL", "TYPE", "pubsub")
        pipe.execute_command("EVAL", call.script.source, len(call.keys), *call.keys, *call.args)
        return pipe.execute()[-1]

    other._call = killing_first  # type: ignore[method-assign]


def _stale_for(still_valid: Callable[[], bool]) -> float:
    started = time.perf_counter()
    while still_valid():
        if time.perf_counter() - started > GIVE_UP:
            break
        time.sleep(0.0005)
    return (time.perf_counter() - started) * 1000


def _cached_session(cached: SessionStore) -> tuple[str, str]:
    """A new session that ``cached`` answers from memory: its id and token."""
    _trusted(cached)
    session, token = cached.create(TENANT, 7, ip_address=IP, user_agent="bench")
    while cached.near_cache_stats().size == 0:
        cached.validate(TENANT, token)
    return session.id, token


def reconnect_sync(url: str, trials: int) -> list[float]:
    prefix = "bench-nc-" + uuid.uuid4().hex[:8]
    cached = SessionStore.from_url(url, config=StoreConfig(prefix=prefix, near_cache_size=100))
    other = SessionStore.from_url(url, config=StoreConfig(prefix=prefix))
    windows = []
    try:
        for _ in range(trials):
            session_id, token = _cached_session(cached)
            _kill_then(other)
            other.revoke(TENANT, 7, session_id)
            del other._call  # back to the class's own
            windows.append(_stale_for(lambda t=token: cached.validate(TENANT, t) is not None))
    finally:
        _clean(other.client, prefix)
        cached.close()
        other.close()
    return windows


def reconnect_async(url: str, trials: int) -> list[float]:
    prefix = "bench-nc-" + uuid.uuid4().hex[:8]
    other = SessionStore.from_url(url, config=StoreConfig(prefix=prefix))

    async def run() -> list[float]:
        cached = AsyncSessionStore.from_url(
            url, config=StoreConfig(prefix=prefix, near_cache_size=100)
        )
        windows = []
        try:
            for _ in range(trials):
                session, token = await cached.create(TENANT, 7, ip_address=IP, user_agent="b")
                while not (cached.near_cache_stats().trusted and cached.near_cache_stats().size):
                    await cached.validate(TENANT, token)
                    await asyncio.sleep(0.001)
                _kill_then(other)
                await asyncio.to_thread(other.revoke, TENANT, 7, session.id)
                del other._call
                started = time.perf_counter()
                while await cached.validate(TENANT, token) is not None:
                    if time.perf_counter() - started > GIVE_UP:
                        break
                    await asyncio.sleep(0.0005)
                windows.append((time.perf_counter() - started) * 1000)
        finally:
            await cached.aclose()
        return windows

    try:
        return asyncio.run(run())
    finally:
        _clean(other.client, prefix)
        other.close()


def deleted(url: str, trials: int) -> list[float]:
    prefix = "bench-nc-" + uuid.uuid4().hex[:8]
    cached = SessionStore.from_url(url, config=StoreConfig(prefix=prefix, near_cache_size=100))
    windows = []
    try:
        for _ in range(trials):
            session_id, token = _cached_session(cached)
            cached.client.delete(cached._core.keys.session(TENANT, session_id))
            windows.append(_stale_for(lambda t=token: cached.validate(TENANT, t) is not None))
    finally:
        _clean(cached.client, prefix)
        cached.close()
    return windows


def _clean(client: Any, prefix: str) -> None:
    for key in client.scan_iter(match=f"{prefix}:*", count=1000):
        client.delete(key)


def _private_server(notify: str) -> tuple[subprocess.Popen[bytes], str, Path]:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    directory = Path(tempfile.mkdtemp(prefix="sessionstore-bench-"))
    process = subprocess.Popen(
        ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "",
         "--appendonly", "no", "--dir", str(directory), "--notify-keyspace-events", notify],
        stdout=subprocess.DEVNULL,
    )  # fmt: skip
    client = redis.Redis(port=port)
    for _ in range(100):
        try:
            client.ping()
            break
        except redis.ConnectionError:
            time.sleep(0.05)
    return process, f"redis://127.0.0.1:{port}", directory


def report(name: str, windows: list[float]) -> None:
    print(
        f"{name:<44} trials {len(windows):>3}  median {statistics.median(windows):8.1f} ms"
        f"  worst {max(windows):8.1f} ms"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379")
    parser.add_argument("--trials", type=int, default=30)
    args = parser.parse_args()
    report("reconnect in the gap, sync", reconnect_sync(args.redis_url, args.trials))
    report("reconnect in the gap, async", reconnect_async(args.redis_url, args.trials))
    if shutil.which("redis-server") is None:
        print("redis-server not installed: the DEL figures need a private server")
        return
    for notify, name in (("", "DEL, keyspace notifications off"), ("Kgx", "DEL, Kgx on")):
        process, url, directory = _private_server(notify)
        try:
            report(name, deleted(url, max(3, args.trials // 5) if not notify else args.trials))
        finally:
            process.terminate()
            process.wait()
            shutil.rmtree(directory, ignore_errors=True)


if __name__ == "__main__":
    main()
