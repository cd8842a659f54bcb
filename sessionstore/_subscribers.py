"""The near cache's connections: the I/O half of nearcache.py, beside the drivers.

One subscriber connection per lane (per cluster primary), on a thread for the sync store and a
task for the async one. Each connection listens on ``P:changes`` and, where the server has
keyspace notifications on, on the keyspace channels of the prefix's session hashes; a
``nearcache.Lane`` decides what every message means. Any failure, and any reconnect the client
library makes by itself, empties the cache, and the lane starts again on a new connection.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import time
from typing import Any

import redis.asyncio
import redis.asyncio.cluster
import redis.cluster
from redis.exceptions import RedisError

from ._core.nearcache import (
    PING_EVERY,
    RECONNECT_AFTER,
    Lane,
    NearCache,
    channel,
    follows_keyspace,
    keyspace_pattern,
)

log = logging.getLogger("sessionstore.nearcache")


def subscriber_clients(client: Any) -> list[Any]:
    """Clients the subscribers hold a connection of: the store's own, or for a cluster one
    of each primary. A classic PUBLISH reaches every node, but over the cluster bus that adds
    milliseconds (p99 17.7 ms here, against 1.9 ms on the publishing node): listening on
    every primary hears each change from the node that made it (and keyspace notifications
    exist only on the node of their key)."""
    if isinstance(client, redis.asyncio.cluster.RedisCluster):
        return [
            redis.asyncio.Redis(
                connection_pool=redis.asyncio.ConnectionPool(
                    connection_class=node.connection_class, **node.connection_kwargs
                )
            )
            for node in client.get_primaries()
        ]
    if isinstance(client, redis.cluster.RedisCluster):
        cluster: Any = client  # redis-py's sync cluster methods carry no annotations
        return [node.redis_connection for node in cluster.get_primaries()]
    return [client]


def _db(client: Any) -> int:
    pool = getattr(client, "connection_pool", None)
    return int(getattr(pool, "connection_kwargs", {}).get("db", 0) or 0)


def _keyspace_setting(reply: Any) -> str:
    if isinstance(reply, dict):
        value = next(iter(reply.values()), "")
    elif isinstance(reply, list | tuple) and len(reply) == 2:
        value = reply[1]
    else:
        value = ""
    return value.decode() if isinstance(value, bytes) else str(value)


def _wanted(client: Any, prefix: str, setting: str | None) -> tuple[list[str], list[str]]:
    """The channels and patterns a lane subscribes to. Keyspace channels unless the server
    says its notifications are off: where CONFIG is refused (a managed Redis, an ACL, the
    embedded server) they may still be on, and an idle pattern costs next to nothing."""
    keyspace = setting is None or follows_keyspace(setting)
    return [channel(prefix)], [keyspace_pattern(prefix, _db(client))] if keyspace else []


def _sync_setting(client: Any) -> str | None:
    try:
        return _keyspace_setting(client.config_get("notify-keyspace-events"))
    except RedisError:
        return None


async def _async_setting(client: Any) -> str | None:
    try:
        return _keyspace_setting(await client.config_get("notify-keyspace-events"))
    except RedisError:
        return None


class Subscriber(threading.Thread):
    """Keeps a sync store's near cache in step: one daemon thread per lane (per cluster
    primary). ``start_all`` starts them."""

    def __init__(self, cache: NearCache, client: Any, prefix: str, lane: int = 0) -> None:
        super().__init__(name=f"sessionstore-nearcache-{lane}", daemon=True)
        self.cache = cache
        self.client = client
        self.prefix = prefix
        self.lane = lane
        self.stopping = threading.Event()

    @classmethod
    def start_all(cls, cache: NearCache, client: Any, prefix: str) -> list[Subscriber]:
        cache.lanes = len(subscriber_clients(client))
        lanes = [cls(cache, client, prefix, lane) for lane in range(cache.lanes)]
        for subscriber in lanes:
            subscriber.start()
        return lanes

    def run(self) -> None:
        while not self.stopping.is_set():
            try:
                self._listen()
            except Exception as error:  # any failure means the channel broke
                if not self.stopping.is_set():
                    log.warning("near cache channel broke (%s); bypassing it", error)
            self.cache.reset()
            self.stopping.wait(RECONNECT_AFTER)

    def _listen(self) -> None:
        client = subscriber_clients(self.client)[self.lane]
        channels, patterns = _wanted(client, self.prefix, _sync_setting(client))
        lane = Lane(self.cache, self.lane, len(channels) + len(patterns))
        pubsub = client.pubsub()
        try:
            pubsub.subscribe(*channels)
            if patterns:
                pubsub.psubscribe(*patterns)
            while not self.stopping.is_set():
                if lane.ping_due(time.monotonic()):
                    pubsub.ping()
                message = pubsub.get_message(timeout=PING_EVERY)
                if message is not None:
                    lane.received(message)
        finally:
            with contextlib.suppress(Exception):
                pubsub.close()

    def stop(self) -> None:
        self.stopping.set()


class AsyncSubscriber:
    """The same for an async store: one task per lane on the store's event loop, started by
    its first validate (a cluster client knows its primaries only once it has run a command)."""

    def __init__(self, cache: NearCache, client: Any, prefix: str) -> None:
        self.cache = cache
        self.client = client
        self.prefix = prefix
        self.tasks: list[asyncio.Task[None]] = []

    def ensure_running(self) -> None:
        if self.tasks and not any(task.done() for task in self.tasks):
            return
        for task in self.tasks:
            task.cancel()
        clients = subscriber_clients(self.client)
        self.cache.lanes = len(clients)
        loop = asyncio.get_running_loop()
        self.tasks = [
            loop.create_task(self._run(client, lane)) for lane, client in enumerate(clients)
        ]

    async def _run(self, client: Any, lane: int) -> None:
        while True:
            try:
                await self._listen(client, lane)
            except asyncio.CancelledError:
                self.cache.reset()
                raise
            except Exception as error:  # any failure means the channel broke
                log.warning("near cache channel broke (%s); bypassing it", error)
            self.cache.reset()
            await asyncio.sleep(RECONNECT_AFTER)

    async def _listen(self, client: Any, number: int) -> None:
        channels, patterns = _wanted(client, self.prefix, await _async_setting(client))
        lane = Lane(self.cache, number, len(channels) + len(patterns))
        pubsub = client.pubsub()
        try:
            await pubsub.subscribe(*channels)
            if patterns:
                await pubsub.psubscribe(*patterns)
            while True:
                if lane.ping_due(time.monotonic()):
                    await pubsub.ping()
                message = await pubsub.get_message(timeout=PING_EVERY)
                if message is not None:
                    lane.received(message)
        finally:
            with contextlib.suppress(Exception):
                await pubsub.aclose()

    async def stop(self) -> None:
        for task in self.tasks:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
