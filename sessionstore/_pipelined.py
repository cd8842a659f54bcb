"""The async store's batches, pipelined on one connection: many calls in flight at once.

A connection per call in flight (a pool's way) costs each call a write, a wakeup for its reply
and a read of its own. Here the batches that calls hand over in one turn of the event loop go
out in one write, and one reader task reads the replies in the order the batches were sent and
hands each call its own: at 64 calls at once, about four times the validates a second of one
connection per call (benchmarks: peers).

Bounds, and how each fails:
- At most ``MAX_IN_FLIGHT`` calls wait on the connection (about 0.5 KB each); past that a call
  borrows a connection of redis-py's pool for its call, as before.
- Redis answers in order, so when the oldest call in flight has had no answer for
  ``SOCKET_TIMEOUT``, nothing behind it has either: the connection is closed and every call on
  it fails with TimeoutError. A call that failed that way, or because the connection broke, is
  sent once more on a new connection (every call is safe to repeat), as redis-py's own retry
  does; a hung Redis therefore fails a call in about twice SOCKET_TIMEOUT, as before.
- A cancelled call's replies are still read, then dropped: no other call ever gets them.

redis-py opens the connection (TLS, AUTH, database, client name: its handshake, its settings);
then this module owns its stream (``Connection._reader`` and ``_writer``), and speaks to it
through ``_wire``. tests/store/test_pipelined.py holds that use of redis-py below its public
API to what this module needs.
"""

from __future__ import annotations

import asyncio
import collections
from typing import Any

import redis.exceptions

from . import _wire

MAX_IN_FLIGHT = 4096


class Pipelined:
    """One pool's pipelined connection, opened on first use and again after it breaks."""

    def __init__(self, pool: Any, timeout: float, limit: int = MAX_IN_FLIGHT) -> None:
        self._pool = pool
        self._timeout = timeout
        self._limit = limit
        self._link: _Link | None = None
        self._opening: asyncio.Task[_Link | None] | None = None
        self.closed = False

    @property
    def in_flight(self) -> int:
        link = self._link
        return 0 if link is None else len(link.waiting)

    async def run(self, commands: list[tuple[Any, ...]]) -> list[Any] | None:
        """The replies to ``commands``, sent together; an error reply comes back as its
        exception. None when the connection has its bound of calls in flight, or the store was
        closed: the caller borrows a connection instead. Raises ConnectionError or
        TimeoutError when the second try fails too."""
        for tries_left in (1, 0):
            link = await self._open()
            if link is None or len(link.waiting) >= self._limit:
                return None
            try:
                return await link.send(commands)
            except (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError):
                if not tries_left:
                    raise
        raise AssertionError("unreachable")

    async def aclose(self) -> None:
        """Let the calls in flight finish (up to the timeout), then close the connection."""
        self.closed = True
        link, self._link = self._link, None
        if link is not None:
            await link.drain(self._timeout)
            await link.close(redis.exceptions.ConnectionError("the store was closed"))

    async def _open(self) -> _Link | None:
        link = self._link
        if link is not None and link.usable():
            return link
        if self.closed:
            return None
        if self._opening is None or self._opening.done():  # one connect for every waiting call
            self._opening = asyncio.get_running_loop().create_task(self._connect())
        opening = self._opening
        try:
            return await asyncio.shield(opening)
        finally:
            if self._opening is opening and opening.done():
                self._opening = None

    async def _connect(self) -> _Link | None:
        pool = self._pool
        connection = pool.connection_class(**pool.connection_kwargs)
        await connection.connect()
        if self.closed:  # the store closed while this connected
            await connection.disconnect()
            return None
        self._link = _Link(connection, self._timeout)
        return self._link


class _Call:
    __slots__ = ("expected", "future", "replies", "sent_at")

    def __init__(self, future: asyncio.Future[list[Any]], expected: int, sent_at: float) -> None:
        self.future = future
        self.expected = expected
        self.replies: list[Any] = []
        self.sent_at = sent_at


class _Link:
    """An open connection: its calls in flight, oldest first, and what is still to be sent."""

    def __init__(self, connection: Any, timeout: float) -> None:
        self._connection = connection
        self._stream = connection._reader
        self._writer = connection._writer
        self._timeout = timeout
        self._parser = _wire.reader()
        self._loop = asyncio.get_running_loop()
        self.waiting: collections.deque[_Call] = collections.deque()
        self._outgoing: list[bytes] = []
        self._watch: asyncio.Handle | None = None
        self._broken: BaseException | None = None
        self._reader = self._loop.create_task(self._read())
        self._closed: asyncio.Task[None] | None = None

    def usable(self) -> bool:
        # A store's calls run on one event loop; a connection of another loop is left behind.
        return self._broken is None and self._loop is asyncio.get_running_loop()

    def send(self, commands: list[tuple[Any, ...]]) -> asyncio.Future[list[Any]]:
        packed = _wire.pack(commands)
        loop = self._loop
        call = _Call(loop.create_future(), len(commands), loop.time())
        self.waiting.append(call)
        if not self._outgoing:
            loop.call_soon(self._flush)  # with whatever else this turn of the loop sends
        self._outgoing.extend(packed)
        if self._watch is None:
            self._watch = loop.call_at(call.sent_at + self._timeout, self._check)
        return call.future

    def _flush(self) -> None:
        outgoing, self._outgoing = self._outgoing, []
        if self._broken is None and outgoing:
            self._writer.writelines(outgoing)  # a write that fails ends the reader's read

    async def _read(self) -> None:
        try:
            while True:
                data = await self._stream.read(_wire.READ_SIZE)
                if not data:
                    raise redis.exceptions.ConnectionError(_wire.CLOSED)
                self._parser.feed(data)
                self._deliver()
        except redis.exceptions.RedisError as error:
            self._fail(error)
        except OSError as error:
            self._fail(redis.exceptions.ConnectionError(f"Error reading from Redis: {error}"))

    def _deliver(self) -> None:
        waiting, parser = self.waiting, self._parser
        while waiting:
            call = waiting[0]
            while len(call.replies) < call.expected:
                reply = parser.gets()
                if reply is False:
                    return
                call.replies.append(reply)
            waiting.popleft()
            if not call.future.done():  # cancelled: its replies are dropped here
                call.future.set_result(call.replies)

    def _check(self) -> None:
        """Fired when the oldest call may have waited out the timeout."""
        self._watch = None
        if not self.waiting or self._broken is not None:
            return
        overdue = self.waiting[0].sent_at + self._timeout
        if overdue > self._loop.time():
            self._watch = self._loop.call_at(overdue, self._check)
        else:
            # A loop that was busy past the deadline may hold replies its reader has not
            # taken yet: the reader runs before a callback scheduled now.
            self._watch = self._loop.call_soon(self._confirm, self.waiting[0])

    def _confirm(self, oldest: _Call) -> None:
        self._watch = None
        if self.waiting and self.waiting[0] is oldest:
            self._fail(redis.exceptions.TimeoutError("Timeout reading from socket"))
        else:
            self._check()

    def _fail(self, error: BaseException) -> None:
        if self._broken is not None:
            return
        self._broken = error
        if self._watch is not None:
            self._watch.cancel()
        waiting, self.waiting = self.waiting, collections.deque()
        for call in waiting:
            if not call.future.done():
                call.future.set_exception(error)
        if asyncio.current_task() is not self._reader:
            self._reader.cancel()
        self._closed = self._loop.create_task(self._connection.disconnect(nowait=True))

    async def drain(self, timeout: float) -> None:
        if self.waiting:
            await asyncio.wait([self.waiting[-1].future], timeout=timeout)

    async def close(self, error: BaseException) -> None:
        self._fail(error)
        if self._closed is not None:
            await self._closed
