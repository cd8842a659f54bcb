"""The near cache's connections: the I/O half of nearcache.py, beside the drivers.

One subscriber connection per lane (per cluster primary), on a thread for the sync store and a
task for the async one. Each connection listens on the prefix's classic channel ``P:changes``
(its anchor), where the server has keyspace notifications on on the keyspace channels of the
prefix's session hashes, and, as validates ask for them, on the sharded channels
``P:{T:bb}:changes`` of the buckets whose slot its node owns; a ``nearcache.Lane`` decides what
every message means and which channels to subscribe. Any failure, any reconnect the client
library makes by itself, and any ``sunsubscribe`` from the server (a slot moved) empties the
cache; the lane starts again on a new connection, after a cluster's slot map is read again.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

import redis.asyncio
import redis.asyncio.cluster
import redis.cluster
from redis.exceptions import RedisClusterException, RedisError

from ._core.nearcache import (
    CHANNEL_WAIT,
    PING_EVERY,
    RECONNECT_AFTER,
    ChannelBroken,
    Lane,
    NearCache,
    channel,
    follows_keyspace,
    keyspace_pattern,
)

log = logging.getLogger("sessionstore.nearcache")

_CLUSTERS = (redis.cluster.RedisCluster, redis.asyncio.cluster.RedisCluster)


def lane_count(client: Any) -> int:
    """One lane per primary of a cluster, one for a single server. Each primary's own lane
    hears its shard channels (and its keyspace notifications, which exist only there)."""
    return len(client.get_primaries()) if isinstance(client, _CLUSTERS) else 1


class Primaries:
    """Which primary each lane of one store listens to. A lane keeps its node while that is a
    primary that no lower lane holds; otherwise it takes the first primary no other lane holds.
    After a failover the lane of the demoted node moves to the promoted one, and no two lanes
    share a node while a primary has none (its buckets would go unheard)."""

    def __init__(self, client: Any) -> None:
        self.client = client
        self.held: dict[int, str] = {}
        self._lock = threading.Lock()  # sync lanes start together: pick and hold as one step

    def pick(self, lane: int) -> str | None:
        """The node the lane should be on now (None off a cluster, or with no primary left)."""
        if not isinstance(self.client, _CLUSTERS):
            return None
        names = sorted(node.name for node in self.client.get_primaries())
        mine = self.held.get(lane)
        if mine in names and all(
            held != mine for number, held in self.held.items() if number < lane
        ):
            return mine
        taken = {held for number, held in self.held.items() if number != lane}
        return next((name for name in names if name not in taken), None)

    def moved(self, lane: int) -> bool:
        """Whether the lane should move to another node (checked at each of its PINGs)."""
        return lane in self.held and self.pick(lane) != self.held[lane]

    def _hold(self, lane: int) -> str | None:
        name = self.pick(lane)
        if name is None:
            if isinstance(self.client, _CLUSTERS):
                raise ChannelBroken("no primary for this lane")
            return None
        self.held[lane] = name
        return name

    def sync_client(self, lane: int) -> tuple[Any, str | None]:
        """A client of the lane's node (the store's own off a cluster), and the node's name."""
        with self._lock:
            name = self._hold(lane)
        if name is None:
            return self.client, None
        cluster: Any = self.client  # redis-py's sync cluster methods carry no annotations
        return cluster.get_node(node_name=name).redis_connection, name

    def async_client(self, lane: int) -> tuple[Any, str | None]:
        """The same for an async store; a cluster node's client is made here, to be closed."""
        name = self._hold(lane)
        if name is None:
            return self.client, None
        node = self.client.get_node(node_name=name)
        pool = redis.asyncio.ConnectionPool(
            connection_class=node.connection_class, **node.connection_kwargs
        )
        return redis.asyncio.Redis.from_pool(pool), name


def _owner(client: Any, name: str | None) -> Callable[[str], bool]:
    """Whether a bucket channel's slot is served by the node ``name``, by the store's slot map
    (every channel off a cluster). A cluster answers SSUBSCRIBE elsewhere with MOVED."""
    if name is None:
        return lambda _: True

    def owns(bucket_channel: str) -> bool:
        try:
            return bool(client.get_node_from_key(bucket_channel).name == name)
        except (RedisError, RedisClusterException):  # a slot not covered: no lane owns it
            return False

    return owns


def _ssubscribe_commands(lane: Lane, connection: Any) -> bytes | list[bytes] | None:
    """One SSUBSCRIBE per new channel, packed in one write: a cluster refuses several
    channels of different slots in one command."""
    fresh = lane.to_subscribe()
    if not fresh:
        return None
    packed: bytes | list[bytes] = connection.pack_commands([("SSUBSCRIBE", name) for name in fresh])
    return packed


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
    """The anchor channel and the patterns a lane subscribes to from the start. Keyspace
    channels unless the server says its notifications are off: where CONFIG is refused (a
    managed Redis, an ACL, the embedded server) they may still be on, and an idle pattern
    costs next to nothing."""
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

    def __init__(
        self,
        cache: NearCache,
        client: Any,
        prefix: str,
        lane: int = 0,
        primaries: Primaries | None = None,
    ) -> None:
        super().__init__(name=f"sessionstore-nearcache-{lane}", daemon=True)
        self.cache = cache
        self.client = client
        self.prefix = prefix
        self.lane = lane
        self.primaries = primaries or Primaries(client)
        self.stopping = threading.Event()
        self._sending = threading.Lock()  # one writer at a time on the lane's connection
        self._live: tuple[Lane, Any] | None = None  # while connected: the lane and its pubsub

    @classmethod
    def start_all(cls, cache: NearCache, client: Any, prefix: str) -> list[Subscriber]:
        cache.lanes = lane_count(client)
        primaries = Primaries(client)
        lanes = [cls(cache, client, prefix, lane, primaries) for lane in range(cache.lanes)]
        cache.wait_for_channel = CHANNEL_WAIT
        cache.wake = lambda: _subscribe_now(lanes)
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
            self.cache.reset(self.lane)
            if not self.stopping.is_set():
                self._read_slots()
            self.stopping.wait(RECONNECT_AFTER)

    def _read_slots(self) -> None:
        """After a break on a cluster (a slot moved, a failover), read the slot map again, so
        that each bucket is subscribed on the primary that owns its slot now."""
        if isinstance(self.client, redis.cluster.RedisCluster):
            cluster: Any = self.client
            with contextlib.suppress(RedisError, RedisClusterException):
                # Leave the pools' idle connections be: dropping them would remake another
                # lane's connection on that node, a break of its own.
                cluster.nodes_manager.initialize(disconnect_startup_nodes_pools=False)
            self.cache.rescan()

    def _listen(self) -> None:
        client, name = self.primaries.sync_client(self.lane)
        channels, patterns = _wanted(client, self.prefix, _sync_setting(client))
        lane = Lane(self.cache, self.lane, len(channels) + len(patterns), _owner(self.client, name))
        pubsub = client.pubsub()
        try:
            pubsub.subscribe(*channels)
            if patterns:
                pubsub.psubscribe(*patterns)
            with self._sending:
                self._live = (lane, pubsub)
            while not self.stopping.is_set():
                with self._sending:
                    self._send_subscriptions(lane, pubsub)
                    if lane.ping_due(time.monotonic()):
                        if self.primaries.moved(self.lane):
                            raise ChannelBroken("the lane's node is no longer its primary")
                        pubsub.ping()
                message = pubsub.get_message(timeout=PING_EVERY)
                if message is not None:
                    lane.received(message)
        finally:
            with self._sending:
                self._live = None
            with contextlib.suppress(Exception):
                pubsub.close()

    @staticmethod
    def _send_subscriptions(lane: Lane, pubsub: Any) -> None:
        connection = pubsub.connection
        commands = _ssubscribe_commands(lane, connection)
        if commands is not None:
            connection.send_packed_command(commands, check_health=False)

    def subscribe_now(self) -> None:
        """From a validating thread: send the lane's new subscriptions at once instead of after
        its wait for a message (up to PING_EVERY). Never blocks: a lane busy sending picks
        them up itself on its next turn."""
        if not self._sending.acquire(blocking=False):
            return
        try:
            if self._live is not None:
                with contextlib.suppress(Exception):  # a broken connection: its lane finds out
                    self._send_subscriptions(*self._live)
        finally:
            self._sending.release()

    def stop(self) -> None:
        self.stopping.set()


def _subscribe_now(lanes: Sequence[Subscriber]) -> None:
    for subscriber in lanes:
        subscriber.subscribe_now()


class AsyncSubscriber:
    """The same for an async store: one task per lane on the store's event loop, started by
    its first validate (a cluster client knows its primaries only once it has run a command).
    A validate cannot wait for its bucket's subscription here (the loop would stall): the lane
    sends it on its next turn, within PING_EVERY, and later validates fill the cache."""

    def __init__(self, cache: NearCache, client: Any, prefix: str) -> None:
        self.cache = cache
        self.client = client
        self.prefix = prefix
        self.primaries = Primaries(client)
        self.tasks: list[asyncio.Task[None]] = []

    def ensure_running(self) -> None:
        if self.tasks and not any(task.done() for task in self.tasks):
            return
        for task in self.tasks:
            task.cancel()
        self.cache.lanes = lane_count(self.client)
        loop = asyncio.get_running_loop()
        self.tasks = [loop.create_task(self._run(lane)) for lane in range(self.cache.lanes)]

    async def _run(self, number: int) -> None:
        while True:
            try:
                await self._listen(number)
            except asyncio.CancelledError:
                self.cache.reset(number)
                raise
            except Exception as error:  # any failure means the channel broke
                log.warning("near cache channel broke (%s); bypassing it", error)
            self.cache.reset(number)
            await self._read_slots()
            await asyncio.sleep(RECONNECT_AFTER)

    async def _read_slots(self) -> None:
        if isinstance(self.client, redis.asyncio.cluster.RedisCluster):
            with contextlib.suppress(RedisError, RedisClusterException):
                await self.client.nodes_manager.initialize()
            self.cache.rescan()

    async def _listen(self, number: int) -> None:
        client, name = self.primaries.async_client(number)
        try:
            channels, patterns = _wanted(client, self.prefix, await _async_setting(client))
            lane = Lane(
                self.cache, number, len(channels) + len(patterns), _owner(self.client, name)
            )
            pubsub = client.pubsub()
            try:
                await pubsub.subscribe(*channels)
                if patterns:
                    await pubsub.psubscribe(*patterns)
                while True:
                    connection = pubsub.connection
                    commands = _ssubscribe_commands(lane, connection)
                    if commands is not None:
                        await connection.send_packed_command(commands, check_health=False)
                    if lane.ping_due(time.monotonic()):
                        if self.primaries.moved(number):
                            raise ChannelBroken("the lane's node is no longer its primary")
                        await pubsub.ping()
                    message = await pubsub.get_message(timeout=PING_EVERY)
                    if message is not None:
                        lane.received(message)
            finally:
                with contextlib.suppress(Exception):
                    await pubsub.aclose()
        finally:
            if client is not self.client:  # a cluster node's, made for this connection
                with contextlib.suppress(Exception):
                    await client.aclose()

    async def stop(self) -> None:
        for task in self.tasks:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
