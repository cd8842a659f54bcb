"""The Redis backends every store test runs on, chosen by fixtures (see conftest.py).

fake     the embedded fakeredis server, a fresh one per test
redis    a real Redis: SESSIONSTORE_TEST_REDIS_URL, default redis://127.0.0.1:6379
cluster  a real Redis Cluster: SESSIONSTORE_TEST_CLUSTER_URL (scripts/cluster.sh start)

With SESSIONSTORE_REQUIRE_REAL=1 (as .ci/run sets) an unreachable real backend fails the
test instead of skipping it.
"""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Collection, Iterator, Sequence
from typing import Any

import fakeredis
import pytest
import redis

from sessionstore import _connection, _embedded

REDIS_URL = os.environ.get("SESSIONSTORE_TEST_REDIS_URL", "redis://127.0.0.1:6379")
CLUSTER_URL = os.environ.get("SESSIONSTORE_TEST_CLUSTER_URL")
REQUIRE_REAL = os.environ.get("SESSIONSTORE_REQUIRE_REAL") == "1"
# SESSIONSTORE_DEEP=1: property tests try ten times as hard on every backend (fuzzing runs).
DEEP = os.environ.get("SESSIONSTORE_DEEP") == "1"

BACKENDS = [
    pytest.param("fake", marks=pytest.mark.fake, id="fake"),
    pytest.param("redis", marks=pytest.mark.redis, id="redis"),
    pytest.param("cluster", marks=pytest.mark.cluster, id="cluster"),
]
# For tests of a layer above the store (a browser on the console, the example apps, the API
# against its document): the store under them is tested on every backend already, so they
# run once, on the real Redis.
ONE_BACKEND = [BACKENDS[1]]
# For what runs in another process (a server, the CLI): an embedded server cannot be shared.
REAL_BACKENDS = BACKENDS[1:]


def on_backends(cases: Sequence[tuple[Any, ...]], embedded: Collection[int]) -> list[Any]:
    """Parameters for ``("backend", *fields)`` (``indirect=["backend"]``): every case on the
    real backends; on the embedded server, only the cases at the ``embedded`` indexes (its Lua
    is emulated, a second or more for a case that writes hundreds of sessions, and its
    commands answer these cases' later variants as they answer the first), all of them with
    SESSIONSTORE_DEEP=1."""
    return [
        pytest.param(backend.values[0], *case, marks=backend.marks, id=f"{backend.id}-{n}")
        for n, case in enumerate(cases)
        for backend in BACKENDS
        if backend.id != "fake" or DEEP or n in embedded
    ]


def unavailable(reason: str) -> None:
    if REQUIRE_REAL:
        pytest.fail(f"real backend required but unavailable: {reason}")
    pytest.skip(reason)


def url_for(backend: str) -> str | None:
    """The URL a store would be given for this backend (None: embedded)."""
    if backend == "fake":
        return None
    if backend == "redis":
        return REDIS_URL
    if CLUSTER_URL is None:
        unavailable("SESSIONSTORE_TEST_CLUSTER_URL is not set (scripts/cluster.sh start)")
    return "redis+cluster://" + CLUSTER_URL.split("://", 1)[-1]


def new_prefix() -> str:
    return "sstest-" + uuid.uuid4().hex[:12]


# A cluster client's first command also reads the node's whole COMMAND table. Late in a run of
# 3,000 tests one process can stall longer than the store's 0.4 s read timeout (twice, in CI,
# webhook tests read "Redis unavailable: TimeoutError" there), which is no outage of the
# shared cluster. Its clients wait 2 s; the store's own timeouts are tested on private servers
# (tests/reliability).
_CLUSTER_TIMEOUTS = {"socket_timeout": 2.0, "socket_connect_timeout": 2.0}


def sync_client(backend: str, server: fakeredis.FakeServer | None = None) -> Any:
    if backend == "fake":
        return fakeredis.FakeRedis(server=server or _embedded.new_server())
    client = _connection.sync_client(
        url_for(backend), **(_CLUSTER_TIMEOUTS if backend == "cluster" else {})
    )
    try:
        client.ping()
    except redis.RedisError as error:
        unavailable(f"{backend} at {url_for(backend)} does not answer: {error}")
    return client


def async_client(backend: str, server: fakeredis.FakeServer | None = None) -> Any:
    if backend == "fake":
        return fakeredis.FakeAsyncRedis(server=server or _embedded.new_server())
    return _connection.async_client(
        url_for(backend), **(_CLUSTER_TIMEOUTS if backend == "cluster" else {})
    )


def delete_prefix(client: Any, prefix: str) -> None:
    """Remove this test's keys and nothing else (the server is shared: never FLUSHALL)."""
    keys = list(client.scan_iter(match=f"{prefix}:*", count=1000))
    for start in range(0, len(keys), 500):  # one call a slot for each 500 (a cluster splits it)
        client.delete(*keys[start : start + 500])


def keys_of(client: Any, prefix: str) -> list[bytes]:
    return sorted(client.scan_iter(match=f"{prefix}:*", count=1000))


class Clock:
    """A clock the test moves; it starts at the real time so Redis TTLs stay in the future."""

    def __init__(self) -> None:
        import time

        self.now = time.time()

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def iterate(items: Iterator[Any]) -> list[Any]:
    return list(items)


def examples(backend: str, full: int) -> int:
    """How many examples a property test tries on ``backend``: its full budget on real Redis,
    where Lua, TTLs and clocks are the real ones; a sixth on the cluster and a tenth on the
    embedded server (its Lua is emulated, and slow), which run the same scripts and have their
    own tests of what differs there; ten times the full budget everywhere with
    SESSIONSTORE_DEEP=1."""
    if DEEP:
        return full * 10
    if backend == "redis":
        return full
    return max(10, full // (6 if backend == "cluster" else 10))


def closed_on_the_server(client: Any, ids: set[int]) -> bool:
    """Redis drops a closed connection from CLIENT LIST once it reads the close: wait for it."""
    deadline = time.monotonic() + 10
    while ids & {int(found["id"]) for found in client.client_list()}:
        if time.monotonic() > deadline:
            return False
        time.sleep(0.02)
    return True
