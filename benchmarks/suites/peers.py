"""Stores people pick today, loading a session by id from the same Redis.

Each peer saves the probe sessions (their spec JSON objects) through its own write path and
is timed on the load its framework does per request: read by id and deserialize into its
session object, with no cookie or request handling. Sync peers run on one connection and
async ones from ``plan.concurrency`` tasks, each in runs interleaved with the store's validate
of the same mode. They are benchmark-only extras (pyproject's ``bench``).
"""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import Awaitable, Callable
from datetime import timedelta
from importlib import metadata
from itertools import cycle
from typing import Any, Protocol, TypeVar

from ..bench import Bench
from ..workload import TENANT

LIFETIME = timedelta(days=1)
OURS = "sessionstore validate"
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
    payloads = [session.to_dict() for session, _ in bench.probes]
    return {"sync": _sync(bench, payloads), "async": asyncio.run(_async(bench, payloads))}


def _sync(bench: Bench, payloads: list[dict[str, Any]]) -> dict[str, Any]:
    store = bench.store
    next_token = cycle([token for _, token in bench.probes]).__next__
    next_id = cycle([session.id for session, _ in bench.probes]).__next__
    calls: dict[str, Callable[[], object]] = {
        OURS: lambda: store.validate(TENANT, next_token()),
        "sessionstore get": lambda: store.get(TENANT, next_id()),
    }
    packages = {OURS: "sessionstore", "sessionstore get": "sessionstore"}
    peers = _installed(bench, SYNC_PEERS)
    try:
        for name, package, peer in peers:
            calls[name] = _loader(peer, [peer.save(payload) for payload in payloads])
            packages[name] = package
        measured = bench.compare("load by id, sync, 1 connection", calls, bench.plan.steady)
    finally:
        for _, _, peer in peers:
            peer.close()
    return _with_packages(measured, packages)


async def _async(bench: Bench, payloads: list[dict[str, Any]]) -> dict[str, Any]:
    store = bench.async_store()  # made inside the loop that uses its connections
    next_token = cycle([token for _, token in bench.probes]).__next__
    calls: dict[str, Callable[[], Awaitable[object]]] = {
        OURS: lambda: store.validate(TENANT, next_token())
    }
    packages = {OURS: "sessionstore"}
    peers = _installed(bench, ASYNC_PEERS)
    try:
        for name, package, peer in peers:
            ids = [await peer.save(payload) for payload in payloads]
            calls[name] = await _async_loader(peer, ids)
            packages[name] = package
        title = f"load by id, async, {bench.plan.concurrency} tasks"
        measured = await bench.compare_concurrent(title, calls, bench.plan.steady)
    finally:
        await store.aclose()
        for _, _, peer in peers:
            await peer.close()
    return _with_packages(measured, packages)


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
