"""Redis clients from a URL, with the timeouts and retries a session store needs.

No URL means the embedded store: one in-process fakeredis server (with Lua) per process,
shared by every sync and async store that asks for it.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import threading
import urllib.parse
import weakref
from collections.abc import Callable, Iterator
from typing import Any

import redis
import redis.asyncio
import redis.asyncio.cluster
import redis.cluster
from redis.asyncio.retry import Retry as AsyncRetry
from redis.backoff import ExponentialBackoff
from redis.retry import Retry

from . import _embedded, _waiting, _wire
from ._core.flows import Command
from ._pipelined import Pipelined
from .config import StoreConfig
from .errors import InvalidArgument, StoreUnavailable, StoreWriteRejected

# Worst case per call: (1 + RETRIES) * SOCKET_TIMEOUT + backoff, under one second, so a hung
# Redis turns into StoreUnavailable quickly and the middleware can answer 503.
SOCKET_TIMEOUT = 0.4
RETRIES = 1
BACKOFF_CAP = 0.05
CALL_BOUND = (1 + RETRIES) * SOCKET_TIMEOUT + RETRIES * BACKOFF_CAP
MAX_CONNECTIONS = 64
CLUSTER_SCHEMES = ("redis+cluster", "rediss+cluster")
# Waits before running a script again while its slot moves to another node: about 0.4 s in
# all, as long as redis-py waits out TRYAGAIN, since moving one slot takes milliseconds.
SLOT_MOVE_PAUSES = (0.01, 0.03, 0.1, 0.25)


def _options(overrides: dict[str, Any]) -> dict[str, Any]:
    options: dict[str, Any] = {
        "socket_timeout": SOCKET_TIMEOUT,
        "socket_connect_timeout": SOCKET_TIMEOUT,
        "protocol": 2,
        "health_check_interval": 30,
    }
    options.update(overrides)
    return options


def _retry() -> Retry:
    # Only idempotent work goes through these clients: every script is safe to run twice.
    return Retry(ExponentialBackoff(cap=BACKOFF_CAP, base=0.01), RETRIES)


def _async_retry() -> AsyncRetry:
    # The asyncio client awaits its Retry: given a sync one, it would never retry at all.
    return AsyncRetry(ExponentialBackoff(cap=BACKOFF_CAP, base=0.01), RETRIES)


URL_SCHEMES = ("redis", "rediss", "unix", *CLUSTER_SCHEMES)
_DIGITS = re.compile(r"[0-9]{1,6}")


def check_url(url: str) -> str:
    """``url`` if a client can be built from it; else InvalidArgument saying what is wrong
    (never repeating the URL, which may hold a password).

    Beyond its scheme: a port that is a number, and a database that is a number (redis-py
    reads ``/abc`` as database 0 and ``/1/2`` as 12; both are refused here), 0 on a cluster.
    """
    cluster, plain = _split(url)
    try:
        parsed = urllib.parse.urlsplit(plain)
        parsed.port  # noqa: B018 (the property is what checks the port)
    except ValueError as error:
        raise InvalidArgument(f"bad Redis URL: {error}") from None
    database = _database(parsed)
    if cluster and database not in (None, 0):
        raise InvalidArgument(f"bad Redis URL: a Redis Cluster has database 0 only, not {database}")
    return url


def _database(parsed: urllib.parse.SplitResult) -> int | None:
    """The database a URL names (its path, or ``?db=``), None when it names none."""
    named = urllib.parse.parse_qs(parsed.query).get("db", [])
    if parsed.scheme != "unix":  # a unix URL's path is its socket's
        path = urllib.parse.unquote(parsed.path).strip("/")
        named = [path, *named] if path else named
    for text in named:
        if not _DIGITS.fullmatch(text):
            raise InvalidArgument(
                f"bad Redis URL: the database must be a number (redis://host:port/N), "
                f"not {text[:16]!r}"
            )
    if len({int(text) for text in named}) > 1:
        raise InvalidArgument("bad Redis URL: it names two databases; give one")
    return int(named[0]) if named else None


def _split(url: str) -> tuple[bool, str]:
    """(cluster?, the URL redis-py reads); a URL of any other scheme is refused here."""
    scheme, separator, rest = url.partition("://") if isinstance(url, str) else ("", "", "")
    if not separator or scheme not in URL_SCHEMES:
        schemes = ", ".join(f"{name}://" for name in URL_SCHEMES)
        raise InvalidArgument(f"a Redis URL starts with one of {schemes}")
    if scheme in CLUSTER_SCHEMES:
        return True, f"{scheme.removesuffix('+cluster')}://{rest}"
    return False, url


def describe(url: str | None) -> str:
    """Where a URL points, for messages: host and port, never a password."""
    if url is None:
        return "the embedded store"
    parsed = urllib.parse.urlsplit(_split(url)[1])
    if parsed.scheme == "unix":
        return f"Redis at {parsed.path}"
    return f"Redis at {parsed.hostname or 'localhost'}:{parsed.port or 6379}"


@contextlib.contextmanager
def _refusing_bad_urls() -> Iterator[None]:
    try:
        yield
    except InvalidArgument:
        raise
    except ValueError as error:  # redis-py's word on a URL it cannot read (a port, a db)
        raise InvalidArgument(f"bad Redis URL: {error}") from None


def sync_client(url: str | None = None, **overrides: Any) -> Any:
    if url is None:
        return _embedded.package().FakeRedis(server=_embedded.shared_server())
    with _refusing_bad_urls():
        return _sync_client(check_url(url), overrides)


def _sync_client(url: str, overrides: dict[str, Any]) -> Any:
    cluster, url = _split(url)
    options = _options(overrides)
    if cluster:
        options.pop("health_check_interval", None)
        # Per node, wait for a free connection as the pool below does; redis-py's default
        # cluster pool raises MaxConnectionsError at once when a burst exceeds it.
        options = {
            "connection_pool_class": redis.BlockingConnectionPool,
            "max_connections": MAX_CONNECTIONS,
            "timeout": SOCKET_TIMEOUT,
            **options,
        }
        return redis.cluster.RedisCluster.from_url(url, retry=_retry(), **options)
    pool = redis.BlockingConnectionPool.from_url(
        url, max_connections=MAX_CONNECTIONS, timeout=SOCKET_TIMEOUT, retry=_retry(), **options
    )
    return redis.Redis(connection_pool=pool)


def async_client(url: str | None = None, **overrides: Any) -> Any:
    if url is None:
        return _embedded.package().FakeAsyncRedis(server=_embedded.shared_server())
    with _refusing_bad_urls():
        return _async_client(check_url(url), overrides)


def _async_client(url: str, overrides: dict[str, Any]) -> Any:
    cluster, url = _split(url)
    options = _options(overrides)
    if cluster:
        options.pop("health_check_interval", None)
        return redis.asyncio.cluster.RedisCluster.from_url(url, retry=_async_retry(), **options)
    pool = redis.asyncio.BlockingConnectionPool.from_url(
        url,
        max_connections=MAX_CONNECTIONS,
        timeout=SOCKET_TIMEOUT,
        retry=_async_retry(),
        **options,
    )
    return redis.asyncio.Redis(connection_pool=pool)


def sends_raw(client: Any) -> bool:
    """Standalone redis-py clients take a batch on one pooled connection, as below."""
    return type(client) in (redis.Redis, redis.asyncio.Redis)


def run_raw(client: Any, commands: list[tuple[Any, ...]], busy_poll: float = 0.0) -> list[Any]:
    """Send a batch on one connection and read its replies as Redis gave them.

    What redis-py's Pipeline does, less its bookkeeping: an error reply comes back as its
    exception, a broken connection is retried as a whole (every call is safe to repeat), and
    no response callback reshapes a reply. The connection is the calling thread's own
    (``Lanes``); it polls for its replies for up to ``busy_poll`` seconds before it sleeps
    (``_waiting``)."""
    pool = client.connection_pool
    lanes = _lanes.get(pool)
    if lanes is None:
        with _lanes_made:
            lanes = _lanes.setdefault(pool, Lanes(pool))
    return lanes.run(commands, busy_poll)


def close_lanes(client: Any) -> None:
    """Close the connections threads keep for ``client`` (a store's close)."""
    pool = getattr(client, "connection_pool", None)  # a cluster has a pool per node, no lanes
    lanes = None if pool is None else _lanes.get(pool)
    if lanes is not None:
        lanes.close()


class Lanes:
    """Each thread's own connection for run_raw, kept between its calls.

    Borrowing a connection from redis-py's pool for each call (its queue, its lock, and a poll
    that the connection holds nothing unread) costs about as much Python time as the rest of a
    validate. A thread keeps one instead, made as the pool makes its own (its class and
    settings), outside the pool's count, and reads and writes its socket itself (``_Lane``).
    Bound: at most ``MAX_CONNECTIONS`` kept per pool, so a
    process holds at most twice that many to one Redis; a thread past the bound borrows from
    the pool per call, as before. A kept connection is closed when its thread ends (its
    thread-local lane is collected) or when the store closes, and is never used across a fork
    (a forked child starts with none: ``forget``).
    """

    def __init__(self, pool: Any, limit: int = MAX_CONNECTIONS) -> None:
        self._pool = pool
        self._limit = limit
        self.forget()

    def forget(self) -> None:
        """No lanes (new, and in a forked child: the parent's sockets are not ours to use, and
        a lock another thread held at the fork would never be let go)."""
        self._mine = threading.local()
        self._open: weakref.WeakSet[_Lane] = weakref.WeakSet()
        self._making = threading.Lock()  # the bound holds when threads start at once

    def __len__(self) -> int:
        return len(self._open)

    def run(self, commands: list[tuple[Any, ...]], busy_poll: float = 0.0) -> list[Any]:
        lane: _Lane | None = getattr(self._mine, "lane", None)
        if lane is None:
            lane = self._new_lane()
            if lane is None:
                return _borrowed(self._pool, commands)
        try:
            return lane.connection.retry.call_with_retry(  # type: ignore[no-any-return]
                lambda: lane.exchange(commands, busy_poll),
                lambda _error: lane.connection.disconnect(),
            )
        except BaseException:
            lane.connection.disconnect()  # a reply left unread must never answer the next call
            raise

    def close(self) -> None:
        for lane in list(self._open):
            lane.connection.disconnect()

    def _new_lane(self) -> _Lane | None:
        self._mine.lane = None
        with self._making:
            if len(self._open) >= self._limit:
                return None
            pool = self._pool
            lane = _Lane(pool.connection_class(**pool.connection_kwargs))
            self._open.add(lane)
        self._mine.lane = lane
        return lane


class _Lane:
    """A thread's kept connection. redis-py opens it (its handshake and settings, the socket
    timeout among them); the lane then writes and reads the socket itself (``_wire``), its
    timeout handed to the kernel, and may poll it a moment for a reply before it sleeps
    (``_waiting``)."""

    __slots__ = ("__weakref__", "_buffer", "_poller", "_reader", "_socket", "connection")

    def __init__(self, connection: Any) -> None:
        self.connection = connection
        self._socket: Any = None
        self._reader: Any = None
        self._poller: _waiting.Poller | None = None
        self._buffer = bytearray(_wire.READ_SIZE)
        # Its thread ended (the thread-local that holds it is gone): close the socket.
        weakref.finalize(self, connection.disconnect)

    def exchange(self, commands: list[tuple[Any, ...]], busy_poll: float = 0.0) -> list[Any]:
        """Send the batch and read its replies; a broken or silent socket raises redis-py's
        ConnectionError or TimeoutError, which its retry answers with a new connection."""
        sock = self._open()
        try:
            sock.sendall(b"".join(_wire.pack(commands)))
            return self.read(sock, len(commands), busy_poll)
        except (TimeoutError, BlockingIOError):  # Python's timeout, or the kernel's
            raise redis.exceptions.TimeoutError("Timeout talking to Redis") from None
        except OSError as error:
            raise redis.exceptions.ConnectionError(f"Error talking to Redis: {error}") from None

    def read(self, sock: Any, count: int, busy_poll: float = 0.0) -> list[Any]:
        reader, buffer, poller = self._reader, self._buffer, self._poller
        replies: list[Any] = []
        while len(replies) < count:
            reply = reader.gets()
            if reply is not False:
                replies.append(reply)
                continue
            received = None if poller is None else poller.read(buffer, busy_poll)
            if received is None:
                received = sock.recv_into(buffer)
            if not received:
                raise redis.exceptions.ConnectionError(_wire.CLOSED)
            reader.feed(buffer, 0, received)
        return replies

    def _open(self) -> Any:
        connection = self.connection
        if connection._sock is None:
            connection.connect()
        if connection._sock is not self._socket:  # a new socket: nothing of the old one's read
            sock = self._socket = connection._sock
            self._reader = _wire.reader()
            _waiting.wait_in_kernel(sock)
            self._poller = _waiting.Poller.of(sock)
        return self._socket


def _borrowed(pool: Any, commands: list[tuple[Any, ...]]) -> list[Any]:
    connection = pool.get_connection()
    try:
        return connection.retry.call_with_retry(  # type: ignore[no-any-return]
            lambda: _exchange(connection, commands), lambda _error: connection.disconnect()
        )
    finally:
        pool.release(connection)


_lanes: weakref.WeakKeyDictionary[Any, Lanes] = weakref.WeakKeyDictionary()
_lanes_made = threading.Lock()


def _forget_lanes_in_child() -> None:
    global _lanes_made
    _lanes_made = threading.Lock()
    for lanes in list(_lanes.values()):
        lanes.forget()


os.register_at_fork(after_in_child=_forget_lanes_in_child)


def _exchange(connection: Any, commands: list[tuple[Any, ...]]) -> list[Any]:
    # No health check: a connection Redis closed fails the call, and its retry reconnects.
    connection.send_packed_command(connection.pack_commands(commands), check_health=False)
    replies: list[Any] = []
    for _ in commands:
        try:
            replies.append(connection.read_response())
        except redis.exceptions.ResponseError as error:
            replies.append(error)
    return replies


async def arun_raw(client: Any, commands: list[tuple[Any, ...]]) -> list[Any]:
    """run_raw for redis.asyncio: on the pool's one pipelined connection (``_pipelined``),
    with as many other calls in flight as there are, up to its bound; past it, on a connection
    borrowed from the pool."""
    pool = client.connection_pool
    pipelined = _pipelines.get(pool)
    if pipelined is None:
        pipelined = _pipelines[pool] = Pipelined(pool, SOCKET_TIMEOUT)
    replies = await pipelined.run(commands)
    return await _aborrowed(pool, commands) if replies is None else replies


async def aclose_lanes(client: Any) -> None:
    pool = getattr(client, "connection_pool", None)
    pipelined = None if pool is None else _pipelines.get(pool)
    if pipelined is not None:
        await pipelined.aclose()


async def _aexchange(connection: Any, commands: list[tuple[Any, ...]]) -> list[Any]:
    # No health check: a connection Redis closed fails the call, and its retry reconnects.
    await connection.send_packed_command(connection.pack_commands(commands), check_health=False)
    replies: list[Any] = []
    for _ in commands:
        try:
            replies.append(await connection.read_response())
        except redis.exceptions.ResponseError as error:
            replies.append(error)
    return replies


async def _aborrowed(pool: Any, commands: list[tuple[Any, ...]]) -> list[Any]:
    connection = await pool.get_connection()
    try:
        return await connection.retry.call_with_retry(  # type: ignore[no-any-return]
            lambda: _aexchange(connection, commands), lambda _error: connection.disconnect()
        )
    finally:
        await pool.release(connection)


_pipelines: weakref.WeakKeyDictionary[Any, Pipelined] = weakref.WeakKeyDictionary()


def is_embedded(client: Any) -> bool:
    return type(client).__module__.startswith("fakeredis")


def is_cluster(client: Any) -> bool:
    return isinstance(client, redis.cluster.RedisCluster | redis.asyncio.cluster.RedisCluster)


def refuse_unsupported(client: Any, config: StoreConfig) -> None:
    """Refuse, before any call, a setting this client cannot honour."""
    # WAIT counts the replicas that hold the writes of its own connection. A cluster client
    # cannot promise the script and the WAIT share one, and fakeredis has no replicas, so
    # either would report durability it cannot know.
    standalone = not is_cluster(client) and not is_embedded(client)
    if config.revoke_replicas and not standalone:
        raise InvalidArgument("revoke_replicas needs a standalone Redis server with replicas")


class ClusterTurns:
    """At most MAX_CONNECTIONS calls at a time on one asyncio cluster client; others queue.

    redis-py's asyncio RedisCluster has no blocking pool: past ``max_connections`` on a node
    it raises MaxConnectionsError at once (redis/redis-py#3135), and recovering from that
    error can close connections that other calls are using mid-command. The async store
    takes a turn here first. A turn frees when a call in flight ends, and none takes longer
    than CALL_BOUND, so a call queued behind a full set waits at most that; past it, no call
    ended (Redis hangs) and it fails as a hung call does. (It waited SOCKET_TIMEOUT before: a
    burst of twice the turns on a loaded machine failed its last calls.)
    """

    def __init__(self) -> None:
        self._turns = asyncio.Semaphore(MAX_CONNECTIONS)

    async def __aenter__(self) -> None:
        try:
            async with asyncio.timeout(CALL_BOUND):
                await self._turns.acquire()
        except TimeoutError:
            raise redis.exceptions.ConnectionError("no free connection to the cluster") from None

    async def __aexit__(self, *exc_info: object) -> None:
        self._turns.release()


_NO_TURNS = contextlib.nullcontext()
_cluster_turns: weakref.WeakKeyDictionary[Any, ClusterTurns] = weakref.WeakKeyDictionary()


def turn(client: Any) -> contextlib.AbstractAsyncContextManager[Any]:
    """What an async call waits for before it goes out: a turn on a cluster, nothing else."""
    if not isinstance(client, redis.asyncio.cluster.RedisCluster):
        return _NO_TURNS
    turns = _cluster_turns.get(client)
    if turns is None:
        turns = _cluster_turns[client] = ClusterTurns()
    return turns


_UNREACHABLE = (
    redis.exceptions.ConnectionError,
    redis.exceptions.TimeoutError,
    redis.exceptions.BusyLoadingError,
    redis.exceptions.ClusterDownError,
    redis.exceptions.ClusterError,
    redis.exceptions.TryAgainError,
    redis.exceptions.MasterDownError,
    redis.exceptions.SlotNotCoveredError,
)
_WRITE_REJECTED = ("OOM", "READONLY", "NOREPLICAS", "MISCONF", "NOTENOUGHREPLICAS")


@contextlib.contextmanager
def translated(failed: Callable[[Exception], None] | None = None) -> Iterator[None]:
    """Redis errors raised inside become the store's (``translate``); ``failed`` is told of
    each that means Redis could not be used (metrics: StoreMetrics.redis_failed)."""
    try:
        yield
    except redis.exceptions.RedisError as error:
        mapped = translate(error)
        if failed is not None and isinstance(mapped, StoreUnavailable):
            failed(error)
        raise mapped from error


def translate(error: redis.exceptions.RedisError) -> Exception:
    """The store's error for a Redis failure; a bug (say, a script error) stays as it is."""
    if isinstance(error, _UNREACHABLE):
        return StoreUnavailable(f"Redis unavailable: {type(error).__name__}")
    if slot_moving(error):
        return StoreUnavailable("Redis unavailable: a hash slot is moving between nodes")
    code = _error_code(error)
    if isinstance(error, redis.exceptions.ResponseError) and code in _WRITE_REJECTED:
        return StoreWriteRejected(f"Redis refused the write: {code}")
    return error


def slot_moving(error: redis.exceptions.RedisError) -> bool:
    """A script met a key of its own slot on another node: the slot is mid-migration.

    Scripts read the session hashes of a user index from the index's own prefix (same slot);
    while ``redis-cli --cluster reshard`` moves that slot, a hash already moved (or missing)
    is "non local" to the node running the script. Declared keys get TRYAGAIN/ASK instead,
    which redis-py handles itself.
    """
    return isinstance(error, redis.exceptions.ResponseError) and "non local key" in str(error)


class ScriptRetry:
    """When a script call is made again, for both drivers: after NOSCRIPT (a restart, failover
    or SCRIPT FLUSH emptied the cache) once its source is loaded, and while its slot moves
    between cluster nodes, after a pause; at most len(SLOT_MOVE_PAUSES) times. Every script is
    safe to run twice."""

    def __init__(self) -> None:
        self._pauses = iter(SLOT_MOVE_PAUSES)

    def after(self, error: redis.exceptions.ResponseError) -> float | None:
        """None: load the script's source, then call again; seconds: wait, then call again.
        Raises ``error`` when it is neither, or when the tries are spent."""
        pause = next(self._pauses, None)
        noscript = isinstance(error, redis.exceptions.NoScriptError)
        if pause is None or not (noscript or slot_moving(error)):
            raise error
        return None if noscript else pause


def call_again(call: object, reply: object) -> bool:
    """A pipelined call whose reply asks for a single call: a lost reply (redis.asyncio's
    cluster pipeline hands it back instead of retrying; every call is safe to repeat, and a
    remembered script answers as it first did), or for a script NOSCRIPT or its slot moving."""
    if isinstance(reply, redis.exceptions.ConnectionError | redis.exceptions.TimeoutError):
        return True
    if isinstance(call, Command) or not isinstance(reply, redis.exceptions.ResponseError):
        return False
    return isinstance(reply, redis.exceptions.NoScriptError) or slot_moving(reply)


def _error_code(error: redis.exceptions.RedisError) -> str:
    # redis-py moves the codes it knows (OOM, READONLY) from the message to ``status_code``.
    return getattr(error, "status_code", None) or str(error).split(" ")[0]


# -- telling a person what went wrong -------------------------------------------------------------


class RedisFailure(StoreUnavailable):
    """Redis could not be used, said in words that name it (``explain``): what the command
    line prints as it is."""


_NO_DATABASE = ("DB index is out of range", "invalid DB index")


def explain(error: BaseException, url: str | None) -> str:
    """One line on a failure of the Redis at ``url``: where it is (host and port, never a
    password) and what happened, refused credentials, no such database or no answer; any
    other failure in the words of the error raised (the store's or redis-py's)."""
    where = describe(url)
    cause = _redis_cause(error)
    if isinstance(cause, redis.exceptions.AuthenticationError):
        told = _wants_credentials(cause) or f"refused the credentials ({cause})"
    elif isinstance(cause, redis.exceptions.NoPermissionError):
        told = f"refused this user a command ({cause})"
    elif isinstance(cause, redis.exceptions.ResponseError) and str(cause) in _NO_DATABASE:
        told = f"has no database {_database_of(url)} ({cause})"
    elif unreachable(error):
        told = f"does not answer ({type(cause or error).__name__})"
    else:
        told = f"failed: {error}"
    return _without_password(f"{where} {told}", url)


def unreachable(error: BaseException) -> bool:
    """Whether ``error`` means Redis did not answer (worth asking again: it may be starting),
    rather than that it answered no (credentials, database: asking again cannot help)."""
    cause = _redis_cause(error)
    if cause is None or isinstance(cause, redis.exceptions.AuthenticationError):
        return False
    # A cluster none of whose nodes could be reached says so with no cause of its own.
    return isinstance(cause, _UNREACHABLE) or type(cause) is redis.exceptions.RedisClusterException


def _redis_cause(error: BaseException) -> BaseException | None:
    """The innermost Redis error behind ``error``: the store's errors and redis-py's cluster
    errors keep the one they stand for as their ``__cause__``."""
    found = None
    seen = 0
    current: BaseException | None = error
    while current is not None and seen < 8:
        if isinstance(
            current, redis.exceptions.RedisError | redis.exceptions.RedisClusterException
        ):
            found = current
        current, seen = current.__cause__, seen + 1
    return found


def _wants_credentials(error: BaseException) -> str | None:
    # NOAUTH: the server has a password and none was given.
    if "Authentication required" in str(error):
        return "wants credentials: give them in the URL (redis://USER:PASSWORD@HOST:PORT)"
    return None


def _database_of(url: str | None) -> str:
    if url is None:
        return "0"
    try:
        database = _database(urllib.parse.urlsplit(_split(url)[1]))
    except InvalidArgument:
        return "?"
    return str(database or 0)


def _without_password(text: str, url: str | None) -> str:
    """``text`` with the URL's password, should Redis's own words ever repeat it, masked."""
    if url is None:
        return text
    password = urllib.parse.urlsplit(_split(url)[1]).password
    if password:
        text = text.replace(password, "***").replace(urllib.parse.unquote(password), "***")
    return text
