"""The async store's batches share one pipelined connection (_pipelined.Pipelined).

Only a standalone redis-py client sends batches this way (a cluster pipelines per node, the
embedded server is in process), so these run on the real Redis, with the store's own client,
and check each way a shared connection could go wrong: a reply handed to the wrong call (after
a cancel), a slow reply, a loop too busy to read in time, a connection the server closed, more
calls than the bound, an error reply, and closing with calls in flight.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Any

import pytest
import redis
import redis.asyncio

from sessionstore import AsyncSessionStore, StoreConfig, StoreUnavailable, _connection, _pipelined
from tests import backends

pytestmark = pytest.mark.parametrize("backend", backends.ONE_BACKEND, indirect=True)

TENANT = "acme-corp"


@pytest.fixture
async def astore(backend: str, prefix: str) -> AsyncIterator[AsyncSessionStore]:
    url = backends.url_for(backend)
    async with AsyncSessionStore.from_url(url, config=StoreConfig(prefix=prefix)) as s:
        yield s
    with redis.Redis.from_url(url) as cleaner:
        backends.delete_prefix(cleaner, prefix)


def pipelined_of(store: AsyncSessionStore) -> _pipelined.Pipelined:
    return _connection._pipelines[store.client.connection_pool]


async def logins(store: AsyncSessionStore, count: int) -> list[tuple[Any, str]]:
    return [
        await store.create(TENANT, user, ip_address="198.51.100.7", user_agent="pytest")
        for user in range(1, count + 1)
    ]


async def all_validate(store: AsyncSessionStore, made: list[tuple[Any, str]]) -> bool:
    found = await asyncio.gather(*(store.validate(TENANT, token) for _, token in made))
    return [session.id for session in found] == [session.id for session, _ in made]


async def raw(store: AsyncSessionStore, *commands: tuple[Any, ...]) -> list[Any]:
    return await _connection.arun_raw(store.client, list(commands))


async def sent(task: asyncio.Task[Any]) -> None:
    """Let ``task`` hand its batch over (one turn) and the batch go out (the next)."""
    await asyncio.sleep(0)
    await asyncio.sleep(0)


async def test_calls_at_once_go_out_together_on_one_connection(
    astore: AsyncSessionStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    made = await logins(astore, 32)
    assert await all_validate(astore, made)  # first sight of each, then the fast path below
    pool = astore.client.connection_pool
    borrowed: list[object] = []
    borrow = pool.get_connection

    async def counted(*args: Any, **kwargs: Any) -> Any:
        borrowed.append(args)
        return await borrow(*args, **kwargs)

    monkeypatch.setattr(pool, "get_connection", counted)
    writes: list[int] = []
    flush = _pipelined._Link._flush

    def counted_flush(link: Any) -> None:
        writes.append(len(link._outgoing))
        flush(link)

    monkeypatch.setattr(_pipelined._Link, "_flush", counted_flush)
    (connection_id,) = await raw(astore, ("CLIENT", "ID"))
    for _ in range(5):
        assert await all_validate(astore, made)
    assert borrowed == []
    assert len(writes) < 5 * 32 and sum(writes) == 1 + 5 * 32 * 2  # two reads per validate
    assert await raw(astore, ("CLIENT", "ID")) == [connection_id]  # the same connection


async def test_a_cancelled_calls_replies_never_answer_another(astore: AsyncSessionStore) -> None:
    (connection_id,) = await raw(astore, ("CLIENT", "ID"))
    held = f"{astore.config.prefix}:nothing"
    # BLPOP holds this connection's later replies for 0.2 s: the cancel comes before them.
    first = asyncio.create_task(raw(astore, ("BLPOP", held, "0.2"), ("ECHO", "first")))
    await sent(first)
    first.cancel()
    with pytest.raises(asyncio.CancelledError):
        await first
    assert await raw(astore, ("ECHO", "second"), ("ECHO", "also second")) == [
        b"second",
        b"also second",
    ]
    assert await raw(astore, ("CLIENT", "ID")) == [connection_id]  # no reconnect was needed


async def test_no_answer_within_the_timeout_fails_the_call_and_the_next_gets_a_new_connection(
    astore: AsyncSessionStore,
) -> None:
    (connection_id,) = await raw(astore, ("CLIENT", "ID"))
    held = f"{astore.config.prefix}:nothing"
    started = time.monotonic()
    with pytest.raises(redis.exceptions.TimeoutError):  # both tries: each BLPOP holds 5 s
        await raw(astore, ("BLPOP", held, "5"), ("ECHO", "never"))
    assert time.monotonic() - started < 5  # the timeout ended it, not the BLPOP
    assert await raw(astore, ("ECHO", "after")) == [b"after"]
    assert await raw(astore, ("CLIENT", "ID")) != [connection_id]
    with redis.Redis.from_url(backends.url_for("redis")) as checker:
        assert backends.closed_on_the_server(checker, {connection_id})


async def test_a_loop_too_busy_to_read_in_time_still_gets_its_replies(
    astore: AsyncSessionStore,
) -> None:
    """The replies came within the timeout, but the loop only looks after it: they count, and
    the connection is kept (not failed, then hidden by the second try)."""
    (connection_id,) = await raw(astore, ("CLIENT", "ID"))  # open: the call below only sends
    call = asyncio.create_task(raw(astore, ("ECHO", "in time")))
    await sent(call)
    time.sleep(_connection.SOCKET_TIMEOUT * 1.5)  # the loop blocked past the deadline
    assert await call == [b"in time"]
    assert await raw(astore, ("CLIENT", "ID")) == [connection_id]


async def test_a_connection_the_server_closed_is_opened_again(astore: AsyncSessionStore) -> None:
    made = await logins(astore, 16)
    assert await all_validate(astore, made)
    (connection_id,) = await raw(astore, ("CLIENT", "ID"))
    with redis.Redis.from_url(backends.url_for("redis")) as killer:
        assert killer.client_kill_filter(_id=str(connection_id)) == 1
    assert await all_validate(astore, made)  # each found it closed, and was sent again
    assert await raw(astore, ("CLIENT", "ID")) != [connection_id]


async def test_past_the_bound_a_call_borrows_from_the_pool(
    astore: AsyncSessionStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Also while the connection is being opened: the calls that waited for it count too."""
    made = await logins(astore, 12)
    pool = astore.client.connection_pool
    bounded = _pipelined.Pipelined(pool, _connection.SOCKET_TIMEOUT, limit=2)
    _connection._pipelines[pool] = bounded  # not connected yet
    borrowed: list[object] = []
    borrow = pool.get_connection
    in_flight: list[int] = []
    send = _pipelined._Link.send

    async def counted(*args: Any, **kwargs: Any) -> Any:
        borrowed.append(args)
        return await borrow(*args, **kwargs)

    def counted_send(link: Any, commands: list[tuple[Any, ...]]) -> Any:
        replies = send(link, commands)
        in_flight.append(len(link.waiting))
        return replies

    monkeypatch.setattr(pool, "get_connection", counted)
    monkeypatch.setattr(_pipelined._Link, "send", counted_send)
    for _ in range(3):
        assert await all_validate(astore, made)
    assert borrowed  # 12 at once: 2 in flight on the shared connection, the rest borrowed
    assert max(in_flight) == 2
    await bounded.aclose()


async def test_a_burst_far_past_the_bound_fails_closed_and_recovers(
    astore: AsyncSessionStore,
) -> None:
    """Far more calls at once than the connection takes and the pool has: each is answered
    with its session or StoreUnavailable (a 503 in the middleware), never another answer, and
    the store answers as before once the burst is over. How many fail depends on the machine's
    speed: not asserted."""
    made = await logins(astore, 4)
    burst = [made[n % len(made)] for n in range(_pipelined.MAX_IN_FLIGHT + 2000)]
    answers = await asyncio.gather(
        *(astore.validate(TENANT, token) for _, token in burst), return_exceptions=True
    )
    for (session, _), answer in zip(burst, answers, strict=True):
        assert isinstance(answer, StoreUnavailable) or getattr(answer, "id", answer) == session.id
    assert pipelined_of(astore).in_flight == 0
    assert await all_validate(astore, made)


async def test_error_replies_come_back_as_redis_py_exceptions(astore: AsyncSessionStore) -> None:
    """What the store reads to load a script again (NOSCRIPT) or wait out a slot's move."""
    missing, answered = await raw(astore, ("EVALSHA", "0" * 40, 0), ("ECHO", "next"))
    assert isinstance(missing, redis.exceptions.NoScriptError)
    assert answered == b"next"
    with pytest.raises(redis.exceptions.DataError):
        await raw(astore, ("SET", "key", None))  # type: ignore[arg-type]
    assert await raw(astore, ("ECHO", "still")) == [b"still"]


async def test_closing_waits_for_the_calls_in_flight_then_closes_the_connection(
    backend: str, prefix: str
) -> None:
    url = backends.url_for(backend)
    store = AsyncSessionStore.from_url(url, config=StoreConfig(prefix=prefix))
    made = await logins(store, 8)
    (connection_id,) = await raw(store, ("CLIENT", "ID"))
    calls = [asyncio.create_task(store.validate(TENANT, token)) for _, token in made]
    await sent(calls[0])
    await store.aclose()
    assert [(await call).id for call in calls] == [session.id for session, _ in made]
    with redis.Redis.from_url(backends.url_for("redis")) as checker:
        assert backends.closed_on_the_server(checker, {connection_id})
    with redis.Redis.from_url(url) as cleaner:
        backends.delete_prefix(cleaner, prefix)
