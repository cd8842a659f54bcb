"""Stores people pick today, loading a session by id from the same Redis.

Each peer saves the probe sessions (their spec JSON objects) through its own write path and
is timed on the load its framework does per request: read by id and deserialize into its
session object, with no cookie or request handling. Sync peers run on one connection and
async ones from ``plan.concurrency`` tasks, each in runs interleaved with the store's validate
of the same mode. They are benchmark-only extras (pyproject's ``bench``).

A sync store can poll its socket a moment for a reply before it sleeps (StoreConfig.busy_poll,
off by default, sessionstore/_waiting.py); the store with 50 µs of it is measured beside the
default one, with the CPU each call cost, on one thread and from ``THREADS`` threads at once
(where the threads contend for the cores and polling can cost more than it saves).

The store is warmed first, as a running service is: every probe is validated once, so the
process knows its sessions (``sessionstore._core.FIXED_PARTS`` of them at most, hence at most
that many probes) and validations take the fast path, two plain reads in one round trip. A
touch falls due once per session per touch interval (60 s) and takes the script again; how
many of the measured validations did is counted from the EVALSHA calls in ``INFO
commandstats`` during the measurement, less those of ``sessionstore get`` (read.lua).
"""

from __future__ import annotations

import asyncio
import secrets
import time
from collections.abc import Awaitable, Callable
from datetime import timedelta
from importlib import metadata
from itertools import cycle
from typing import Any, Protocol, TypeVar

from sessionstore import _connection
from sessionstore._core.operations import FIXED_PARTS

from ..bench import Bench
from ..workload import TENANT
from .redis_cpu import Counters, command_deltas, command_stats

LIFETIME = timedelta(days=1)
OURS = "sessionstore validate"
OURS_POLLING = "sessionstore validate, busy_poll 50 µs"
MODES = ("sync", "async")
THREADS = 8
THREADED = f"sync, {THREADS} threads"  # no target: how polling fares when the cores are busy
P = TypeVar("P")


class SyncPeer(Protocol):
    def save(self, payload: dict[str, Any]) -> str: ...
    def load(self, session_id: str) -> object: ...
    def close(self) -> None: ...


class AsyncPeer(Protocol):
    async def save(self, payload: dict[str, Any]) -> str: ...
    async def load(self, session_id: str) -> object: ...
    async def close(self) -> None: ...


def run(bench: Bench) -> dict[str, Any]:
    if not bench.backend.real:
        return {}  # peers talk to a Redis server, not to the in-process one
    # More probes than the store remembers would all miss: every validation a script call.
    probes = bench.probes[:FIXED_PARTS]
    payloads = [session.to_dict() for session, _ in probes]
    script_path: dict[str, Any] = {}
    results: dict[str, Any] = {
        **_sync(bench, probes, payloads, script_path),
        "async": asyncio.run(_async(bench, probes, payloads, script_path)),
    }
    results["validate_script_path"] = script_path
    for mode, path in script_path.items():
        if path["script_calls"] is None:
            continue  # no commandstats to count from (a cluster)
        bench.progress.note(
            f"  {mode}: {path['script_calls']:,} of {path['validate_calls']:,} validations "
            f"took the script ({path['share']:.2%}) in {path['seconds']:.1f}s"
        )
    return results


def _sync(
    bench: Bench,
    probes: list[tuple[Any, str]],
    payloads: list[dict[str, Any]],
    script_path: dict[str, Any],
) -> dict[str, Any]:
    store, polling = bench.store, bench.store_with(busy_poll=timedelta(microseconds=50))
    tokens = [token for _, token in probes]
    for token in tokens:  # warm: the fast path from here until touches fall due
        if store.validate(TENANT, token) is None or polling.validate(TENANT, token) is None:
            raise RuntimeError("probe token does not validate: the benchmark data is wrong")
    next_token, next_id = _Counted(tokens), _Counted([session.id for session, _ in probes])
    calls: dict[str, Callable[[], object]] = {
        OURS: lambda: store.validate(TENANT, next_token()),
        OURS_POLLING: lambda: polling.validate(TENANT, next_token()),
        "sessionstore get": lambda: store.get(TENANT, next_id()),
    }
    packages = dict.fromkeys(calls, "sessionstore")
    peers = _installed(bench, SYNC_PEERS)
    try:
        for name, package, peer in peers:
            calls[name] = _loader(peer, [peer.save(payload) for payload in payloads])
            packages[name] = package
        with _ScriptCalls(bench) as counted:
            measured = bench.compare("load by id, sync, 1 connection", calls, bench.plan.steady)
            threaded = {name: call for name, call in calls.items() if name != "sessionstore get"}
            title = f"load by id, sync, {THREADS} threads"
            crowded = bench.compare_threaded(title, threaded, bench.plan.steady, THREADS)
    finally:
        for _, _, peer in peers:
            peer.close()
    script_path["sync"] = counted.validate_path(next_token.calls, other_scripts=next_id.calls)
    return {"sync": _with_packages(measured, packages), THREADED: _with_packages(crowded, packages)}


async def _async(
    bench: Bench,
    probes: list[tuple[Any, str]],
    payloads: list[dict[str, Any]],
    script_path: dict[str, Any],
) -> dict[str, Any]:
    store = bench.async_store()  # made inside the loop that uses its connections
    tokens = [token for _, token in probes]
    next_token = _Counted(tokens)
    calls: dict[str, Callable[[], Awaitable[object]]] = {
        OURS: lambda: store.validate(TENANT, next_token())
    }
    packages = {OURS: "sessionstore"}
    peers = _installed(bench, ASYNC_PEERS)
    try:
        for token in tokens:  # warm, as the sync store
            await store.validate(TENANT, token)
        for name, package, peer in peers:
            ids = [await peer.save(payload) for payload in payloads]
            calls[name] = await _async_loader(peer, ids)
            packages[name] = package
        title = f"load by id, async, {bench.plan.concurrency} tasks"
        with _ScriptCalls(bench) as counted:
            measured = await bench.compare_concurrent(title, calls, bench.plan.steady)
    finally:
        await store.aclose()
        for _, _, peer in peers:
            await peer.close()
    script_path["async"] = counted.validate_path(next_token.calls, other_scripts=0)
    return _with_packages(measured, packages)


class _Counted:
    """Cycles through items, counting the calls: the measured operations, warm-ups included."""

    __slots__ = ("_next", "calls")

    def __init__(self, items: list[str]) -> None:
        self._next = cycle(items).__next__
        self.calls = 0

    def __call__(self) -> str:
        self.calls += 1
        return self._next()


class _ScriptCalls:
    """EVALSHA calls Redis ran during a measurement (``INFO commandstats``, every client's)."""

    def __init__(self, bench: Bench) -> None:
        self._client = bench.client
        self._before: Counters | None = None
        self.evalsha: int | None = None
        self.seconds = 0.0

    def __enter__(self) -> _ScriptCalls:
        self._started = time.monotonic()
        if not _connection.is_cluster(self._client):  # a cluster counts per node
            self._before = command_stats(self._client)
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.seconds = time.monotonic() - self._started
        if self._before is not None:
            deltas = command_deltas(self._before, command_stats(self._client))
            self.evalsha = None if deltas is None else deltas.get("evalsha", (0, 0))[0]

    def validate_path(self, validate_calls: int, *, other_scripts: int) -> dict[str, Any]:
        """How many validations took the script: EVALSHA calls less the other measures'.

        Other clients of the same Redis add theirs, so this is at most the true count.
        """
        script_calls = None if self.evalsha is None else max(0, self.evalsha - other_scripts)
        return {
            "validate_calls": validate_calls,
            "evalsha_calls": self.evalsha,
            "other_measures_evalsha_calls": other_scripts,
            "script_calls": script_calls,
            "share": None if script_calls is None else script_calls / max(validate_calls, 1),
            "seconds": round(self.seconds, 1),
        }


def _installed(
    bench: Bench, peers: list[tuple[str, str, Callable[[Bench], P]]]
) -> list[tuple[str, str, P]]:
    """The peers whose packages are installed (``pip install -e .[bench]``)."""
    ready = []
    for name, package, make in peers:
        try:
            ready.append((name, package, make(bench)))
        except ImportError:
            bench.progress.note(f"  {name}: skipped, {package} is not installed")
    return ready


def _loader(peer: SyncPeer, session_ids: list[str]) -> Callable[[], object]:
    if not peer.load(session_ids[0]):
        raise RuntimeError(f"{type(peer).__name__} does not find the session it saved")
    next_id = cycle(session_ids).__next__
    return lambda: peer.load(next_id())


async def _async_loader(peer: AsyncPeer, session_ids: list[str]) -> Callable[[], Awaitable[object]]:
    if not await peer.load(session_ids[0]):
        raise RuntimeError(f"{type(peer).__name__} does not find the session it saved")
    next_id = cycle(session_ids).__next__
    return lambda: peer.load(next_id())


def _with_packages(measured: dict[str, Any], packages: dict[str, str]) -> dict[str, Any]:
    return {
        name: {"package": _version(packages[name]), "load_by_id": figures}
        for name, figures in measured.items()
    }


def _version(package: str) -> str:
    return f"{package} {metadata.version(package)}"


# -- the peers --------------------------------------------------------------------------------


class FlaskSessionPeer:
    """Flask-Session's RedisSessionInterface, as ``open_session`` uses it after the cookie."""

    def __init__(self, bench: Bench) -> None:
        from flask import Flask
        from flask_session.redis import RedisSessionInterface

        self._client = bench.raw_client()
        self._interface = RedisSessionInterface(
            Flask("sessionstore-bench"), client=self._client, key_prefix=f"{bench.prefix}:flask:"
        )

    def close(self) -> None:
        self._client.close()

    def save(self, payload: dict[str, Any]) -> str:
        interface = self._interface
        session_id = secrets.token_urlsafe(32)
        session = interface.session_class(payload, sid=session_id)
        interface._upsert_session(LIFETIME, session, interface._get_store_id(session_id))
        return session_id

    def load(self, session_id: str) -> object:
        interface = self._interface
        data = interface._retrieve_session_data(interface._get_store_id(session_id))
        return interface.session_class(data, sid=session_id)


class DjangoCachePeer:
    """Django's cache session backend on django-redis: ``SessionStore(key).load()``."""

    def __init__(self, bench: Bench) -> None:
        _configure_django(bench)
        from django.contrib.sessions.backends.cache import SessionStore

        self._store_class = SessionStore

    def close(self) -> None:
        from django.core.cache import caches

        caches["default"].close()

    def save(self, payload: dict[str, Any]) -> str:
        session = self._store_class()
        session.update(payload)
        session.create()
        assert session.session_key is not None
        return session.session_key

    def load(self, session_id: str) -> object:
        return self._store_class(session_key=session_id).load()


def _configure_django(bench: Bench) -> None:
    from django.conf import settings

    if settings.configured:
        return
    settings.configure(
        SECRET_KEY=secrets.token_urlsafe(32),
        SESSION_ENGINE="django.contrib.sessions.backends.cache",
        SESSION_COOKIE_AGE=int(LIFETIME.total_seconds()),
        CACHES={
            "default": {
                "BACKEND": "django_redis.cache.RedisCache",
                "LOCATION": bench.backend.url,
                "KEY_PREFIX": f"{bench.prefix}:django",
                "OPTIONS": {"SOCKET_TIMEOUT": 0.4, "SOCKET_CONNECT_TIMEOUT": 0.4},
            }
        },
    )


class StarsessionsPeer:
    """starsessions' RedisStore with its JSON serializer, as its middleware loads a session."""

    def __init__(self, bench: Bench) -> None:
        from starsessions.serializers import JsonSerializer
        from starsessions.stores.redis import RedisStore

        self._client = bench.raw_async_client()
        self._store = RedisStore(connection=self._client, prefix=f"{bench.prefix}:star:")
        self._serializer = JsonSerializer()
        self._lifetime = int(LIFETIME.total_seconds())

    async def save(self, payload: dict[str, Any]) -> str:
        session_id = secrets.token_hex(16)
        data = self._serializer.serialize(payload)
        await self._store.write(session_id, data, lifetime=self._lifetime, ttl=self._lifetime)
        return session_id

    async def load(self, session_id: str) -> object:
        data = await self._store.read(session_id, lifetime=self._lifetime)
        return self._serializer.deserialize(data)

    async def close(self) -> None:
        await self._client.aclose()


SYNC_PEERS: list[tuple[str, str, Callable[[Bench], SyncPeer]]] = [
    ("Flask-Session", "Flask-Session", FlaskSessionPeer),
    ("Django cache sessions (django-redis)", "django-redis", DjangoCachePeer),
]
ASYNC_PEERS: list[tuple[str, str, Callable[[Bench], AsyncPeer]]] = [
    ("starsessions RedisStore", "starsessions", StarsessionsPeer),
]
