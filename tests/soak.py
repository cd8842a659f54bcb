"""Soak: mixed create / validate / revoke on short-lived sessions; memory must come back.

Each cycle runs the load for a while, checks that every key of the prefix has a TTL, waits
for the sessions to expire, checks that the prefix is empty again and records Redis's
``used_memory``. Memory is flat when the last cycle ends where the first one did.

    python -m tests.soak                          # 60 s, on its own redis-server
    python -m tests.soak --duration 600 --cycles 10
    python -m tests.soak --url redis://127.0.0.1:6380/0   # an existing loopback server

Only loopback servers are accepted. On a server of its own the numbers are clean; on a
shared one the script touches its own prefix only (and memory figures include the others).
"""

from __future__ import annotations

import argparse
import random
import sys
import tempfile
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from sessionstore import SessionStore, StoreConfig
from sessionstore._core import keys as layout
from tests import backends

TENANT = "soak"
USERS = 50
LOOPBACK = ("127.0.0.1", "::1", "localhost")
MEMORY_SLACK = 256 * 1024  # bytes: allocator noise between two empty states


@dataclass
class SoakResult:
    operations: Counter[str] = field(default_factory=Counter)
    errors: list[str] = field(default_factory=list)
    keys_without_ttl: list[bytes] = field(default_factory=list)
    leftover_keys: list[bytes] = field(default_factory=list)
    memory_at_start: int = 0
    memory_after_cycle: list[int] = field(default_factory=list)
    peak_memory: int = 0
    seconds: float = 0.0

    @property
    def memory_growth(self) -> int:
        """Bytes more in use after the last cycle than after the first (both drained)."""
        return self.memory_after_cycle[-1] - self.memory_after_cycle[0]

    @property
    def memory_flat(self) -> bool:
        first = self.memory_after_cycle[0]
        return self.memory_growth <= max(MEMORY_SLACK, first // 20)

    def summary(self) -> str:
        total = sum(self.operations.values())
        lines = [
            f"operations: {total} in {self.seconds:.0f} s ({total / self.seconds:.0f}/s) "
            + ", ".join(f"{name} {count}" for name, count in sorted(self.operations.items())),
            f"errors: {len(self.errors)}" + (f" (first: {self.errors[0]})" if self.errors else ""),
            f"keys without TTL: {len(self.keys_without_ttl)}",
            f"keys left after expiry: {len(self.leftover_keys)}",
            f"used_memory: start {self.memory_at_start}, peak {self.peak_memory}, after each cycle "
            + ", ".join(str(m) for m in self.memory_after_cycle),
            f"memory growth first->last cycle: {self.memory_growth} bytes "
            f"({'flat' if self.memory_flat else 'GROWING'})",
        ]
        return "\n".join(lines)


class Worker:
    """One thread of load: its own sessions, a random mix of operations."""

    def __init__(self, store: SessionStore, result: SoakResult, seed: int) -> None:
        self.store = store
        self.result = result
        self.random = random.Random(seed)
        self.sessions: list[tuple[int, str, str]] = []  # user id, session id, token
        self.revoked: list[str] = []

    def run(self, until: float) -> None:
        while time.monotonic() < until:
            name = self.random.choices(
                ("create", "validate", "revoke", "revoke_all", "validate_revoked"),
                weights=(30, 50, 10, 3, 7),
            )[0]
            try:
                getattr(self, name)()
                self.result.operations[name] += 1
            except Exception as error:  # every failure is a finding
                self.result.errors.append(f"{name}: {type(error).__name__}: {error}")

    def create(self) -> None:
        user_id = self.random.randrange(1, USERS + 1)
        session, token = self.store.create(
            TENANT, user_id, ip_address=f"198.51.100.{user_id}", user_agent="soak/1.0"
        )
        self.sessions.append((user_id, session.id, token))
        del self.sessions[:-200]  # older ones have expired anyway

    def validate(self) -> None:
        if self.sessions:
            self.store.validate(TENANT, self.random.choice(self.sessions)[2])

    def revoke(self) -> None:
        if self.sessions:
            user_id, session_id, token = self.sessions.pop(
                self.random.randrange(len(self.sessions))
            )
            self.store.revoke(TENANT, user_id, session_id)
            self.revoked = [token, *self.revoked[:99]]

    def revoke_all(self) -> None:
        self.store.revoke_all(TENANT, self.random.randrange(1, USERS + 1))

    def validate_revoked(self) -> None:
        if self.revoked and self.store.validate(TENANT, self.random.choice(self.revoked)):
            raise AssertionError("a revoked token validated")


def run_soak(
    url: str,
    *,
    duration: float = 60.0,
    cycles: int = 3,
    lifetime: float = 2.0,
    workers: int = 4,
    prefix: str | None = None,
) -> SoakResult:
    """Run the load ``cycles`` times for ``duration`` seconds in all; see the module doc."""
    _require_loopback(url)
    config = StoreConfig(
        prefix=prefix or backends.new_prefix(),
        lifetime=timedelta(seconds=lifetime),
        touch_interval=timedelta(seconds=lifetime / 4),
    )
    result = SoakResult()
    started = time.monotonic()
    with SessionStore.from_url(url, config=config) as store:
        client = store.client
        result.memory_at_start = _used_memory(client)
        try:
            for cycle in range(cycles):
                _load(store, result, duration / cycles, workers, seed=cycle * workers)
                result.peak_memory = max(result.peak_memory, _used_memory(client))
                result.keys_without_ttl += _keys_without_ttl(store)
                result.leftover_keys = _drain(store, timeout=lifetime + 10)
                result.memory_after_cycle.append(_used_memory(client))
        finally:
            backends.delete_prefix(client, config.prefix)
    result.seconds = time.monotonic() - started
    return result


def _load(store: SessionStore, result: SoakResult, seconds: float, workers: int, seed: int) -> None:
    until = time.monotonic() + seconds
    threads = [
        threading.Thread(target=Worker(store, result, seed + n).run, args=(until,))
        for n in range(workers)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()


def _permanent_keys(store: SessionStore) -> set[bytes]:
    # The layout marker must outlive every session (it guards the prefix), and so does the mark
    # that the sweep's registry needs no SCAN (sweeping.py): no TTL, by design.
    keys = store._core.keys
    return {keys.layout().encode(), keys.registry_seeded().encode()}


def _keys_without_ttl(store: SessionStore) -> list[bytes]:
    permanent = _permanent_keys(store)
    return [
        key
        for key in backends.keys_of(store.client, store.config.prefix)
        if key not in permanent and store.client.pttl(key) == -1
    ]


def _drain(store: SessionStore, timeout: float) -> list[bytes]:
    """Wait until only permanent keys are left (a SCAN also expires the keys it meets), and
    revocations' memos, which end on their own within their bound (keys.MEMO_MS)."""
    permanent = _permanent_keys(store)
    deadline = time.monotonic() + timeout
    while True:
        left = [
            k
            for k in backends.keys_of(store.client, store.config.prefix)
            if k not in permanent and not _memo_within_its_bound(store, k)
        ]
        if not left or time.monotonic() > deadline:
            return left
        time.sleep(0.25)


def _used_memory(client: Any) -> int:
    return int(client.info("memory")["used_memory"])


def _require_loopback(url: str) -> None:
    host = urlsplit(url).hostname
    if host not in LOOPBACK:
        raise SystemExit(f"soak: only loopback servers are allowed, not {host!r}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=float, default=60.0, help="seconds of load in all")
    parser.add_argument("--cycles", type=int, default=3)
    parser.add_argument("--lifetime", type=float, default=2.0, help="session lifetime, seconds")
    parser.add_argument("--workers", type=int, default=4, help="threads")
    parser.add_argument("--url", help="a loopback Redis; default: start a redis-server")
    args = parser.parse_args(argv)
    options = dict(
        duration=args.duration, cycles=args.cycles, lifetime=args.lifetime, workers=args.workers
    )
    if args.url:
        result = run_soak(args.url, **options)
    else:
        from tests.reliability.servers import start_server

        with tempfile.TemporaryDirectory() as directory:
            server = start_server(Path(directory))
            try:
                result = run_soak(server.url, **options)
            finally:
                server.stop()
    print(result.summary())
    clean = not (result.errors or result.keys_without_ttl or result.leftover_keys)
    return 0 if clean and result.memory_flat else 1


if __name__ == "__main__":
    sys.exit(main())


def _memo_within_its_bound(store: SessionStore, key: bytes) -> bool:
    return layout.is_memo(key) and 0 < store.client.pttl(key) <= layout.MEMO_MS
