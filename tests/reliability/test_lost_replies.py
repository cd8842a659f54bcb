"""A reply lost after Redis ran the call: the client runs it again, and the store's answer is
still the first run's.

redis-py hides this fault: a reply that comes after the socket timeout (a stalled event loop,
a slow network) raises TimeoutError, and its retry closes the connection and sends the call
again. Every script is safe to run twice (test_idempotence.py), but a revocation's second run
finds nothing left to end: the console once said "Revoked no sessions" after revoking four.
Here the reply to the first command that carries the script's SHA is read and then dropped, as
the socket timeout would drop it, on each backend's real connections, sync and async.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Iterator
from typing import Any

import fakeredis
import pytest
import redis
import redis.asyncio.connection
from fakeredis._clients._async import FakeAsyncRedisConnection
from fakeredis._clients._sync import FakeRedisConnection
from redis.asyncio.retry import Retry as AsyncRetry
from redis.backoff import NoBackoff
from redis.crc import key_slot
from redis.retry import Retry

from sessionstore import AsyncSessionStore, SessionStore, StoreConfig, _connection, _pipelined
from sessionstore._core import keys, scripts
from tests import backends

TENANT = "acme-corp"
IP = "198.51.100.9"
CONNECTION_CLASSES = (redis.connection.Connection, FakeRedisConnection)
ASYNC_CONNECTION_CLASSES = (redis.asyncio.connection.Connection, FakeAsyncRedisConnection)


class LostReply:
    """Loses the reply read first after a command with a script's SHA went out."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.sha = b""
        self.armed = False
        self.lost = 0
        for cls in CONNECTION_CLASSES:
            self._patch_sync(monkeypatch, cls)
        for cls in ASYNC_CONNECTION_CLASSES:
            self._patch_async(monkeypatch, cls)
        self._patch_lanes(monkeypatch)
        self._patch_pipelined(monkeypatch)

    @contextlib.contextmanager
    def once(self, script: scripts.Script) -> Iterator[None]:
        self.sha, self.armed, self.lost = script.sha.encode(), True, 0
        yield
        assert self.lost == 1, "no reply was lost: the test did not reach the script"

    def _sent(self, connection: Any, command: Any) -> None:
        packed = command if isinstance(command, bytes | str) else b"".join(map(bytes, command))
        if self.armed and self.sha in (packed.encode() if isinstance(packed, str) else packed):
            self.armed = False
            connection._lose_next_reply = True

    def _lose(self, connection: Any) -> None:
        if connection.__dict__.pop("_lose_next_reply", False):
            self.lost += 1
            raise redis.exceptions.TimeoutError("Timeout reading from socket (injected)")

    def _patch_sync(self, monkeypatch: pytest.MonkeyPatch, cls: type) -> None:
        send, read = cls.send_packed_command, cls.read_response

        def send_packed_command(connection: Any, command: Any, *args: Any, **kw: Any) -> Any:
            self._sent(connection, command)
            return send(connection, command, *args, **kw)

        def read_response(connection: Any, *args: Any, **kw: Any) -> Any:
            reply = read(connection, *args, **kw)
            self._lose(connection)
            return reply

        monkeypatch.setattr(cls, "send_packed_command", send_packed_command)
        monkeypatch.setattr(cls, "read_response", read_response)

    def _patch_async(self, monkeypatch: pytest.MonkeyPatch, cls: type) -> None:
        send, read = cls.send_packed_command, cls.read_response

        async def send_packed_command(connection: Any, command: Any, *args: Any, **kw: Any) -> Any:
            self._sent(connection, command)
            return await send(connection, command, *args, **kw)

        async def read_response(connection: Any, *args: Any, **kw: Any) -> Any:
            reply = await read(connection, *args, **kw)
            self._lose(connection)
            return reply

        monkeypatch.setattr(cls, "send_packed_command", send_packed_command)
        monkeypatch.setattr(cls, "read_response", read_response)

    def _carries_sha(self, commands: list[tuple[Any, ...]]) -> bool:
        if self.armed and any(self.sha in map(_encoded, command) for command in commands):
            self.armed = False
            return True
        return False

    def _patch_lanes(self, monkeypatch: pytest.MonkeyPatch) -> None:
        """A thread's kept connection reads its socket itself: the batch that carries the SHA
        has its replies read, then times out."""
        exchange = _connection._Lane.exchange

        def exchange_and_lose(lane: Any, commands: list[tuple[Any, ...]], *poll: Any) -> list[Any]:
            lose = self._carries_sha(commands)
            replies = exchange(lane, commands, *poll)
            if lose:
                self.lost += 1
                raise redis.exceptions.TimeoutError("Timeout reading from socket (injected)")
            return replies

        monkeypatch.setattr(_connection._Lane, "exchange", exchange_and_lose)

    def _patch_pipelined(self, monkeypatch: pytest.MonkeyPatch) -> None:
        """The async store's pipelined connection reads every reply itself: the reply to the
        call that carries the SHA is read, then the connection times out, as a late one does."""
        send = _pipelined._Link.send

        def send_and_lose(link: Any, commands: list[tuple[Any, ...]]) -> Any:
            replies = send(link, commands)
            if not self._carries_sha(commands):
                return replies
            lost_reply: asyncio.Future[list[Any]] = asyncio.get_running_loop().create_future()

            def lose(read: asyncio.Future[list[Any]]) -> None:
                self.lost += 1
                timeout = redis.exceptions.TimeoutError("Timeout reading from socket (injected)")
                lost_reply.set_exception(timeout)
                link._fail(timeout)

            replies.add_done_callback(lose)
            return lost_reply

        monkeypatch.setattr(_pipelined._Link, "send", send_and_lose)


def _encoded(arg: object) -> bytes:
    return arg if isinstance(arg, bytes) else str(arg).encode()


@pytest.fixture
def client(backend: str, prefix: str, fake_server: fakeredis.FakeServer) -> Iterator[Any]:
    """The backend's client; the embedded server's with the retry the others have (its own
    never loses a reply, so it does not retry)."""
    client = backends.sync_client(backend, fake_server)
    if backend == "fake":
        client.set_retry(Retry(NoBackoff(), 1))
    yield client
    backends.delete_prefix(client, prefix)
    client.close()


@pytest.fixture
async def astore(
    backend: str, config: StoreConfig, clock: backends.Clock, fake_server: fakeredis.FakeServer
) -> AsyncIterator[AsyncSessionStore]:
    client = backends.async_client(backend, fake_server)
    if backend == "fake":
        client.set_retry(AsyncRetry(NoBackoff(), 1))
    store = AsyncSessionStore(client, config=config, clock=clock)
    yield store
    await store.aclose()


@pytest.fixture
def lost(monkeypatch: pytest.MonkeyPatch) -> LostReply:
    return LostReply(monkeypatch)


def sessions(store: SessionStore, count: int, user_id: int = 7) -> list[tuple[Any, str]]:
    return [store.create(TENANT, user_id, ip_address=IP, user_agent="pytest") for _ in range(count)]


def test_a_revocation_whose_reply_was_lost_still_says_it_revoked(
    store: SessionStore, lost: LostReply
) -> None:
    (session, token), _ = sessions(store, 2)
    with lost.once(scripts.REVOKE):
        assert store.revoke(TENANT, 7, session.id) is True
    assert store.validate(TENANT, token) is None
    assert store.revoke(TENANT, 7, session.id) is False  # a new call: nothing left to revoke


def test_revoke_all_whose_reply_was_lost_still_counts_what_it_ended(
    store: SessionStore, lost: LostReply
) -> None:
    made = sessions(store, 3)
    with lost.once(scripts.REVOKE_ALL):
        assert store.revoke_all(TENANT, 7) == 3
    assert not any(store.validate(TENANT, token) for _, token in made)


def test_a_bulk_revocation_whose_replies_were_lost_still_counts_what_it_ended(
    store: SessionStore, lost: LostReply
) -> None:
    made = [made for user in (11, 12, 13, 13) for made in sessions(store, 1, user)]
    with lost.once(scripts.REVOKE_WHERE):
        assert store.revoke_sessions(TENANT, ip_address=IP) == 4
    assert not any(store.validate(TENANT, token) for _, token in made)
    assert store.revoke_sessions(TENANT, ip_address=IP) == 0


async def test_the_async_store_answers_as_the_first_run_did(
    store: SessionStore, astore: AsyncSessionStore, lost: LostReply
) -> None:
    (session, _), *others = sessions(store, 3)
    with lost.once(scripts.REVOKE):
        assert await astore.revoke(TENANT, 7, session.id) is True
    with lost.once(scripts.REVOKE_WHERE):
        assert await astore.revoke_sessions(TENANT, ip_address=IP) == len(others)


def test_a_memo_is_one_small_key_in_the_sessions_slot_that_ends_on_its_own(
    store: SessionStore, client: Any, prefix: str
) -> None:
    (session, _), _ = sessions(store, 2)
    assert not [key for key in backends.keys_of(client, prefix) if keys.is_memo(key)]
    store.revoke(TENANT, 7, session.id)
    (memo,) = [key for key in backends.keys_of(client, prefix) if keys.is_memo(key)]
    session_key = store._core.keys.session(TENANT, session.id).encode()
    assert key_slot(memo) == key_slot(session_key)
    assert 0 < client.pttl(memo) <= keys.MEMO_MS
    assert client.get(memo) == b"1"
